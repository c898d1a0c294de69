"""Bad input, hostile names, extreme float inputs, and memory safety of the generated C.

Every bad input ends with exit status 2, at most two lines on stderr (the last one the error, naming the
file/node/tensor and the fix), no traceback, and no output file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mcucompile
from conftest import assert_bit_exact, make_model
from mcucompile.memory import scratch_name
from mcucompile.verify import SANITIZE_FLAGS, STRICT_CFLAGS, run_executable
from test_cli import small_model


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True)


def assert_refused(r, out_dir: Path, *words):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[-1].startswith("mcucompile: error:"), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[-1], lines[-1]
    assert not out_dir.exists() or not any(out_dir.iterdir())


def save(model, path: Path) -> Path:
    onnx.save(model, path)
    return path


def conv_model(**conv_attrs):
    w = np.random.default_rng(0).standard_normal((4, 4 // conv_attrs.get("group", 1), 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "W"], ["y"], name="the_conv", kernel_shape=[3, 3], **conv_attrs)
    return make_model([node], {"x": (1, 4, 6, 6)}, ["y"], {"W": w})


def test_truncated_model(tmp_path):
    data = small_model().SerializeToString()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        assert_refused(run_cli("compile", path, "-o", tmp_path / "o"), tmp_path / "o", path.name)


@pytest.mark.parametrize("opset", [5, 30])
def test_unsupported_opset(tmp_path, opset):
    model = small_model()
    model.opset_import[0].version = opset
    r = run_cli("compile", save(model, tmp_path / "m.onnx"), "-o", tmp_path / "o")
    assert_refused(r, tmp_path / "o", "opset", str(opset))


def test_unknown_domain_operator(tmp_path):
    node = helper.make_node("Frobnicate", ["x"], ["y"], name="odd", domain="com.example")
    model = make_model([node], {"x": (1, 4)}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    r = run_cli("compile", save(model, tmp_path / "m.onnx"), "-o", tmp_path / "o")
    assert_refused(r, tmp_path / "o", "odd", "Frobnicate")


def test_unsupported_attribute_value(tmp_path):
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="the_resize", mode="cubic")
    model = make_model([node], {"x": (1, 4, 6, 6)}, ["y"], {"s": np.array([1, 1, 2, 2], np.float32)})
    r = run_cli("compile", save(model, tmp_path / "m.onnx"), "-o", tmp_path / "o")
    assert_refused(r, tmp_path / "o", "the_resize", "mode 'cubic'")


@pytest.mark.parametrize("shape,word", [((1, 0, 4), "zero"), ((1, 60000, 60000), "too large")])
def test_zero_and_huge_dimensions(tmp_path, shape, word):
    node = helper.make_node("Relu", ["x"], ["y"])
    r = run_cli("compile", save(make_model([node], {"x": shape}, ["y"]), tmp_path / "m.onnx"), "-o", tmp_path / "o")
    assert_refused(r, tmp_path / "o", "'x'", word)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_weights(tmp_path, bad):
    model = conv_model()
    w = numpy_helper.to_array(model.graph.initializer[0]).copy()
    w[0, 0, 0, 0] = bad
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "W"))
    r = run_cli("compile", save(model, tmp_path / "m.onnx"), "-o", tmp_path / "o")
    assert_refused(r, tmp_path / "o", "'W'", "NaN or infinity")


@pytest.mark.parametrize("data", [np.array([["a", "b"]]), np.zeros((4, 3, 8, 8), np.complex64), np.zeros((0, 3, 8, 8))])
def test_calibration_of_the_wrong_dtype_or_empty(tmp_path, data):
    model = save(small_model(), tmp_path / "m.onnx")
    np.save(tmp_path / "c.npy", data)
    assert_refused(run_cli("compile", model, "-o", tmp_path / "o", "--calibration", tmp_path / "c.npy"),
                   tmp_path / "o", "c.npy")


def test_output_directory_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    r = run_cli("compile", save(small_model(), tmp_path / "m.onnx"), "-o", tmp_path / "file" / "sub",
                "--calibration", "/dev/null")
    assert r.returncode == 2  # /dev/null is not an .npy: refused before anything is written
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 8, 8), np.float32))
    r = run_cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "file" / "sub", "--calibration", tmp_path / "c.npy")
    assert_refused(r, tmp_path / "file" / "sub", "file")


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    (tmp_path / "models").mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.zeros(4 * 4 * 9, np.float32).tobytes())
    model = conv_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../secret.bin")
    path = tmp_path / "models" / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert_refused(run_cli("compile", path, "-o", tmp_path / "o"), tmp_path / "o", "outside the model's folder")


HOSTILE = ["x */ int evil; /*", "line\nbreak", 'q"uo\\te', "#define X 1", "int", "3d", "ünï", "a.b", "a/b", "a_b",
           "??/", ""]


def _hostile_classic(t, rng):
    nodes = [
        helper.make_node("Conv", [t[0], t[1]], [t[2]], name=t[3], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", [t[2]], [t[4]], name=t[5]),
        helper.make_node("Conv", [t[4], t[6]], [t[7]], name=t[8], kernel_shape=[1, 1]),
        helper.make_node("Add", [t[7], t[4]], [t[9]], name=t[10]),
        helper.make_node("GlobalAveragePool", [t[9]], ["gap"], name=t[11]),
        helper.make_node("Flatten", ["gap"], ["flat"], name=t[10]),  # a duplicate node name
    ]
    inits = {t[1]: rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             t[6]: rng.standard_normal((4, 4, 1, 1)).astype(np.float32)}
    return make_model(nodes, {t[0]: (1, 3, 6, 6)}, ["flat"], inits)


def _hostile_newer_ops(t, rng):
    """The op families added for network coverage: each emits symbols and constant arrays named after the node."""
    nodes = [
        helper.make_node("Pad", [t[0], t[1]], [t[2]], name=t[3], mode="reflect"),
        helper.make_node("Conv", [t[2], t[4]], [t[5]], name=t[6], kernel_shape=[3, 3]),
        helper.make_node("Sigmoid", [t[5]], [t[7]], name=t[8]),
        helper.make_node("Mul", [t[5], t[9]], [t[10]], name=t[11]),  # per-channel constant, broadcast
        helper.make_node("Concat", [t[7], t[10]], ["cat"], name=t[3], axis=1),
        helper.make_node("ConvTranspose", ["cat", "wt"], ["up"], name=t[8], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["up", "", "scales"], ["big"], name=t[11], mode="nearest"),
        helper.make_node("ReduceMax", ["big"], ["y"], name=t[6], axes=[2, 3], keepdims=0),
    ]
    inits = {t[1]: np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
             t[4]: rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             t[9]: rng.uniform(0.5, 1.5, (4, 1, 1)).astype(np.float32),
             "wt": rng.standard_normal((8, 2, 2, 2)).astype(np.float32),
             "scales": np.array([1, 1, 2, 2], np.float32)}
    return make_model(nodes, {t[0]: (1, 3, 6, 6)}, ["y"], inits)


@pytest.mark.parametrize("build", [_hostile_classic, _hostile_newer_ops])
def test_every_name_hostile_still_gives_valid_exact_c(tmp_path, build):
    """Node, tensor, input, output and graph names from a corpus of hostile strings."""
    rng = np.random.default_rng(0)
    model = build(HOSTILE, rng)
    model.graph.name = "*/ #include <evil.h> /*"
    compiled = mcucompile.compile(model, name="h", calibration=rng.standard_normal((8, 3, 6, 6)).astype(np.float32))
    compiled.write(tmp_path)
    for text in (compiled.c_source, compiled.h_source):
        code = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # what the compiler sees outside comments
        assert not re.search(r"\bint evil\b|#\s*include\s*<evil|#define X 1", code)
        assert text.isascii()
    for cc in ("gcc", "clang"):
        r = subprocess.run([cc, *STRICT_CFLAGS, "-c", str(tmp_path / "h.c"), "-o", str(tmp_path / f"{cc}.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    q = rng.integers(-128, 128, (4, 3 * 6 * 6)).astype(np.int8)
    got = run_executable(tmp_path, "h", q)
    assert_bit_exact(got, compiled.run_reference(q.reshape(4, 1, 3, 6, 6)).reshape(4, -1))


CANARY_HARNESS = r"""
#include <string.h>
#include "{name}.h"

