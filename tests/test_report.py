"""The RAM limit (API and CLI) and `mcucompile report`: the plan as text and as a PNG."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnx
import pytest

import mcucompile
from mcucompile import CompileError
from mcucompile.memory import parse_bytes
from test_memory import branches


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    onnx.save(branches(), folder / "branches.onnx")
    np.save(folder / "calib.npy", np.random.default_rng(0).standard_normal((8, 1, 4, 8, 8)).astype(np.float32))
    return folder / "branches.onnx"


@pytest.mark.parametrize("text, expected", [(65536, 65536), ("65536", 65536), ("64K", 65536), ("64kb", 65536),
                                            ("64KiB", 65536), (" 2 MiB ", 2 << 20), ("100B", 100)])  # fmt: skip
def test_ram_limit_units(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "64X", "-1", "0", "1.5K", True])
def test_ram_limit_rejects_nonsense(text):
    with pytest.raises(CompileError, match="ram-limit"):
        parse_bytes(text)


def test_ram_limit_in_the_api(model_file):
    calib = np.load(model_file.parent / "calib.npy")
    size = mcucompile.compile(model_file, calibration=calib).plan.size
    assert mcucompile.compile(model_file, calibration=calib, ram_limit=size).plan.size == size
    with pytest.raises(CompileError, match=f"{size - 1000:,} bytes over the RAM limit of 1,000"):
        mcucompile.compile(model_file, calibration=calib, ram_limit=1000)


def test_ram_limit_on_the_command_line(model_file, tmp_path):
    calib = model_file.parent / "calib.npy"
    r = run_cli("compile", model_file, "-o", tmp_path / "no", "--calibration", calib, "--ram-limit", "1K")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "over the RAM limit of 1,024" in r.stderr and "node 'conv_" in r.stderr
    assert re.search(r"live are '[ab]\d\d' [\d,]+ B, .*'x' 256 B", r.stderr)  # the peak's tensors, largest first
    assert not (tmp_path / "no").exists()
    r = run_cli("compile", model_file, "-o", tmp_path / "ok", "--calibration", calib, "--ram-limit", "64KiB")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ok" / "model.c").is_file() and "placement" in r.stdout and "reordered" in r.stdout


def test_report_text_and_png(model_file, tmp_path):
    png = tmp_path / "arena.png"
    r = run_cli("report", model_file, "--calibration", model_file.parent / "calib.npy", "--png", png)
    assert r.returncode == 0, r.stderr
    for words in ("buffer", "offset", "peak       step", "bound", "placement", "greedy_by_size", "two_ended",
                  "calls moved: lower bound", "caller's"):  # fmt: skip
        assert words in r.stdout, words
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_png_without_matplotlib_is_a_clear_error(model_file, tmp_path, monkeypatch):
    from mcucompile.report import plot_arena

    compiled = mcucompile.compile(model_file, calibration=np.load(model_file.parent / "calib.npy"))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(CompileError, match=r"pip install 'mcucompile\[report\]'"):
        plot_arena(compiled.program, compiled.plan, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
