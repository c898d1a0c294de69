"""`mcucompile bench` and the cross-compilers: the emulated Cortex-M run gives exactly the host's int8 output,
its per-call counts add up, its report names every figure, a missing tool is one clear error; and the generated
C of several models compiles warning-free for Cortex-M0+, Cortex-M4 and RV32IMC.

These tests need arm-none-eabi-gcc (+ newlib), riscv64-unknown-elf-gcc, unicorn, capstone and pyelftools (README's
test command installs them). They are never skipped: a missing tool fails them.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import mcucompile
from conftest import assert_bit_exact
from mcucompile import bench as bench_mod
from mcucompile.cli import main
from mcucompile.verify import STRICT_CFLAGS, run_executable

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "digits"
MLPERF = ROOT / "benchmarks" / "mlperf_tiny"
TARGETS = ["cortex-m4", "cortex-m0plus"]


def _digits():
    cm = mcucompile.compile(
        EXAMPLES / "digits_dscnn.onnx", name="digits", calibration=str(EXAMPLES / "digits_calib.npy")
    )
    test = np.load(EXAMPLES / "digits_test.npz")["x"][:1]
    return cm, cm.quantize_input(test[0]).ravel()


def _mlperf(name: str):
    cm = mcucompile.compile(MLPERF / f"{name}.onnx", name=name)
    data = np.load(MLPERF / f"{name}_golden.npz")
    return cm, data["inputs"][0].ravel(), data["outputs"][0].ravel()


@pytest.fixture(scope="module")
def models():
    digits, digits_in = _digits()
    return {"digits": (digits, digits_in, None), **{name: _mlperf(name) for name in ("ad", "kws", "vww", "ic")}}


@pytest.fixture(scope="module")
def results(models):
    cache = {}

    def get(model: str, target: str) -> bench_mod.BenchResult:
        if (model, target) not in cache:
            cm, x, _ = models[model]
            cache[model, target] = bench_mod.bench_compiled(cm, target, x)
        return cache[model, target]

    return get


# The Arm builds take the kernels' DSP/assembly paths (M4) and Thumb-1 paths (M0+), which the host never runs:
# kws, vww and ic cover the fast convolution, depthwise and fully connected kernels on both.
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", ["digits", "ad", "kws", "vww", "ic"])
def test_emulated_output_equals_host_and_reference(models, results, model, target):
    cm, x, golden = models[model]
    result = results(model, target)
    assert result.status == 0
    with tempfile.TemporaryDirectory() as tmp:
        cm.write(tmp)
        host = run_executable(Path(tmp), cm.name, x[None], sanitize=False)[0]
    assert_bit_exact(result.output, host)
    assert_bit_exact(result.output, cm.run_reference(x.reshape(1, *cm.graph.tensors[cm.graph.inputs[0]].shape)))
    if golden is not None:  # TFLite Micro's own output on this input
        assert_bit_exact(result.output, golden)


@pytest.mark.parametrize("target", TARGETS)
def test_per_call_counts_add_up(models, results, target):
    cm = models["digits"][0]
    r = results("digits", target)
    steps = [layer.step for layer in r.layers]
    assert steps == [-1, *range(len(cm.program.calls)), -2]
    assert sum(layer.instructions for layer in r.layers) == r.instructions
    assert sum(layer.cycles for layer in r.layers) == r.cycles
    assert sum(layer.macs for layer in r.layers) == r.macs == cm.stats.macs
    kernels = [layer for layer in r.layers if layer.step >= 0]
    assert all(layer.instructions > 0 and layer.cycles >= layer.instructions for layer in kernels)
    assert sum(layer.instructions for layer in kernels) > 0.99 * r.instructions  # the harness is negligible
    assert r.instructions < r.cycles < 4 * r.instructions


def test_memory_figures(models, results):
    cm = models["digits"][0]
    m4, m0 = results("digits", "cortex-m4"), results("digits", "cortex-m0plus")
    for r in (m4, m0):
        assert r.const_bytes >= cm.stats.weight_bytes  # every constant array is in .rodata
        assert r.code_bytes > 0
        assert cm.plan.size <= r.arena_bytes <= cm.plan.size + 8  # the static int32 array, rounded up
        assert r.io_bytes == cm.graph.tensors[cm.graph.inputs[0]].size + cm.graph.tensors[cm.graph.outputs[0]].size
        assert 0 < r.stack_bytes < 4096
        assert r.ram_bytes == r.arena_bytes + r.io_bytes + r.other_static_bytes + r.stack_bytes
    assert m0.instructions > m4.instructions  # Thumb-1 only: more instructions for the same work


def test_report_names_every_figure(results):
    text = results("digits", "cortex-m4").report()
    for field in ("cortex-m4", "flash", "code", "constants", "RAM", "arena", "stack", "instructions", "cycles",
                  "MACs", "cycles/MAC", "cost model", "estimate", "wait states", "mcu_conv_s8", "total"):  # fmt: skip
        assert field in text, field


def test_cli_bench(capsys):
    assert main(["bench", str(EXAMPLES / "digits_dscnn.onnx"), "--target", "cortex-m0plus", "--name", "digits",
                 "--calibration", str(EXAMPLES / "digits_calib.npy")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "digits on cortex-m0plus" in out and "cycles/MAC" in out and "mcu_depthwise_conv_" in out


def test_missing_cross_compiler_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no arm-none-eabi-gcc anywhere
    assert main(["bench", str(EXAMPLES / "digits_dscnn.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "arm-none-eabi-gcc" in err and "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in err


def test_missing_unicorn_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "unicorn", None)  # import unicorn raises ImportError
    assert main(["bench", str(EXAMPLES / "digits_dscnn.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unicorn" in err and 'pip install "mcucompile[bench]"' in err


def test_unknown_target_is_an_error(models):
    with pytest.raises(mcucompile.CompileError, match="cortex-m0plus"):
        bench_mod.bench_compiled(models["digits"][0], "cortex-a53")


@pytest.mark.parametrize(
    "mnemonic,operands,cycles",
    [("adds", "r0, r1", 1), ("ldr", "r0, [r1]", 2), ("ldrbne", "r0, [r1]", 2), ("str", "r0, [r1]", 1),
     ("push", "{r4, r5, lr}", 4), ("pop", "{r4, pc}", 5), ("ldrd", "r0, r1, [r2]", 3),
     ("smlad", "r0, r1, r2, r3", 1), ("sdiv", "r0, r1, r2", 7), ("bls", "#0x10", 1), ("vdiv.f32", "s0, s1, s2", 14),
     # the reference estimator's rules: LDM/STM count their base register, conditional forms go by prefix
     ("ldm", "r0!, {r1, r2, r3}", 5), ("stm.w", "r0, {r1, r2}", 4), ("ldrdne", "r0, r1, [r2]", 2),
     ("popne", "{r4, pc}", 1)],
)  # fmt: skip
def test_cost_table(mnemonic, operands, cycles):
    assert bench_mod.instruction_cost(mnemonic, operands) == cycles


# ------------------------------------------------------------------------------ warning-free cross-compilation

CROSS = {
    # Debian's gcc-riscv64-unknown-elf ships no C library headers: take newlib's target-independent ones, from
    # libnewlib-dev (a dependency of libnewlib-arm-none-eabi).
    "rv32imc": ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32", "-isystem", "/usr/include/newlib"],
    "cortex-m0plus": ["arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m0plus", "-mfloat-abi=soft"],
    "cortex-m4": ["arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}


def _zoo_compiled(family: str) -> mcucompile.CompiledModel:
    import zoo

    size = zoo.sizes(family)[0]
    model = zoo.export(family, 17, size)
    return mcucompile.compile(model, name=family, calibration=zoo.samples(family, size, 8, seed=1))


def _cross_models() -> dict:
    return {
        "digits": lambda: _digits()[0],
        "kws": lambda: mcucompile.compile(MLPERF / "kws.onnx", name="kws"),
        "vww": lambda: mcucompile.compile(MLPERF / "vww.onnx", name="vww"),
        "autoencoder": lambda: _zoo_compiled("autoencoder"),  # Resize (nearest Upsample), ConvTranspose, Sigmoid
        "squeezenet": lambda: _zoo_compiled("squeezenet"),  # fire-module Concat
        "mnasnet": lambda: _zoo_compiled("mnasnet"),  # squeeze-excitation: GlobalAveragePool, Sigmoid, Mul
    }


@pytest.mark.parametrize("model", list(_cross_models()))
def test_generated_c_cross_compiles_without_warnings(model, tmp_path):
    cm = _cross_models()[model]()
    c_file, _ = cm.write(tmp_path)

    def build(target: str) -> tuple[str, subprocess.CompletedProcess]:
        obj = tmp_path / f"{target}.o"
        args = [*CROSS[target], *STRICT_CFLAGS, "-O2", "-c", str(c_file), "-o", str(obj)]
        return target, subprocess.run(args, capture_output=True, text=True)

    with ThreadPoolExecutor(len(CROSS)) as pool:
        for target, proc in pool.map(build, CROSS):
            assert proc.returncode == 0 and not proc.stderr, f"{model} for {target}:\n{proc.stderr[:3000]}"