#define GUARD 64
static uint8_t arena_block[GUARD + {P}_ARENA_SIZE + GUARD + 4];
static int8_t out_block[GUARD + {P}_OUTPUT_SIZE + GUARD];

static int intact(const uint8_t *p, int n)
{{
    for (int i = 0; i < n; i++)
        if (p[i] != 0xA5)
            return 0;
    return 1;
}}

/* One run in an external arena, with canary bytes on both sides of the arena and of the output buffer. */
int main(void)
{{
    static int8_t in[{P}_INPUT_SIZE];
    uint8_t *arena = arena_block + GUARD;
    for (int i = 0; i < {P}_INPUT_SIZE; i++)
        in[i] = (int8_t)((i * 37) % 256 - 128);
    memset(arena_block, 0xA5, sizeof arena_block);
    memset(out_block, 0xA5, sizeof out_block);
    if ({name}_run_with_arena(arena, in, out_block + GUARD) != 0)
        return 10;
    if (!intact(arena_block, GUARD) || !intact(arena + {P}_ARENA_SIZE, GUARD))
        return 11;
    const uint8_t *out_bytes = (const uint8_t *)out_block;
    if (!intact(out_bytes, GUARD) || !intact(out_bytes + GUARD + {P}_OUTPUT_SIZE, GUARD))
        return 12;
    if ({name}_run_with_arena(NULL, in, out_block + GUARD) == 0 || {name}_run_with_arena(arena, NULL, out_block) == 0)
        return 13;
    return 0;
}}
"""

EXTREMES_HARNESS = r"""
#include <math.h>
#include <stdio.h>
#include "{name}.h"

