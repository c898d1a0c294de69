"""Run the compression workflow and write its table (see README.md beside this file).

    python examples/compression/run.py           # full run: also writes examples/compression/results.md
    python examples/compression/run.py --quick   # a few epochs per stage: the table goes to the build directory
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pipeline  # noqa: E402 - found through the path set just above


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs per stage, for a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "build", help="where the ONNX models and C go")
    args = parser.parse_args()
    report = pipeline.run(pipeline.QUICK_EPOCHS_SCALE if args.quick else 1.0, args.out)
    table = report.table("python examples/compression/run.py" + (" --quick" if args.quick else ""))
    (args.out / "results.md").write_text(table)
    if not args.quick:
        (HERE / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
