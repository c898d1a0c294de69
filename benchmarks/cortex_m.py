"""Cost of one inference of the MLPerf Tiny models on Cortex-M4 and Cortex-M0+: the markdown tables of
BENCHMARKS.md, section "Cortex-M cost".

    python benchmarks/cortex_m.py [--shared ../shared] [--models kws,vww,ic,ad] [--jobs 2]

Per model and core, totals measured with the shared measuring stick ../shared/tools/m4cost.py (run as a
program): an entry `bench_NAME` fills a static input, calls NAME_run and returns a checksum of the output; an
entry `setup_NAME` does the same without NAME_run; the table gives the difference (instructions, est. cycles)
and the bench entry's ELF sizes and stack, next to the size of the model's .tflite file and the compile time.
Then kws against CMSIS-NN's figures in ../shared/benchmarks/cmsis_nn_kws.md, and a per-layer table of every
model from mcucompile's own `bench` (mcucompile.bench.bench_compiled) on both cores. Needs arm-none-eabi-gcc + newlib, unicorn, capstone, pyelftools.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mcucompile
from mcucompile.bench import bench_compiled, compiler_version, require_tools

CPUS = ("cortex-m4", "cortex-m0plus")
CMSIS_NN_KWS = {"cortex-m4": 9_816_277, "cortex-m0plus": 40_450_520}  # ../shared/benchmarks/cmsis_nn_kws.md

ENTRIES = r"""
#include <stdint.h>
#include "{name}.h"

static int8_t bench_in[{P}_INPUT_SIZE];
static int8_t bench_out[{P}_OUTPUT_SIZE];

static void fill(void)
{{
    int32_t i;
    for (i = 0; i < {P}_INPUT_SIZE; i++)
    {{
        bench_in[i] = (int8_t)(((i * 37 + 11) & 0xFF) - 128);
    }}
}}

static int checksum(void)
{{
    int32_t i, sum = 0;
    for (i = 0; i < {P}_OUTPUT_SIZE; i++)
    {{
        sum += (i + 1) * bench_out[i];
    }}
    return (int)sum;
}}

int bench_{name}(void)
{{
    fill();
    if ({name}_run(bench_in, bench_out) != 0)
    {{
        return -1;
    }}
    return checksum();
}}