/* NULL pointers are refused; +-1e6, +-inf and NaN saturate (NaN -> the zero point) through run_f32. */
int main(void)
{{
    static int8_t in[{P}_INPUT_SIZE], out[{P}_OUTPUT_SIZE];
    static float fin[{P}_INPUT_SIZE], fout[{P}_OUTPUT_SIZE];
    const int8_t *const ins[1] = {{NULL}};
    int8_t *const outs[1] = {{out}};
    if ({name}_run(NULL, out) == 0 || {name}_run(in, NULL) == 0 || {name}_run_f32(NULL, fout) == 0 ||
        {name}_run_f32(fin, NULL) == 0 || {name}_run_multi(NULL, outs) == 0 || {name}_run_multi(ins, outs) == 0)
        return 13;
    const float extremes[5] = {{1e6f, -1e6f, INFINITY, -INFINITY, NAN}};
    for (int i = 0; i < {P}_INPUT_SIZE; i++)
        fin[i] = extremes[i % 5];
    if ({name}_run_f32(fin, fout) != 0)
        return 14;
    fwrite(fout, sizeof(float), {P}_OUTPUT_SIZE, stdout);
    return 0;
}}
"""

ROOT = Path(__file__).resolve().parents[1]


def compile_example(name: str) -> mcucompile.CompiledModel:
    if name == "digits":
        return mcucompile.compile(ROOT / "examples" / "digits" / "digits_dscnn.onnx", name=name,
                                  calibration=ROOT / "examples" / "digits" / "digits_calib.npy")
    return mcucompile.compile(ROOT / "benchmarks" / "mlperf_tiny" / f"{name}.onnx", name=name)


def build_and_run(tmp_path: Path, compiled, harness: str, *defines: str) -> subprocess.CompletedProcess:
    compiled.write(tmp_path)
    (tmp_path / "harness.c").write_text(harness.format(name=compiled.name, P=compiled.name.upper()))
    exe = tmp_path / "harness"
    build = subprocess.run(["gcc", "-std=c99", "-O1", *SANITIZE_FLAGS, *defines, "-I", str(tmp_path),
                            str(tmp_path / f"{compiled.name}.c"), str(tmp_path / "harness.c"), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe)], capture_output=True)


@pytest.mark.parametrize("name", ["digits", "kws", "ic"])
def test_runtime_never_writes_outside_the_arena_or_the_output(tmp_path, name):
    compiled = compile_example(name)
    r = build_and_run(tmp_path, compiled, CANARY_HARNESS, f"-D{name.upper()}_EXTERNAL_ARENA")
    assert r.returncode == 0, (r.returncode, r.stderr.decode()[:2000])


WATCH_HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "{name}.h"

/* After every kernel call (the model's {P}_AFTER_CALL hook), the whole arena goes to stdout. */
void watch(int step, const uint8_t *arena)
{{
    (void)step;
    fwrite(arena, 1, {P}_ARENA_SIZE, stdout);
}}

int main(void)
{{
    static int8_t in[{P}_INPUT_SIZE], out[{P}_OUTPUT_SIZE];
    static uint8_t arena[{P}_ARENA_SIZE + 4];
    for (int i = 0; i < {P}_INPUT_SIZE; i++)
        in[i] = (int8_t)((i * 37) % 256 - 128);
    memset(arena, 0xA5, sizeof arena);
    return {name}_run_with_arena(arena, in, out);
}}
"""


def _zoo_model(family: str) -> mcucompile.CompiledModel:
    import zoo

    size = zoo.sizes(family)[0]
    return mcucompile.compile(zoo.export(family, 17, size), name="z", calibration=zoo.samples(family, size, 8, 1))


