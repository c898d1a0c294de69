"""Regenerate the bundled example: a small DS-CNN trained on scikit-learn's digits, exported to ONNX.

Writes three files next to this script (or into --out):

- digits_dscnn.onnx  the float model, opset 13, BatchNormalization and ReLU6 (Clip) left in the graph
- digits_calib.npy   the first 64 training images, float32 64x1x16x16, for int8 calibration
- digits_test.npz    the held-out split: x (float32 Nx1x16x16) and y (int64)

Regenerate with:

    python examples/make_digits.py
"""

from __future__ import annotations

import argparse
import io
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

DEFAULT_EPOCHS = 30
BATCH_SIZE = 64
N_CALIB = 64
SAMPLE_SHAPE = (1, 16, 16)

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load_data() -> Split:
    """Digits in [0, 1], nearest-neighbour upsampled 8x8 -> 16x16, stratified 80/20 split.

    Returns (x_train, y_train, x_test, y_test); images are float32 Nx1x16x16, labels int64.
    """
    digits = load_digits()
    # 16x16 gives the two stride-2 stages something to downsample (16 -> 8 -> 4).
    x = (digits.images / 16.0).astype(np.float32).repeat(2, axis=1).repeat(2, axis=2)[:, None]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return x_train, y_train, x_test, y_test


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    # bias=False: the following BatchNorm supplies the shift, as in MobileNet-style blocks.
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU6()]


def build_dscnn() -> nn.Sequential:
    """Conv 3x3 -> 2x (depthwise 3x3 stride 2, pointwise 1x1) -> global average pool -> linear."""
    return nn.Sequential(
        *_conv_bn_relu6(1, 16, 3),
        *_conv_bn_relu6(16, 16, 3, stride=2, groups=16),
        *_conv_bn_relu6(16, 32, 1),
        *_conv_bn_relu6(32, 32, 3, stride=2, groups=32),
        *_conv_bn_relu6(32, 32, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def train_digits_dscnn(epochs: int = DEFAULT_EPOCHS, seed: int = 0) -> tuple[nn.Sequential, Split]:
    """Train the DS-CNN; returns (model in eval mode, (x_train, y_train, x_test, y_test))."""
    data = load_data()
    x_train, y_train = torch.from_numpy(data[0]), torch.from_numpy(data[1])

    # Importers (tests) keep their global RNG, thread count and determinism flag.
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # one thread keeps float reductions in a fixed order
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_dscnn()
            order = torch.Generator().manual_seed(seed)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            model.train()
            for _ in range(epochs):
                for batch in torch.randperm(len(x_train), generator=order).split(BATCH_SIZE):
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
                    optimizer.step()
                schedule.step()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return model.eval(), data


def export_onnx(model: nn.Module, path: str | Path) -> onnx.ModelProto:
    """Export with the TorchScript exporter, opset 13, dynamic batch, BatchNormalization not folded.

    Constant folding is off so the compiler, not the exporter, folds BatchNorm into the convolutions.
    """
    model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch >= 2.9 flags the TorchScript exporter as legacy; it is chosen on purpose (keeps BatchNorm nodes).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, *SAMPLE_SHAPE),),
            buffer,
            dynamo=False,
            opset_version=13,
            do_constant_folding=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    if "BatchNormalization" not in {node.op_type for node in proto.graph.node}:
        raise RuntimeError("the exporter folded BatchNormalization; the example is meant to keep it")
    onnx.save(proto, str(path))
    return proto


def onnxruntime_accuracy(path: str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the exported file itself, so the number describes what ships."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x})[0]
    return float(np.mean(logits.argmax(axis=1) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the digits DS-CNN and write the bundled example files.")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs")
    args = parser.parse_args()

    start = time.perf_counter()
    model, (x_train, y_train, x_test, y_test) = train_digits_dscnn(args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "digits_dscnn.onnx"
    export_onnx(model, model_path)
    np.save(args.out / "digits_calib.npy", np.ascontiguousarray(x_train[:N_CALIB]))
    np.savez(args.out / "digits_test.npz", x=x_test, y=y_test)
    accuracy = onnxruntime_accuracy(model_path, x_test, y_test)
    print(
        f"digits DS-CNN: train {len(x_train)}, test {len(x_test)}, "
        f"float test accuracy (onnxruntime) {accuracy:.2%}, {time.perf_counter() - start:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
