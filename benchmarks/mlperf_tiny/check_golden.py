"""Re-run TensorFlow Lite Micro on the golden inputs of this folder and compare with the stored outputs.

    pip install tflite-micro numpy && python benchmarks/mlperf_tiny/check_golden.py [--arena]

For every <m>_golden.npz (and ad_real_golden.npz), each stored int8 input goes through TFLite Micro's own
Python interpreter (reference kernels) on <m>.tflite; the script prints the number of samples whose output
differs from the stored one (0 expected) and exits 1 if any does. --arena also finds, by bisection, the
smallest arena TFLite Micro accepts for each model and compares it with summary.json. Not part of the test
suite: it checks the oracle, the tests check the compiler against it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = [("kws", "kws_golden"), ("vww", "vww_golden"), ("ic", "ic_golden"), ("ad", "ad_golden"),
          ("ad", "ad_real_golden")]  # fmt: skip


def interpreter(model: str, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_file(str(HERE / f"{model}.tflite"), arena_size=arena)


def run(model: str, x: np.ndarray, arena: int = 8 << 20) -> np.ndarray:
    it = interpreter(model, arena)
    it.set_input(x.reshape(it.get_input_details(0)["shape"]), 0)
    it.invoke()
    return it.get_output(0).copy()


def smallest_arena(model: str, x: np.ndarray) -> int:
    """The smallest arena (to 16 bytes) in which TFLite Micro allocates and runs the model."""

    def fits(n: int) -> bool:
        try:
            run(model, x, n)
            return True
        except Exception:  # the interpreter reports a short arena as a RuntimeError of its own
            return False

    lo, hi = 256, 8 << 20
    while hi - lo > 16:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arena", action="store_true", help="also bisect the smallest arena of each model")
    args = parser.parse_args()
    differing = 0
    for model, golden in GOLDEN:
        data = np.load(HERE / f"{golden}.npz")
        bad = sum(not np.array_equal(run(model, x).ravel(), y.ravel()) for x, y in zip(data["inputs"], data["outputs"]))
        print(f"{golden}: {len(data['inputs'])} inputs, {bad} outputs differ from TFLite Micro's")
        differing += bad
    if args.arena:
        summary = json.loads((HERE / "summary.json").read_text())
        for model in ("kws", "vww", "ic", "ad"):
            x = np.load(HERE / f"{model}_golden.npz")["inputs"][0]
            stored = summary[model]["tflm_min_arena_bytes_x86_64"]
            print(f"{model}: smallest arena {smallest_arena(model, x):,} B (summary.json: {stored:,} B)")
    raise SystemExit(1 if differing else 0)


if __name__ == "__main__":
    main()
