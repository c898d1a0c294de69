"""The compression workflow on scikit-learn's digits, one function per stage, each stage compiled to C.

teacher (standard convolutions) -> student from scratch (depthwise-separable) -> the same student distilled
from the teacher -> L1 filter pruning in steps with fine-tuning -> quantization-aware training -> QDQ ONNX.
Every stage is exported to ONNX, compiled with mcucompile, built with gcc and run on the test split.

    import pipeline
    report = pipeline.run(epochs_scale=1.0, out_dir="build")
    print(report.table("pipeline.run()"))
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import mcucompile
from mcucompile.verify import CModel, onnxruntime_outputs

# The bundled example's building blocks, from examples/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from make_digits import conv_bn_relu6 as conv_bn  # noqa: E402
from make_digits import to_onnx  # noqa: E402

SEED = 0
THREADS = 2
INPUT_SHAPE = (1, 8, 8)
CALIBRATION_SAMPLES = 128
TEMPERATURE = 4.0  # softens the teacher's distribution so the non-argmax classes carry signal
SOFT_WEIGHT = 0.7  # share of the distillation term; the rest is cross entropy on the labels
PRUNE_FRACTION = 0.5  # of the filters of every standard convolution, reached in PRUNE_STEPS equal steps
PRUNE_STEPS = 3
# Epochs of each training phase at epochs_scale=1.
EPOCHS = {"teacher": 40, "student": 40, "distilled": 40, "prune_step": 20, "qat": 15}
QUICK_EPOCHS_SCALE = 0.1  # --quick and the test: 1 to 4 epochs a phase


@dataclass
class Data:
    x_train: np.ndarray  # N x 1 x 8 x 8 float32 in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data() -> Data:
    """The 8x8 digits scaled to [0, 1], split 80/20 (stratified, fixed seed)."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target.astype(np.int64), test_size=0.2, random_state=SEED, stratify=digits.target
    )
    return Data(x_train, y_train, x_test, y_test)


# ---------------------------------------------------------------------------------------------------- models


def head(channels: int) -> list[nn.Module]:
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]


def teacher_net() -> nn.Sequential:
    return nn.Sequential(
        conv_bn(1, 32),
        conv_bn(32, 64, stride=2),
        conv_bn(64, 64),
        conv_bn(64, 128, stride=2),
        *head(128),
    )


def student_net() -> nn.Sequential:
    """Depthwise-separable: a 3x3 stem, then (depthwise 3x3, pointwise 1x1) blocks."""
    return nn.Sequential(
        conv_bn(1, 16),
        conv_bn(16, 16, groups=16),
        conv_bn(16, 32, k=1),
        conv_bn(32, 32, stride=2, groups=32),
        conv_bn(32, 64, k=1),
        conv_bn(64, 64, stride=2, groups=64),
        conv_bn(64, 64, k=1),
        *head(64),
    )


# -------------------------------------------------------------------------------------------------- training


def initialized(make: Callable[[], nn.Module]) -> nn.Module:
    """A new network whose initial weights do not depend on what ran before."""
    torch.manual_seed(SEED)
    return make()


Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, x, y) -> loss


def cross_entropy(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y)


def distillation_loss(teacher: nn.Module) -> Loss:
    """Hinton et al.: KL(teacher || student) at temperature T, scaled by T^2 to keep its gradients comparable
    to the cross entropy's, plus cross entropy on the hard labels."""
    teacher.eval()

    def loss(logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft_targets = F.softmax(teacher(x) / TEMPERATURE, dim=1)
        soft = F.kl_div(F.log_softmax(logits / TEMPERATURE, dim=1), soft_targets, reduction="batchmean")
        return SOFT_WEIGHT * TEMPERATURE**2 * soft + (1 - SOFT_WEIGHT) * F.cross_entropy(logits, y)

    return loss


def train(
    model: nn.Module,
    data: Data,
    epochs: int,
    loss_fn: Loss = cross_entropy,
    lr: float = 1e-2,
    after_step: Callable[[], None] | None = None,
) -> nn.Module:
    """Adam with a cosine schedule over minibatches of 64; `after_step` runs after every update (pruning masks)."""
    order = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=order).split(64):
            opt.zero_grad()
            loss_fn(model(x[idx]), x[idx], y[idx]).backward()
            opt.step()
            if after_step is not None:
                after_step()
        sched.step()
    return model.eval()


