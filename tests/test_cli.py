"""The command line: the compile summary and files, verify, one-line errors with exit 2 and nothing written,
byte-identical output, and C that compiles strictly with gcc and clang whatever the ONNX names are."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import make_model
from mcucompile.verify import STRICT_CFLAGS


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def small_model(node_names=("conv", "relu", "pool", "flat", "fc"), input_shape=("N", 3, 8, 8)):
    rng = np.random.default_rng(0)
    n = node_names
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name=n[0], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name=n[1]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name=n[2]),
        helper.make_node("Flatten", ["g"], ["f"], name=n[3]),
        helper.make_node("Gemm", ["f", "W2"], ["y"], name=n[4], transB=1),
    ]
    inits = {
        "W": rng.standard_normal((6, 3, 3, 3)).astype(np.float32),
        "W2": rng.standard_normal((4, 6)).astype(np.float32),
    }
    return make_model(nodes, {"x": input_shape}, ["y"], inits)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "small.onnx"
    onnx.save(small_model(), path)
    np.save(tmp_path / "calib.npy", np.random.default_rng(1).standard_normal((16, 3, 8, 8)).astype(np.float32))
    return path


def strict_compile(c_file, cc):
    return subprocess.run(
        [
            cc,
            *STRICT_CFLAGS,
            "-c",
            str(c_file),
            "-o",
            str(c_file.with_suffix(f".{cc}.o")),
        ],
        capture_output=True,
        text=True,
    )


def test_compile_prints_summary_and_writes_strict_c(model_file, tmp_path):
    out = tmp_path / "build"
    r = run_cli("compile", model_file, "-o", out, "--name", "small", "--calibration", tmp_path / "calib.npy")
    assert r.returncode == 0, r.stderr
    for word in ("ops", "params", "flash", "arena", "MACs"):
        assert word in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["small.c", "small.h"]
    header = (out / "small.h").read_text()
    for macro in (
        "SMALL_INPUT_SIZE",
        "SMALL_OUTPUT_SIZE",
        "SMALL_ARENA_SIZE",
        "SMALL_INPUT_SCALE",
        "SMALL_INPUT_ZERO_POINT",
        "SMALL_OUTPUT_SCALE",
        "SMALL_OUTPUT_ZERO_POINT",
        "small_run(",
        "small_run_f32(",
    ):
        assert macro in header
    assert "malloc" not in (out / "small.c").read_text()
    for cc in ("gcc", "clang"):
        r = strict_compile(out / "small.c", cc)
        assert r.returncode == 0, r.stderr


def test_verify_reports_error_sqnr_and_top1(model_file, tmp_path):
    out = tmp_path / "build"
    assert (
        run_cli("compile", model_file, "-o", out, "--name", "small", "--calibration", tmp_path / "calib.npy").returncode
        == 0
    )
    r = run_cli("verify", model_file, out, "--name", "small", "--data", tmp_path / "calib.npy")
    assert r.returncode == 0, r.stderr
    assert "SQNR" in r.stdout and "max abs error" in r.stdout and "top-1 agreement" in r.stdout
    sqnr = float(r.stdout.split("SQNR")[1].split("dB")[0])
    assert sqnr > 25


def test_output_is_byte_identical_across_runs(model_file, tmp_path):
    for d in ("a", "b"):
        assert (
            run_cli(
                "compile", model_file, "-o", tmp_path / d, "--name", "small", "--calibration", tmp_path / "calib.npy"
            ).returncode
            == 0
        )
    for f in ("small.c", "small.h"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def assert_clean_failure(r, *words, out_dir=None):
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcucompile: error:"), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0]
    if out_dir is not None:
        assert not out_dir.exists() or not any(out_dir.iterdir())


def test_missing_file(tmp_path):
    assert_clean_failure(
        run_cli("compile", tmp_path / "nope.onnx", "-o", tmp_path / "o"), "nope.onnx", out_dir=tmp_path / "o"
    )


def test_not_a_protobuf(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffthis is not a model" * 10)
    assert_clean_failure(run_cli("compile", bad, "-o", tmp_path / "o"), "bad.onnx", out_dir=tmp_path / "o")


def test_unsupported_operator_is_named(tmp_path):
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], name="weird")], {"x": (1, 4)}, ["y"])
    path = tmp_path / "hardmax.onnx"
    onnx.save(model, path)
    assert_clean_failure(run_cli("compile", path, "-o", tmp_path / "o"), "weird", "Hardmax", out_dir=tmp_path / "o")


def _partly_supported_model():
    """A 3-D conv, an unknown op with a hostile name, and a supported Relu."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="volume", kernel_shape=[1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="fine"),
        helper.make_node("Hardmax", ["r"], ["y"], name="bad\nname", axis=-1),
    ]
    w = rng.standard_normal((4, 4, 1, 1, 1)).astype(np.float32)
    return make_model(nodes, {"x": (1, 4, 2, 3, 3)}, ["y"], {"W": w})


