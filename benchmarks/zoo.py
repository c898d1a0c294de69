"""Network-family zoo: accuracy of the generated C against onnxruntime on the float model, side by side with
onnxruntime's own static quantizer, plus params, MACs, flash and arena. Prints a markdown table; with
--update it also replaces (or appends) the "Network-family zoo" section of benchmarks/BENCHMARKS.md.

    python benchmarks/zoo.py [--opset 17] [--update]

Per family (tests/zoo.py, one opset, both input sizes): 32 standard-normal calibration samples, 256 other
standard-normal test samples.
- ours: mcucompile.compile(..., calibration=the 32 samples) with the default options (min/max ranges, bias
  correction), without bias correction, and with percentile clipping at 99.99; the C is built with gcc and run
  through cffi (CompiledModel.verify), its float output compared with onnxruntime on the float model.
- onnxruntime: quantize_static(QuantFormat.QDQ, per_channel=True, CalibrationMethod.MinMax, activations and
  weights QInt8) on the same 32 samples, after onnxruntime's documented quant_pre_process (shape inference,
  constant and BatchNorm folding), the QDQ model run in onnxruntime on the same 256 samples (tests/zoo.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import zoo  # noqa: E402

import mcucompile  # noqa: E402
from mcucompile.verify import accuracy, onnxruntime_outputs  # noqa: E402

CALIBRATION_SAMPLES, TEST_SAMPLES = 32, 256
# our calibration options, as compile() keyword arguments; the first is the default
OPTIONS = {"default": {}, "no bias corr.": {"bias_correction": False}, "p99.99": {"percentile": 99.99}}
LOW_SQNR_DB = 25.0  # tests/test_zoo.py's threshold
BELOW: list[str] = []  # families below it, with both figures, for the note under the table
GAPS: list[float] = []  # our min/max SQNR minus onnxruntime's, per family
SECTION = "## Network-family zoo: int8 accuracy vs onnxruntime's quantizer"


def fmt_db(acc) -> str:
    return "fails" if acc is None else f"{acc.sqnr_db:.1f}"


def fmt_top1(acc, classifier: bool) -> str:
    if not classifier:
        return "–"
    return "fails" if acc is None else f"{acc.top1_agreement * 100:.1f}"


def short_error(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (text[:110] + "...") if len(text) > 110 else text


def family_row(family: str, opset: int, size) -> str:
    fam = zoo.FAMILIES[family]
    model = zoo.export(family, opset, size)
    calib = zoo.samples(family, size, CALIBRATION_SAMPLES, seed=1)
    test = zoo.samples(family, size, TEST_SAMPLES, seed=2)
    reference = onnxruntime_outputs(model.SerializeToString(), test)
    shape = "x".join(map(str, zoo.input_shape(family, size)[1:]))

    ours, stats, plan = {}, None, None
    for label, options in OPTIONS.items():
        try:
            start = time.perf_counter()
            compiled = mcucompile.compile(model, name="zoo", calibration=calib, **options)
            seconds = seconds if ours else time.perf_counter() - start  # compile time with the default options
            report = compiled.verify(test)
            if report.max_lsb_vs_reference != 0:
                raise AssertionError(f"C differs from the int8 reference by {report.max_lsb_vs_reference} LSB")
            ours[label] = report.vs_onnxruntime
            stats, plan = compiled.stats, compiled.plan
        except Exception as exc:  # a family the compiler cannot take yet: say why in the table
            empty = len(header()) - 3
            return f"| {family} | {shape} | fails: {short_error(exc)} |" + " |" * empty
    try:
        ort_q = accuracy(reference, onnxruntime_outputs(zoo.ort_quantize(model, calib), test))
    except Exception as exc:  # onnxruntime's quantizer or runtime fails on this model: keep our columns
        print(f"{family}: onnxruntime-quantized model fails: {short_error(exc)}", file=sys.stderr)
        ort_q = None
    mine = ours["default"].sqnr_db
    if ort_q is not None:
        GAPS.append(mine - ort_q.sqnr_db)
    if mine < LOW_SQNR_DB:
        BELOW.append(f"{family} {shape} {mine:.1f} dB (onnxruntime's quantizer {fmt_db(ort_q)})")
    cells = [
        family,
        shape,
        f"{stats.params:,}",
        f"{stats.macs:,}",
        f"{stats.weight_bytes:,}",
        f"{plan.size:,}",
        f"{seconds:.1f}",
        *(fmt_db(a) for a in ours.values()),
        fmt_db(ort_q),
        *(fmt_top1(a, fam.classifier) for a in ours.values()),
        fmt_top1(ort_q, fam.classifier),
    ]
    return "| " + " | ".join(cells) + " |"


def header() -> list[str]:
    return (
        ["family", "input", "params", "MACs", "flash (B)", "arena (B)", "compile (s)"]
        + [f"SQNR ours {o} (dB)" for o in OPTIONS]
        + ["SQNR ort-quantized (dB)"]
        + [f"top-1 ours {o} (%)" for o in OPTIONS]
        + ["top-1 ort-quantized (%)"]
    )


def table(opset: int) -> list[str]:
    head = header()
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for family in zoo.FAMILIES:
        for size in zoo.sizes(family):
            start = time.perf_counter()
            lines.append(family_row(family, opset, size))
            print(f"{family} {size}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    except OSError:
        gcc = "?"
    import onnxruntime
    import torch

    return (
        f"{platform.machine()} ({cpu}, {os.cpu_count()} cores), CPython {platform.python_version()}, gcc {gcc}, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, mcucompile {mcucompile.__version__}"
    )


def section(opset: int, lines: list[str]) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: `python benchmarks/zoo.py --opset {opset} --update` (models: `tests/zoo.py`, exported with "
            f"`torch.onnx.export(..., dynamo=False)` at opset {opset}, both input sizes of each family).",
            f"Machine: {machine()}, {time.strftime('%Y-%m-%d')}.",
            "",
            *lines,
            "",
            f"- Data: {CALIBRATION_SAMPLES} standard-normal calibration inputs, {TEST_SAMPLES} other standard-normal "
            "test inputs; the networks have random weights (He-normal) and perturbed BatchNorm statistics, so the "
            "figures compare quantizers on the same random models, not task accuracy.",
            "- **SQNR / top-1** are against onnxruntime running the float model. **ours**: the generated C (gcc, "
            "run through cffi, `NAME_run_f32`), bit-identical to the int8 reference on every test input; default: "
            "min/max ranges and bias correction; then without bias correction (`bias_correction=False`) and with "
            "`percentile=99.99`. **ort-quantized**: "
            "`onnxruntime.quantization.quantize_static` with QuantFormat.QDQ, per_channel=True, "
            "CalibrationMethod.MinMax, activations and weights QInt8, on the same calibration inputs, after "
            "`quant_pre_process`, run in onnxruntime. (Without `quant_pre_process` onnxruntime's quantizer also "
            "quantizes the autoencoder's Resize `scales`, computed by a Concat in the exported graph, and the "
            "quantized model then fails in onnxruntime.) The autoencoder has no classes (top-1 –).",
            "- Below 25 dB (tests/test_zoo.py's threshold) with the default options: "
            + ("; ".join(BELOW) if BELOW else "none")
            + ". Ours (default) minus onnxruntime's quantizer, SQNR: "
            + (f"{min(GAPS):+.1f} to {max(GAPS):+.1f} dB" if GAPS else "n/a")
            + " over the rows, so a low figure here is the random model's, not the compiler's; "
            "tests/test_zoo.py reports such cases as xfail with both figures, and fails them if ours is more than "
            "0.5 dB (or 3 top-1 points) below onnxruntime's.",
            "- **flash** counts the constant arrays of the generated C (weights, biases, multipliers, tables); "
            "**arena** is `NAME_ARENA_SIZE`; **compile** is the wall time of `mcucompile.compile` (default options).",
            "",
        ]
    )


def update_benchmarks_md(text: str) -> None:
    path = ROOT / "benchmarks" / "BENCHMARKS.md"
    doc = path.read_text()
    pattern = re.compile(re.escape(SECTION) + r".*?(?=^## |\Z)", re.S | re.M)
    doc = pattern.sub(lambda _: text + "\n", doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opset", type=int, default=17, choices=zoo.OPSETS)
    parser.add_argument("--update", action="store_true", help="write the table into benchmarks/BENCHMARKS.md")
    args = parser.parse_args()
    text = section(args.opset, table(args.opset))
    print(text)
    if args.update:
        update_benchmarks_md(text)


if __name__ == "__main__":
    main()