def torch_accuracy(model: nn.Module, data: Data) -> float:
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(data.x_test))
    return float((logits.argmax(1).numpy() == data.y_test).mean())


# --------------------------------------------------------------------------------------------------- pruning


@dataclass
class PruneGroup:
    """The output filters of one standard convolution, scored by L1 norm, and the depthwise block after it,
    whose channel c reads only channel c: pruning filter c zeroes both, so the channel is dead end to end."""

    filters: nn.Sequential  # conv_bn block
    depthwise: nn.Sequential | None
    keep: torch.Tensor  # bool per output channel


def prune_groups(model: nn.Sequential) -> list[PruneGroup]:
    blocks = [m for m in model if isinstance(m, nn.Sequential)]
    groups = []
    for i, block in enumerate(blocks):
        conv = block[0]
        if conv.groups == 1:
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            depthwise = after if after is not None and after[0].groups == after[0].in_channels > 1 else None
            groups.append(PruneGroup(block, depthwise, torch.ones(conv.out_channels, dtype=torch.bool)))
    return groups


def select_filters(groups: list[PruneGroup], fraction: float) -> None:
    """Keep-masks with round(fraction * filters) lowest-L1 filters pruned per layer; pruned filters have norm 0,
    so each step's pruned set contains the previous one."""
    for g in groups:
        norms = g.filters[0].weight.detach().abs().sum(dim=(1, 2, 3))
        g.keep = torch.ones_like(g.keep)
        g.keep[norms.argsort()[: round(fraction * len(norms))]] = False


def apply_masks(groups: list[PruneGroup]) -> None:
    """Zero the pruned filters and their BatchNorm gamma and beta, so the channel is exactly 0 after the BN."""
    with torch.no_grad():
        for g in groups:
            for block in (g.filters, g.depthwise):
                if block is not None:
                    block[0].weight[~g.keep] = 0
                    block[1].weight[~g.keep] = 0
                    block[1].bias[~g.keep] = 0


def prune(model: nn.Sequential, data: Data, epochs_per_step: int, loss_fn: Loss) -> nn.Sequential:
    """Iterative structured pruning: each step prunes more filters, then fine-tunes with the masks held."""
    groups = prune_groups(model)
    for step in range(1, PRUNE_STEPS + 1):
        select_filters(groups, PRUNE_FRACTION * step / PRUNE_STEPS)
        apply_masks(groups)
        train(model, data, epochs_per_step, loss_fn, after_step=lambda: apply_masks(groups))
    return model


# ----------------------------------------------------------------------------------- quantization-aware training
# torch's fake-quantize ops round halves to even as ONNX QuantizeLinear does, pass gradients straight through
# inside the clamp range (the straight-through estimator), and export as QuantizeLinear/DequantizeLinear pairs.


class ActivationQuant(nn.Module):
    """Per-tensor asymmetric int8 fake quantization; the range is an EMA of batch min/max while training."""

    def __init__(self, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
                m = self.momentum if self.seen else 1.0
                self.lo.lerp_(lo, m)
                self.hi.lerp_(hi, m)
                self.seen.fill_(True)
        return self.quantize(x)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize with the current parameters, without observing x."""
        scale, zero_point = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, -128, 127)

    def qparams(self) -> tuple[float, int]:
        # The range always holds 0, so zero-padding and ReLU's zeros are exact.
        lo, hi = float(self.lo), max(float(self.hi), float(self.lo) + 1e-8)
        scale = float(np.float32((hi - lo) / 255))
        return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def weight_quant(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8 (axis 0, zero point 0, |q| <= 127) fake quantization."""
    # Plain floats, so that the ONNX export records the scales as constants rather than as ops on w.
    amax = w.detach().abs().flatten(1).amax(dim=1).tolist()
    scale = torch.tensor([a / 127 if a > 0 else 1.0 for a in amax])  # a pruned filter is 0 at any scale
    zero_point = torch.zeros(len(scale), dtype=torch.int32)
    # ONNX export accepts only [-128, 127]; |w| / scale <= 127 keeps the range symmetric anyway.
    return torch.fake_quantize_per_channel_affine(w, scale, zero_point, 0, -128, 127)


class QATConv(nn.Module):
    """Conv with its BatchNorm folded in, then ReLU6, with int8 fake-quantized weights and output."""

    def __init__(self, block: nn.Sequential):
        super().__init__()
        conv, bn = block[0], block[1]
        gain = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        self.weight = nn.Parameter(conv.weight.detach() * gain.view(-1, 1, 1, 1))
        self.bias = nn.Parameter(bn.bias.detach() - bn.running_mean * gain)
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        self.out_quant = ActivationQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, weight_quant(self.weight), self.bias, self.stride, self.padding, groups=self.groups)
        return self.out_quant(y.clamp(0, 6))


