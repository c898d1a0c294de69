"""Coverage: PyTorch's standard layers (tests/layers.py) at several opsets and both exporters, and the network
families of the zoo (tests/zoo.py) against onnxruntime's own static quantizer. The markdown tables of
BENCHMARKS.md, section "Coverage".

    python benchmarks/coverage.py [--layers-only | --families-only]

Layers: each layer exported with the TorchScript exporter at opsets 9, 13 and 17 and with the torch.export-based
exporter (opset 18), compiled with 16 of its own random-normal inputs as calibration, built with gcc and run on 8
others; a layer passes when it compiles and its int8 output reaches 30 dB SQNR against onnxruntime on the float
model. Families: calibrated on 32 inputs, SQNR and top-1 on 256 others against onnxruntime's float model, next to
onnxruntime's quantize_static (QDQ, per-channel MinMax) on the same data, with arena and flash.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import layers  # noqa: E402  (tests/layers.py)
import zoo  # noqa: E402  (tests/zoo.py)

import mcucompile  # noqa: E402
from mcucompile.verify import CModel, accuracy, onnxruntime_outputs  # noqa: E402

LAYER_EXPORTS = [("TorchScript", 9, False), ("TorchScript", 13, False), ("TorchScript", 17, False),
                 ("torch.export", 18, True)]  # fmt: skip
MIN_LAYER_SQNR_DB = 30.0


def run_c(compiled, samples: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="coverage_") as tmp:
        compiled.write(tmp)
        c_model = CModel(tmp, compiled.name)
        return np.stack([c_model.run_f32(s) for s in samples])


def layer_cell(name: str, opset: int, dynamo: bool) -> tuple[str, bool | None]:
    """(table cell, passed); None: the exporter itself refuses the layer at this opset."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = layers.export(name, opset, dynamo)
    except Exception:
        return "export fails", None
    calib, test = layers.samples(name, 16, 1), layers.samples(name, 8, 2)
    try:
        compiled = mcucompile.compile(model, name="layer", calibration=calib)
    except mcucompile.CompileError as exc:
        return f"refused: {str(exc)[:70]}", False
    acc = accuracy(onnxruntime_outputs(model.SerializeToString(), test), run_c(compiled, test))
    return f"{acc.sqnr_db:.1f} dB", bool(acc.sqnr_db >= MIN_LAYER_SQNR_DB)


def layers_table() -> None:
    print("| layer | " + " | ".join(f"{kind} opset {opset}" for kind, opset, _ in LAYER_EXPORTS) + " |")
    print("|---|" + "---:|" * len(LAYER_EXPORTS))
    counts: Counter = Counter()
    for name in layers.LAYERS:
        cells = []
        for _, opset, dynamo in LAYER_EXPORTS:
            cell, passed = layer_cell(name, opset, dynamo)
            counts[passed] += 1
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    exported = counts[True] + counts[False]
    print(f"\n{counts[True]} of {exported} exported layer models ({counts[True] / exported * 100:.1f} %) compile and "
          f"reach {MIN_LAYER_SQNR_DB:.0f} dB; {counts[None]} exports fail in PyTorch itself.")  # fmt: skip


def families_table() -> None:
    print("| family | input | ops | compiles | SQNR ours (dB) | SQNR onnxruntime PTQ (dB) | top-1 ours | "
          "top-1 onnxruntime PTQ | arena (B) | flash (B) |")  # fmt: skip
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for family in zoo.BREADTH_FAMILIES:
        size = zoo.sizes(family)[0]
        model = zoo.export(family, 13, size)
        calib, test = zoo.samples(family, size, 32, seed=1), zoo.samples(family, size, 256, seed=2)
        reference = onnxruntime_outputs(model.SerializeToString(), test)
        ops = ", ".join(sorted({n.op_type for n in model.graph.node} - {"Constant", "Shape", "Gather", "Unsqueeze"}))
        shape = "x".join(map(str, zoo.input_shape(family, size)[1:]))
        ort = accuracy(reference, onnxruntime_outputs(zoo.ort_quantize(model, calib), test))
        try:
            compiled = mcucompile.compile(model, name="fam", calibration=calib)
        except mcucompile.CompileError as exc:
            print(f"| {family} | {shape} | {ops} | no: {str(exc)[:60]} | | {ort.sqnr_db:.1f} | | | | |")
            continue
        ours = accuracy(reference, run_c(compiled, test))
        top1 = (f"{ours.top1_agreement * 100:.1f} %", f"{ort.top1_agreement * 100:.1f} %")
        if not zoo.FAMILIES[family].classifier:
            top1 = ("–", "–")
        print(f"| {family} | {shape} | {ops} | yes | {ours.sqnr_db:.1f} | {ort.sqnr_db:.1f} | {top1[0]} | {top1[1]} "
              f"| {compiled.plan.size:,} | {compiled.stats.weight_bytes:,} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers-only", action="store_true")
    parser.add_argument("--families-only", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"mcucompile {mcucompile.__version__}\n")  # fmt: skip
    if not args.layers_only:
        families_table()
        print()
    if not args.families_only:
        layers_table()


if __name__ == "__main__":
    main()