@pytest.mark.parametrize("source", ["digits", "kws", "vww", "ic", "squeezenet", "shufflenet_v2", "efficientnet_b0"])
def test_every_call_writes_only_its_own_output_and_scratch(tmp_path, source):
    """The arena after each call, from the C itself: every byte a call changes lies in its output's buffer or its
    scratch (as the plan places them), so no call clobbers another live tensor, whatever overlap, in-place or
    zero-copy concat the planner chose. The arena starts filled with a canary pattern."""
    compiled = compile_example(source) if source in ("digits", "kws", "vww", "ic") else _zoo_model(source)
    P = compiled.name.upper()
    (tmp_path / "watch.h").write_text("#include <stdint.h>\nvoid watch(int step, const uint8_t *arena);\n")
    r = build_and_run(tmp_path, compiled, WATCH_HARNESS, f"-D{P}_EXTERNAL_ARENA",
                      f"-D{P}_AFTER_CALL(step,arena)=watch(step,arena)", "-include", str(tmp_path / "watch.h"))
    assert r.returncode == 0, (r.returncode, r.stderr.decode()[:2000])
    program, plan = compiled.program, compiled.plan
    snaps = np.frombuffer(r.stdout, np.uint8).reshape(len(program.calls), plan.size)
    before = np.full(plan.size, 0xA5, np.uint8)
    for step, (call, after) in enumerate(zip(program.calls, snaps)):
        allowed = np.zeros(plan.size, bool)
        for t in call.outputs:
            kind, at, _ = plan.locate(program, t)
            if kind == "arena":
                allowed[at : at + program.sizes[program.base(t)[0]]] = True
        if call.scratch_bytes:
            at = plan.offsets[scratch_name(step)]
            allowed[at : at + call.scratch_bytes] = True
        stray = np.flatnonzero((after != before) & ~allowed)
        assert stray.size == 0, f"step {step} ({call.kernel}, node '{call.node}') wrote bytes {stray[:8]} outside its tensors"
        before = after


def test_null_pointers_are_refused_and_extreme_floats_saturate(tmp_path):
    compiled = compile_example("digits")
    r = build_and_run(tmp_path, compiled, EXTREMES_HARNESS)
    assert r.returncode == 0, (r.returncode, r.stderr.decode()[:2000])
    got = np.frombuffer(r.stdout, np.float32)
    in_t = compiled.graph.tensors[compiled.graph.inputs[0]]
    out_q = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    q_in = np.resize(np.array([127, -128, 127, -128, in_t.quant.zp], np.int8), in_t.size)  # 1e6, -1e6, inf, -inf, NaN
    q_out = compiled.run_reference(q_in.reshape(1, *in_t.shape)).ravel()
    np.testing.assert_array_equal(got, (q_out.astype(np.float32) - np.float32(out_q.zp)) * np.float32(out_q.s))


@pytest.mark.parametrize("condition,expected", [(True, "Sigmoid"), (False, "Tanh")])
def test_if_with_a_constant_condition_is_the_branch_it_takes(condition, expected):
    """PyTorch's legacy exporter writes If nodes on static shape tests: the taken branch replaces the If; its
    own tensors get the If's prefix (the else branch reuses the then branch's names) and it reads outer tensors."""
    from onnx import TensorProto

    from conftest import check_model

    def branch(op):
        return helper.make_graph([helper.make_node(op, ["a"], ["r"])], op, [],
                                 [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 3, 4, 4])])  # fmt: skip

    choice = helper.make_node("If", ["c"], ["y"], then_branch=branch("Sigmoid"), else_branch=branch("Tanh"))
    nodes = [helper.make_node("Relu", ["x"], ["a"]), choice]
    model = make_model(nodes, {"x": (1, 3, 4, 4)}, ["y"], {"c": np.array(condition)})
    compiled, _ = check_model(model, (1, 3, 4, 4))
    (table,) = compiled.float_graph.nodes
    assert [n.op for n in table.attr("body")] == ["Clip", expected]  # Relu, then the branch's op: one table


def test_model_too_big_for_any_microcontroller_compiles_with_a_note(capsys):
    """2.3 MB of int8 weights: compiled (the C is valid), with one line saying the sizes."""
    rng = np.random.default_rng(0)
    node = helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)
    model = make_model([node], {"x": (1, 1152)}, ["y"], {"W": rng.standard_normal((2048, 1152)).astype(np.float32)})
    compiled = mcucompile.compile(model, calibration=rng.standard_normal((4, 1, 1152)).astype(np.float32))
    lines = capsys.readouterr().err.strip().splitlines()
    assert compiled.stats.weight_bytes > 2 << 20
    assert len(lines) == 1 and f"{compiled.stats.weight_bytes:,} bytes of constants" in lines[0]
    assert "exceed what microcontrollers have" in lines[0]