class QATNet(nn.Module):
    """The pruned student with BatchNorm folded and fake quantization on the input, every conv's weights and
    output, and the classifier's weights and output."""

    def __init__(self, student: nn.Sequential):
        super().__init__()
        self.in_quant = ActivationQuant()
        self.convs = nn.Sequential(*[QATConv(m) for m in student if isinstance(m, nn.Sequential)])
        linear = student[-1]
        self.fc = nn.Linear(linear.in_features, linear.out_features)
        self.fc.load_state_dict(linear.state_dict())
        self.out_quant = ActivationQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.in_quant(x))
        # The average keeps its input's quantization, as in TFLite (and as the compiler's pooling requires).
        x = self.convs[-1].out_quant.quantize(F.adaptive_avg_pool2d(x, 1)).flatten(1)
        return self.out_quant(F.linear(x, weight_quant(self.fc.weight), self.fc.bias))


def keep_pruned_zero(net: QATNet) -> Callable[[], None]:
    """The pruned channels (all-zero folded weights and bias) stay exactly zero during QAT."""
    dead = [(m, m.weight.detach().flatten(1).abs().sum(1) + m.bias.detach().abs() == 0) for m in net.convs]

    def apply() -> None:
        with torch.no_grad():
            for m, mask in dead:
                m.weight[mask] = 0
                m.bias[mask] = 0

    return apply


def quantization_aware_training(student: nn.Sequential, data: Data, epochs: int, loss_fn: Loss) -> QATNet:
    net = QATNet(student)
    # One pass in training mode without updates starts the observers from the folded float model's ranges.
    with torch.no_grad():
        net.train()(torch.from_numpy(data.x_train))
    return train(net, data, epochs, loss_fn, lr=5e-4, after_step=keep_pruned_zero(net))


# ------------------------------------------------------------------------------------- export, compile, measure


def export_onnx(model: nn.Module, path: Path) -> None:
    """Opset 13. A float stage keeps BatchNormalization for the compiler to fold; the QAT stage's weights become
    int8 initializers behind DequantizeLinear."""
    if isinstance(model, QATNet):
        onnx.save(int8_weights(to_onnx(model, INPUT_SHAPE, fold_constants=True)), path)
    else:
        onnx.save(to_onnx(model, INPUT_SHAPE), path)


