"""The project stands on its own: a wheel built from the sources runs `mcucompile demo` and `compile` from any
directory, nothing reads files outside the repository, and generated files are readable by other users."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
from onnx import helper

import mcucompile
from conftest import make_model
from mcucompile.cli import main

ROOT = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "mcucompile", "templates", "runtime_c", "examples/digits")


def _umask(mask: int):
    return lambda: os.umask(mask)


def _relu_model():
    return make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (1, 8)}, ["y"])


CALIBRATION = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 1, 8)


def test_wheel_installed_elsewhere_runs_demo_and_compile(tmp_path):
    # Build from a copy of just the packaged sources, so that the source tree gets no build/ or egg-info.
    src = tmp_path / "src"
    for rel in WHEEL_SOURCES:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / rel).is_dir():
            shutil.copytree(ROOT / rel, src / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / rel, src / rel)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True)  # fmt: skip
    wheel = next((tmp_path / "dist").glob("mcucompile-*.whl"))
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True)
    shutil.rmtree(src)  # the installed package must not need its sources

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = dict(cwd=work, env=env, capture_output=True, text=True, preexec_fn=_umask(0o022))
    where = subprocess.run([sys.executable, "-c", "import mcucompile; print(mcucompile.__file__)"], **run)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout

    demo = subprocess.run([sys.executable, "-m", "mcucompile", "demo"], **run)
    assert demo.returncode == 0, demo.stderr
    assert re.search(r"digits: C \(gcc, int8\) vs onnxruntime \(float\): samples 360 .* top-1 agreement", demo.stdout)
    accuracy = re.search(r"digits: accuracy onnxruntime float ([\d.]+) %, C int8 ([\d.]+) %", demo.stdout)
    assert accuracy and float(accuracy[2]) >= float(accuracy[1]) - 1.0, demo.stdout
    assert "wrote      build/digits.c and build/digits.h" in demo.stdout
    for name in ("digits.c", "digits.h"):
        assert stat.S_IMODE((work / "build" / name).stat().st_mode) == 0o644

    (work / "tiny.onnx").write_bytes(_relu_model().SerializeToString())
    compile_cmd = [sys.executable, "-m", "mcucompile", "compile", "tiny.onnx", "-o", "out", "--name", "tiny"]
    compiled = subprocess.run(compile_cmd, **run)
    assert compiled.returncode == 0, compiled.stderr
    assert (work / "out" / "tiny.c").is_file() and (work / "out" / "tiny.h").is_file()


def test_generated_files_take_the_umask(tmp_path):
    compiled = mcucompile.compile(_relu_model(), name="m", calibration=CALIBRATION)
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            c_path, h_path = compiled.write(tmp_path / f"u{mask:o}")
        finally:
            os.umask(old)
        assert [stat.S_IMODE(p.stat().st_mode) for p in (c_path, h_path)] == [mode, mode]
        assert sorted(p.name for p in c_path.parent.iterdir()) == ["m.c", "m.h"]  # no temporary file left


def test_qdq_export_and_report_png_are_world_readable(tmp_path, monkeypatch):
    calib = tmp_path / "calib.npy"
    np.save(calib, CALIBRATION)
    model = tmp_path / "m.onnx"
    model.write_bytes(_relu_model().SerializeToString())
    old = os.umask(0o022)
    try:
        assert main(["compile", str(model), "-o", str(tmp_path / "out"), "--calibration", str(calib),
                     "--export-qdq", str(tmp_path / "q.onnx")]) == 0  # fmt: skip
        assert main(["report", str(model), "--calibration", str(calib), "--png", str(tmp_path / "a.png")]) == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "q.onnx", tmp_path / "a.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_nothing_reads_outside_the_repository():
    """No path above the checkout: the data the tests, benchmarks and demo need is inside it."""
    outside = re.compile(r"\.\./shared|parents\[2\]|ROOT\.parent\b|parent\.parent\.parent|\"shared\" */")
    hits = []
    for folder in ("mcucompile", "tests", "benchmarks", "examples", ".ci"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in ("", ".py", ".md", ".toml", ".sh", ".cmake", ".txt", ".json"):
                text = path.read_text(errors="replace")
                hits += [f"{path.relative_to(ROOT)}:{i + 1}" for i, line in enumerate(text.splitlines())
                         if outside.search(line) and path != Path(__file__)]  # fmt: skip
    assert hits == []