def test_check_lists_every_node_with_its_reason(tmp_path):
    path = tmp_path / "partly.onnx"
    onnx.save(_partly_supported_model(), path)
    r = run_cli("check", path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and "Traceback" not in r.stderr  # three nodes and a summary; the \n stays escaped
    assert lines[0].startswith("NO ") and "volume" in lines[0] and "2-D convolution" in lines[0]
    assert lines[1].startswith("ok ") and "fine" in lines[1]
    assert lines[2].startswith("NO ") and "bad\\nname" in lines[2] and "Hardmax is not supported" in lines[2]
    assert "2 unsupported" in lines[3]
    # compile fails fast with the same reasons, in one line
    assert_clean_failure(run_cli("compile", path, "-o", tmp_path / "o"), "volume", "2-D convolution", "Hardmax")


def test_check_passes_a_supported_model(model_file):
    r = run_cli("check", model_file, "--input-shape", "x=1,3,8,8")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert sum(line.startswith("ok ") for line in lines) == 5 and "supported (a trial compile succeeded)" in lines[-1]


def test_dynamic_dimension_needs_input_shape(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(small_model(input_shape=("N", 3, "H", "W")), path)
    assert_clean_failure(run_cli("compile", path, "-o", tmp_path / "o"), "--input-shape", out_dir=tmp_path / "o")
    r = run_cli("compile", path, "-o", tmp_path / "o", "--input-shape", "x=1,3,8,8")
    assert r.returncode == 0, r.stderr


def test_output_directory_that_is_a_file(model_file, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert_clean_failure(run_cli("compile", model_file, "-o", target), "not a directory")


@pytest.mark.parametrize("bad", ["shape", "nan"])
def test_bad_calibration_data(model_file, tmp_path, bad):
    data = np.zeros((4, 5, 5), np.float32) if bad == "shape" else np.full((4, 3, 8, 8), np.nan, np.float32)
    np.save(tmp_path / "c.npy", data)
    r = run_cli("compile", model_file, "-o", tmp_path / "o", "--calibration", tmp_path / "c.npy")
    assert_clean_failure(r, "c.npy", out_dir=tmp_path / "o")


def test_missing_calibration_warns_and_still_compiles(model_file, tmp_path):
    r = run_cli("compile", model_file, "-o", tmp_path / "o")
    assert r.returncode == 0 and "warning: no calibration data" in r.stderr


HOSTILE = ["a*/b/*c", "line\nbreak", 'quo"te\\', "#define X", "int", "3x3", "ünïcode", "a.b", "a/b"]


def test_hostile_names_give_valid_distinct_c(tmp_path):
    path = tmp_path / "hostile.onnx"
    onnx.save(small_model(node_names=tuple(HOSTILE[:5])), path)
    out = tmp_path / "o"
    r = run_cli("compile", path, "-o", out, "--name", "h")
    assert r.returncode == 0, r.stderr
    for cc in ("gcc", "clang"):
        res = strict_compile(out / "h.c", cc)
        assert res.returncode == 0, res.stderr


def test_c_identifiers_never_collide():
    from mcucompile.cformat import c_ident, unique_idents

    ids = unique_idents(HOSTILE + ["a_b", "a_b"])
    assert len(set(ids)) == len(ids)
    assert all(i == c_ident(i) and i.isidentifier() and i.isascii() for i in ids)


def test_error_naming_a_node_with_a_line_break_stays_one_line(tmp_path):
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"], name="evil\nname\r")], {"x": (1, 4)}, ["y"])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert_clean_failure(run_cli("compile", path, "-o", tmp_path / "o"), "evil\\nname\\r", out_dir=tmp_path / "o")
