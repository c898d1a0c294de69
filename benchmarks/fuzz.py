"""Soak run of the differential fuzzer: random valid graphs (tests/fuzz_models.py), compiled and checked as in
tests/test_fuzz.py (C == int8 reference bit for bit under ASan/UBSan; float reference == onnxruntime).

    python benchmarks/fuzz.py --minutes 10 [--start SEED]

Prints each failing seed with its error; reproduce one with `--start SEED --count 1`.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_fuzz import check_seed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--start", type=int, default=int(time.time()))
    parser.add_argument("--count", type=int, default=None, help="stop after this many seeds")
    args = parser.parse_args()
    deadline = time.monotonic() + 60 * args.minutes
    seed, runs, failures = args.start, 0, []
    while time.monotonic() < deadline and (args.count is None or runs < args.count):
        try:
            check_seed(seed)
        except Exception as exc:  # report every kind of failure, keep fuzzing
            failures.append(seed)
            print(f"FAIL seed {seed}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            traceback.print_exc(limit=2)
        seed, runs = seed + 1, runs + 1
    print(f"{runs} models, {len(failures)} failures{': ' + str(failures) if failures else ''}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
