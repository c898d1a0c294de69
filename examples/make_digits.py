"""Regenerate the bundled example: a small DS-CNN trained on scikit-learn's digits, exported to ONNX.

Writes digits_dscnn.onnx (opset 13, BatchNormalization kept), digits_calib.npy (64 training images for
calibration) and digits_test.npz (the held-out test split, x and y) into examples/digits/, which the wheel
ships as the data of `mcucompile demo`:

    python examples/make_digits.py
"""

from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

INPUT_SHAPE = (1, 16, 16)


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1] and upsampled 8x8 -> 16x16 (nearest), split 80/20 stratified."""
    digits = load_digits()
    x = np.kron(digits.images / 16.0, np.ones((2, 2))).astype(np.float32)[:, None]
    return train_test_split(x, digits.target.astype(np.int64), test_size=0.2, random_state=0, stratify=digits.target)


def conv_bn_relu6(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()
    )


def ds_cnn() -> nn.Module:
    return nn.Sequential(
        conv_bn_relu6(1, 16),
        conv_bn_relu6(16, 16, stride=2, groups=16),  # depthwise
        conv_bn_relu6(16, 32, k=1),  # pointwise
        conv_bn_relu6(32, 32, stride=2, groups=32),
        conv_bn_relu6(32, 32, k=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def train_digits_dscnn(epochs: int = 40, seed: int = 0):
    """(model in eval mode, (x_train, y_train, x_test, y_test))."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = load_data()
    model = ds_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.eval(), (x_train, y_train, x_test, y_test)


def to_onnx(model: nn.Module, input_shape: tuple = INPUT_SHAPE, fold_constants: bool = False) -> onnx.ModelProto:
    """Opset 13 with constant folding off by default, so BatchNormalization stays for the compiler to fold."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.zeros(1, *input_shape),
            buf,
            opset_version=13,
            dynamo=False,
            do_constant_folding=fold_constants,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    return onnx.load_from_string(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "digits")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    model, (x_train, y_train, x_test, y_test) = train_digits_dscnn(args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx.save(to_onnx(model), args.out / "digits_dscnn.onnx")
    np.save(args.out / "digits_calib.npy", x_train[:64])
    np.savez(args.out / "digits_test.npz", x=x_test, y=y_test)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.out / "digits_dscnn.onnx"), providers=["CPUExecutionProvider"])
    accuracy = float(np.mean(sess.run(None, {"input": x_test})[0].argmax(1) == y_test))
    print(f"train {len(x_train)}, test {len(x_test)}: float test accuracy (onnxruntime) {accuracy * 100:.2f} %")


if __name__ == "__main__":
    main()