int setup_{name}(void)
{{
    fill();
    return checksum();
}}
"""


def m4cost(shared: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(shared / "tools" / "m4cost.py"), *args], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"m4cost {' '.join(args[:3])} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout) if "--json" in args else {}


def measure(shared: Path, work: Path, name: str, cpu: str) -> dict:
    """m4cost figures of bench_NAME minus setup_NAME on `cpu`."""
    src = work / name
    runs = {}
    for entry in (f"bench_{name}", f"setup_{name}"):
        elf = str(work / f"{entry}_{cpu}.elf")
        m4cost(shared, "build", "--cpu", cpu, "--entry", entry, "-I", str(src), "-o", elf,
               str(src / "entries.c"), str(src / f"{name}.c"))  # fmt: skip
        runs[entry] = m4cost(shared, "run", elf, "--entry", entry, "--json")
    bench, setup = runs[f"bench_{name}"], runs[f"setup_{name}"]
    if bench["r0"] == 0xFFFFFFFF:
        raise SystemExit(f"{name}_run failed on {cpu}")
    return dict(
        instructions=bench["instructions"] - setup["instructions"],
        cycles=bench["est_cycles"] - setup["est_cycles"],
        flash=bench["flash_bytes"],
        static_ram=bench["static_ram_bytes"],
        stack=bench["stack_bytes"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--models", default="kws,vww,ic,ad")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = args.shared / "benchmarks" / "mlperf_tiny"
    names = args.models.split(",")
    cc = require_tools()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{compiler_version(cc)} -O2, mcucompile {mcucompile.__version__}\n")  # fmt: skip

    compiled, compile_seconds = {}, {}
    for name in names:
        start = time.perf_counter()
        compiled[name] = mcucompile.compile(root / f"{name}.onnx", name=name)
        compile_seconds[name] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="cortex_m_") as tmp:
        work = Path(tmp)
        for name, cm in compiled.items():
            cm.write(work / name)
            (work / name / "entries.c").write_text(ENTRIES.format(name=name, P=name.upper()))
        jobs = [(name, cpu) for name in names for cpu in CPUS]
        with ThreadPoolExecutor(args.jobs) as pool:
            figures = dict(zip(jobs, pool.map(lambda job: measure(args.shared, work, *job), jobs)))

    print("Totals (m4cost: bench entry minus setup entry; flash, static RAM and stack of the bench ELF)\n")
    print("| model | core | MACs | est. cycles | cycles/MAC | instructions | flash (B) | .tflite (B) "
          "| flash / .tflite | static RAM (B) | stack (B) | compile (s) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, cpu), f in figures.items():
        macs = compiled[name].stats.macs
        tflite = (root / f"{name}.tflite").stat().st_size
        print(f"| {name} | {cpu} | {macs:,} | {f['cycles']:,} | {f['cycles'] / macs:.2f} | {f['instructions']:,} "
              f"| {f['flash']:,} | {tflite:,} | {f['flash'] / tflite:.2f} | {f['static_ram']:,} | {f['stack']:,} "
              f"| {compile_seconds[name]:.2f} |")  # fmt: skip

    if "kws" in compiled:
        print("\nkws against CMSIS-NN (../shared/benchmarks/cmsis_nn_kws.md, same m4cost)\n")
        print("| core | mcucompile est. cycles | CMSIS-NN est. cycles | mcucompile / CMSIS-NN |")
        print("|---|---:|---:|---:|")
        for cpu in CPUS:
            ours = figures["kws", cpu]["cycles"]
            print(f"| {cpu} | {ours:,} | {CMSIS_NN_KWS[cpu]:,} | {ours / CMSIS_NN_KWS[cpu]:.2f} |")

    for name, cm in compiled.items():
        per_layer(name, cm)


def per_layer(name: str, cm) -> None:
    """Per kernel call on both cores from `mcucompile bench`; the rows add up to its totals exactly."""
    m4, m0 = (bench_compiled(cm, cpu) for cpu in CPUS)
    print(f"\n{name} per layer (`mcucompile bench`, its m4-simple cost table; pre/post: harness and returns)\n")
    print("| step | kernel | node | MACs | M4 instructions | M4 est. cycles | M4 cycles/MAC "
          "| M0+ instructions | M0+ est. cycles | M0+ cycles/MAC |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for a, b in zip(m4.layers, m0.layers):
        step = {-1: "pre", -2: "post"}.get(a.step, str(a.step))
        ratio_a = f"{a.cycles / a.macs:.2f}" if a.macs else "-"
        ratio_b = f"{b.cycles / b.macs:.2f}" if b.macs else "-"
        print(f"| {step} | {a.kernel} | {a.node.split(';')[0][:48]} | {a.macs:,} | {a.instructions:,} | {a.cycles:,} "
              f"| {ratio_a} | {b.instructions:,} | {b.cycles:,} | {ratio_b} |")  # fmt: skip
    print(f"| | total | | {m4.macs:,} | {m4.instructions:,} | {m4.cycles:,} | {m4.cycles_per_mac:.2f} "
          f"| {m0.instructions:,} | {m0.cycles:,} | {m0.cycles_per_mac:.2f} |")  # fmt: skip
    for r in (m4, m0):
        print(f"\n`mcucompile bench` {name} on {r.target}: flash {r.flash_bytes:,} B (code {r.code_bytes:,} + "
              f"constants {r.const_bytes:,}), RAM {r.ram_bytes:,} B (arena {r.arena_bytes:,} + input/output "
              f"{r.io_bytes:,} + other {r.other_static_bytes:,} + stack {r.stack_bytes:,})")  # fmt: skip


if __name__ == "__main__":
    main()
