"""MLPerf Tiny: compile the four QDQ models, check them against TFLite Micro's golden outputs, and print the
markdown table of BENCHMARKS.md (params, MACs, flash, arena vs lower bound vs TFLite Micro, compile time).

    python benchmarks/mlperf_tiny.py
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import mcucompile
from mcucompile.verify import run_executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    root = Path(__file__).resolve().parent / "mlperf_tiny"
    summary = json.loads((root / "summary.json").read_text())
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"mcucompile {mcucompile.__version__}\n")
    print("| model | params | MACs | flash: constants (B) | .tflite (B) | arena (B) | lower bound (B) "
          "| TFLite Micro arena (B) | golden outputs | mismatches | compile (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("kws", "vww", "ic", "ad"):
        start = time.perf_counter()
        cm = mcucompile.compile(root / f"{name}.onnx", name=name)
        seconds = time.perf_counter() - start
        data = np.load(root / f"{name}_golden.npz")
        with tempfile.TemporaryDirectory() as tmp:
            cm.write(tmp)
            got = run_executable(Path(tmp), name, data["inputs"].reshape(len(data["inputs"]), -1), sanitize=False)
        mismatches = int(np.sum(got != data["outputs"].reshape(got.shape)))
        print(f"| {name} | {cm.stats.params:,} | {cm.stats.macs:,} | {cm.stats.weight_bytes:,} "
              f"| {(root / f'{name}.tflite').stat().st_size:,} | {cm.plan.size:,} | {cm.plan.lower_bound:,} "
              f"| {summary[name]['tflm_min_arena_bytes_x86_64']:,} | {got.size:,} | {mismatches} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
