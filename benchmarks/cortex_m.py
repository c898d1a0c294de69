"""Cost of one inference of the MLPerf Tiny models on Cortex-M4 and Cortex-M0+: the markdown tables of
BENCHMARKS.md, section "Cortex-M cost".

    python benchmarks/cortex_m.py [--models kws,vww,ic,ad] [--jobs 2]

Every figure comes from mcucompile's own `bench` (mcucompile.bench.bench_compiled): the generated C and its
harness cross-compiled with arm-none-eabi-gcc -O2, one inference emulated on the model's first TFLite Micro
golden input (benchmarks/mlperf_tiny/), instructions counted exactly and cycles estimated with bench's table.
Totals are NAME_run's: everything after the harness's entry. Then kws against CMSIS-NN's figures
(benchmarks/mlperf_tiny/cmsis_nn_kws.json, measured with the same cost table), and a per-layer table of every
model on both cores. Needs arm-none-eabi-gcc + newlib, unicorn, capstone, pyelftools.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import mcucompile
from mcucompile.bench import BenchResult, bench_compiled, compiler_version, require_tools

MLPERF = Path(__file__).resolve().parent / "mlperf_tiny"
CPUS = ("cortex-m4", "cortex-m0plus")


def run_cycles(r: BenchResult) -> tuple[int, int]:
    """Instructions and est. cycles of NAME_run: the run less the harness's entry before the first marker."""
    pre = r.layers[0]
    return r.instructions - pre.instructions, r.cycles - pre.cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="kws,vww,ic,ad")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    names = args.models.split(",")
    cc = require_tools()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{compiler_version(cc)} -O2, mcucompile {mcucompile.__version__}\n")  # fmt: skip

    compiled, compile_seconds, inputs = {}, {}, {}
    for name in names:
        start = time.perf_counter()
        compiled[name] = mcucompile.compile(MLPERF / f"{name}.onnx", name=name)
        compile_seconds[name] = time.perf_counter() - start
        golden = np.load(MLPERF / f"{name}_golden.npz")
        inputs[name] = golden["inputs"][0].ravel()
        inputs[name, "expected"] = golden["outputs"][0].ravel()
    jobs = [(name, cpu) for name in names for cpu in CPUS]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(zip(jobs, pool.map(lambda job: bench_compiled(compiled[job[0]], job[1], inputs[job[0]]), jobs)))
    for (name, cpu), r in results.items():
        if r.status != 0 or not np.array_equal(r.output, inputs[name, "expected"]):
            raise SystemExit(f"{name} on {cpu}: the emulated output differs from TFLite Micro's (status {r.status})")

    print("Totals (NAME_run on the first golden input; flash, static RAM and stack of the bench ELF)\n")
    print("| model | core | MACs | est. cycles | cycles/MAC | instructions | flash (B) | .tflite (B) "
          "| flash / .tflite | static RAM (B) | stack (B) | compile (s) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, cpu), r in results.items():
        instructions, cycles = run_cycles(r)
        tflite = (MLPERF / f"{name}.tflite").stat().st_size
        print(f"| {name} | {cpu} | {r.macs:,} | {cycles:,} | {cycles / r.macs:.2f} | {instructions:,} "
              f"| {r.flash_bytes:,} | {tflite:,} | {r.flash_bytes / tflite:.2f} | {r.static_ram_bytes:,} "
              f"| {r.stack_bytes:,} | {compile_seconds[name]:.2f} |")  # fmt: skip

    if "kws" in compiled:
        cmsis = json.loads((MLPERF / "cmsis_nn_kws.json").read_text())["network_est_cycles"]
        print("\nkws against CMSIS-NN (benchmarks/mlperf_tiny/cmsis_nn_kws.json, same cost table)\n")
        print("| core | mcucompile est. cycles | CMSIS-NN est. cycles | mcucompile / CMSIS-NN |")
        print("|---|---:|---:|---:|")
        for cpu in CPUS:
            ours = run_cycles(results["kws", cpu])[1]
            print(f"| {cpu} | {ours:,} | {cmsis[cpu]:,} | {ours / cmsis[cpu]:.2f} |")

    for name in names:
        per_layer(name, results[name, CPUS[0]], results[name, CPUS[1]])


def per_layer(name: str, m4: BenchResult, m0: BenchResult) -> None:
    """Per kernel call on both cores; the rows add up to bench's totals exactly."""
    print(f"\n{name} per layer (`mcucompile bench`; pre/post: harness entry and returns)\n")
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
