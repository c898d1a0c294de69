"""The C runtime passes cppcheck and strict gcc/clang warnings (including -Wconversion) on its own."""

from __future__ import annotations

import subprocess

import pytest

from mcucompile.resources import runtime_dir
from mcucompile.verify import STRICT_CFLAGS


def test_cppcheck_finds_nothing_in_the_runtime():
    root = runtime_dir()
    r = subprocess.run(["cppcheck", "--enable=warning,style,performance,portability", "--std=c99", "--quiet",
                        "--error-exitcode=1", "-I", str(root / "include"), str(root / "src")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_runtime_compiles_warning_free(cc, tmp_path):
    root = runtime_dir()
    for src in sorted(root.glob("src/*/*.c")):
        r = subprocess.run([cc, *STRICT_CFLAGS, "-Wsign-conversion", "-Wshadow", "-I", str(root / "include"), "-c",
                            str(src), "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
        assert r.returncode == 0, f"{src.name}: {r.stderr}"
