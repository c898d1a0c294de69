"""Cycles of the generated MLPerf Tiny kws (DS-CNN) on Cortex-M4 and Cortex-M0+, measured with m4cost.

    python benchmarks/kws_cycles.py [--per-layer] [--cpu cortex-m4 --cpu cortex-m0plus] [--keep DIR]

Compiles ../shared/benchmarks/mlperf_tiny/kws.onnx, builds an entry `bench_kws` (fill a static input, call
kws_run, return a checksum) and a setup-only entry (fill the input, checksum an untouched output) with
arm-none-eabi-gcc -O2, runs both in m4cost's emulator and prints the difference. --per-layer also builds one
entry per kernel call that returns from the model right after that call (through KWS_AFTER_CALL) and prints
the differences of consecutive cumulative counts (the last step also counts kws_run's return).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
M4COST = SHARED / "tools" / "m4cost.py"
MODEL = SHARED / "benchmarks" / "mlperf_tiny" / "kws.onnx"

BENCH_C = r"""
#include <stdint.h>
#ifdef BENCH_STOP
/* Return from kws_invoke right after kernel call BENCH_STOP (cumulative cost up to that call). */
#define KWS_AFTER_CALL(step, arena) if ((step) == BENCH_STOP) { return 0; }
#endif
#include "kws.c"

static int8_t bench_in[KWS_INPUT_SIZE];
static int8_t bench_out[KWS_OUTPUT_SIZE];

static void bench_fill(void)
{
    uint32_t s = 12345u;
    for (int i = 0; i < KWS_INPUT_SIZE; i++)
    {
        s = s * 1103515245u + 12345u;
        bench_in[i] = (int8_t)(s >> 24);
    }
}

static int bench_sum(void)
{
    int sum = 0;
    for (int i = 0; i < KWS_OUTPUT_SIZE; i++)
    {
        sum = sum * 31 + bench_out[i];
    }
    return sum;
}

int bench_kws(void)
{
    bench_fill();
    if (kws_run(bench_in, bench_out) != 0)
    {
        return -1;
    }
    return bench_sum();
}

int bench_setup(void)
{
    bench_fill();
    return bench_sum();
}
"""


def m4cost(*args: str) -> str:
    return subprocess.run([sys.executable, str(M4COST), *args], check=True, capture_output=True, text=True).stdout


def measure(work: Path, cpu: str, entry: str, tag: str, defines: tuple[str, ...] = ()) -> dict:
    elf = work / f"{cpu}_{tag}.elf"
    flags = [f"-D{d}" for d in defines]
    m4cost("build", "--cpu", cpu, "--entry", entry, "-I", str(work), *flags, "-o", str(elf), str(work / "bench_kws.c"))
    return json.loads(m4cost("run", str(elf), "--entry", entry, "--json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", action="append", help="cortex-m4, cortex-m0plus, ... (default: m4 and m0plus)")
    ap.add_argument("--per-layer", action="store_true")
    ap.add_argument("--keep", type=Path, help="write the generated sources and ELFs here")
    a = ap.parse_args()
    cpus = a.cpu or ["cortex-m4", "cortex-m0plus"]

    sys.path.insert(0, str(ROOT))
    import mcucompile

    model = mcucompile.compile(MODEL, name="kws")
    calls = model.program.calls
    work = a.keep or Path(tempfile.mkdtemp(prefix="kws_cycles_"))
    work.mkdir(parents=True, exist_ok=True)
    model.write(work)
    (work / "bench_kws.c").write_text(BENCH_C)

    for cpu in cpus:
        jobs = [("bench_kws", "full", ()), ("bench_setup", "setup", ())]
        if a.per_layer:
            jobs += [("bench_kws", f"stop{k}", (f"BENCH_STOP={k}",)) for k in range(len(calls) - 1)]
        with ThreadPoolExecutor(8) as pool:
            res = dict(zip([j[1] for j in jobs], pool.map(lambda j: measure(work, cpu, j[0], j[1], j[2]), jobs)))
        full, setup = res["full"], res["setup"]
        cycles = full["est_cycles"] - setup["est_cycles"]
        instr = full["instructions"] - setup["instructions"]
        print(f"kws on {cpu}: {cycles:,} est. cycles, {instr:,} instructions (checksum {full['r0']}, "
              f"stack {full['stack_bytes']} B, flash {full['flash_bytes']:,} B)")
        if a.per_layer:
            prev = setup["est_cycles"]
            for k, call in enumerate(calls):
                cum = res[f"stop{k}"]["est_cycles"] if k < len(calls) - 1 else full["est_cycles"]
                print(f"  {k:2d} {call.kernel:34s} {cum - prev:12,}")
                prev = cum


if __name__ == "__main__":
    main()