def int8_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """QuantizeLinear of a float initializer -> the int8 initializer it computes, the form onnxruntime's own
    quantizer writes (torch's export leaves these nodes; the compiler reads either form, int8 is 4x smaller)."""
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"})
    kept = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in consts:
            kept.append(node)
            continue
        w, scale, zero_point = (consts[name] for name in node.input)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) if scale.size > 1 else None
        shape = [-1 if i == axis else 1 for i in range(w.ndim)]
        q = np.rint(w / scale.reshape(shape)) + zero_point.reshape(shape)  # ONNX rounds halves to even
        graph.initializer.append(numpy_helper.from_array(np.clip(q, -128, 127).astype(np.int8), node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for n in graph.node for name in n.input}
    initializers = [t for t in graph.initializer if t.name in used]  # the float weights are gone
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    return model


@dataclass
class StageResult:
    stage: str
    onnx_path: Path
    compiled: mcucompile.CompiledModel = field(repr=False)
    float_accuracy: float  # onnxruntime on the stage's ONNX (float, or QDQ for the QAT stage)
    c_accuracy: float  # the generated C (int8), built with gcc and run through cffi

    @property
    def params(self) -> int:
        return self.compiled.stats.params

    @property
    def macs(self) -> int:
        return self.compiled.stats.macs

    @property
    def flash_bytes(self) -> int:
        return self.compiled.stats.weight_bytes

    @property
    def arena_bytes(self) -> int:
        return self.compiled.plan.size


def measure(stage: str, onnx_path: Path, data: Data, calibration: np.ndarray | None) -> StageResult:
    """Compile (calibrated, or with the model's own QDQ scales when calibration is None), build the C and run
    it on the test split; onnxruntime gives the reference accuracy of the same ONNX file."""
    compiled = mcucompile.compile(onnx_path, name=stage, calibration=calibration)
    build_dir = onnx_path.parent / stage
    compiled.write(build_dir)
    c_model = CModel(build_dir, stage)
    c_logits = np.stack([c_model.run_f32(x) for x in data.x_test])
    ort_logits = onnxruntime_outputs(onnx_path, data.x_test[:, None]).reshape(len(data.x_test), -1)
    return StageResult(
        stage,
        onnx_path,
        compiled,
        float_accuracy=float(np.mean(ort_logits.argmax(1) == data.y_test)),
        c_accuracy=float(np.mean(c_logits.argmax(1) == data.y_test)),
    )


@dataclass
class Report:
    results: list[StageResult]
    data: Data
    seconds: float

    def __getitem__(self, stage: str) -> StageResult:
        return next(r for r in self.results if r.stage == stage)

    def table(self, command: str) -> str:
        """Markdown: one row per stage, what dead-channel elimination removed, and the command that made it."""
        rows = [
            "| stage | params | MACs | flash bytes | arena bytes | float accuracy (onnxruntime) | C int8 accuracy |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.results:
            rows.append(
                f"| {STAGE_TITLES[r.stage]} | {r.params:,} | {r.macs:,} | {r.flash_bytes:,} | {r.arena_bytes:,} "
                f"| {r.float_accuracy * 100:.2f} % | {r.c_accuracy * 100:.2f} % |"
            )
        notes = [
            "",
            (
                f"Test split: {len(self.data.y_test)} images; params, MACs, flash and arena are the compiled C's "
                "(BatchNorm folded, dead channels removed). The QAT row's float accuracy is onnxruntime on its QDQ "
                "model."
            ),
            "",
        ]
        for r in self.results:
            if r.stage in ("pruned", "qat"):
                p = r.compiled.pruning
                layers = sum(layer.channels_after < layer.channels_before for layer in p.layers)
                notes.append(
                    f"- {STAGE_TITLES[r.stage]}: dead-channel elimination removed {p.channels_removed} output "
                    f"channels of {layers} layers: {p.params_removed:,} params, {p.macs_removed:,} MACs, "
                    f"{p.bytes_removed:,} bytes"
                )
        notes.append(f"\n`{command}`: {self.seconds:.0f} s with {THREADS} torch threads.")
        return "\n".join(rows + notes) + "\n"


STAGE_TITLES = {
    "teacher": "teacher (standard conv)",
    "student": "student (depthwise-separable, from scratch)",
    "distilled": "distilled student",
    "pruned": f"pruned ({PRUNE_FRACTION:.0%} of filters, {PRUNE_STEPS} steps)",
    "qat": "QAT int8 (QDQ)",
}


def run(epochs_scale: float = 1.0, out_dir: str | Path = "build", log: Callable[[str], None] = print) -> Report:
    """Train every stage, export it to out_dir/STAGE.onnx, compile it to out_dir/STAGE/ and measure it."""
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs = {k: max(1, round(v * epochs_scale)) for k, v in EPOCHS.items()}
    data = load_data()
    with reproducible_torch():
        teacher = train(initialized(teacher_net), data, epochs["teacher"])
        student = train(initialized(student_net), data, epochs["student"])
        distill = distillation_loss(teacher)
        distilled = train(initialized(student_net), data, epochs["distilled"], distill)
        pruned = prune(copy.deepcopy(distilled), data, epochs["prune_step"], distill)
        qat = quantization_aware_training(pruned, data, epochs["qat"], distill)
    stages = {"teacher": teacher, "student": student, "distilled": distilled, "pruned": pruned, "qat": qat}
    results = []
    for stage, model in stages.items():
        export_onnx(model, out / f"{stage}.onnx")
        calibration = None if stage == "qat" else data.x_train[:CALIBRATION_SAMPLES]
        results.append(measure(stage, out / f"{stage}.onnx", data, calibration))
        log(f"{stage}: torch {torch_accuracy(model, data) * 100:.2f} %, C {results[-1].c_accuracy * 100:.2f} %")
    return Report(results, data, time.perf_counter() - start)


@contextlib.contextmanager
def reproducible_torch():
    """Fixed thread count (results depend on the reduction order), restored afterwards with the denormal mode."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    # Pruned channels drive gradients and BatchNorm statistics towards 0 through denormal floats, which are
    # ~40x slower on x86; flushing them to zero changes no result that matters here.
    torch.set_flush_denormal(True)
    np.random.seed(SEED)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
