"""Build the generated C with the host compiler and run it: through cffi in-process, or as a sanitized executable.

Also the accuracy metrics that `verify` prints: max abs error, SQNR and top-1 agreement.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ir import CompileError

STRICT_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


def find_cc(cc: str | None = None) -> str:
    cc = cc or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise CompileError(f"C compiler '{cc}' not found; install gcc (apt-get install gcc) or set CC")
    return cc


def _run_cc(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"C build failed: {' '.join(args[:1])}: {proc.stderr.strip()[:2000]}")


def build_shared_library(c_file: Path, out_dir: Path, cc: str | None = None, opt: str = "-O2") -> Path:
    lib = Path(out_dir) / (Path(c_file).stem + ".so")
    _run_cc(
        [
            find_cc(cc),
            *STRICT_CFLAGS,
            opt,
            "-fPIC",
            "-shared",
            "-I",
            str(Path(c_file).parent),
            str(c_file),
            "-o",
            str(lib),
        ]
    )
    return lib


class CModel:
    """A generated model loaded in-process with cffi (single input and output)."""

    def __init__(self, build_dir: str | os.PathLike, name: str, cc: str | None = None):
        import cffi

        c_file = Path(build_dir) / f"{name}.c"
        if not c_file.is_file() or not (Path(build_dir) / f"{name}.h").is_file():
            raise CompileError(f"{build_dir}: no {name}.c/{name}.h there; run mcucompile compile first")
        self._tmp = tempfile.TemporaryDirectory(prefix="mcucompile_")
        lib = build_shared_library(c_file, Path(self._tmp.name), cc)
        self.ffi = cffi.FFI()
        self.ffi.cdef(
            f"int {name}_run(const int8_t *input, int8_t *output);"
            f"int {name}_run_f32(const float *input, float *output);"
        )
        self.lib = self.ffi.dlopen(str(lib))
        self.name = name
        header = (Path(build_dir) / f"{name}.h").read_text()
        self.input_size = _macro_int(header, f"{name.upper()}_INPUT_0_SIZE")
        self.output_size = _macro_int(header, f"{name.upper()}_OUTPUT_0_SIZE")
        if (
            _macro_int(header, f"{name.upper()}_NUM_INPUTS") != 1
            or _macro_int(header, f"{name.upper()}_NUM_OUTPUTS") != 1
        ):
            raise CompileError(f"{name}: verify supports models with one input and one output")

    def run_int8(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.int8).ravel()
        y = np.zeros(self.output_size, np.int8)
        self._check(
            getattr(self.lib, f"{self.name}_run")(
                self.ffi.from_buffer("int8_t[]", x), self.ffi.from_buffer("int8_t[]", y)
            )
        )
        return y

    def run_f32(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32).ravel()
        y = np.zeros(self.output_size, np.float32)
        self._check(
            getattr(self.lib, f"{self.name}_run_f32")(
                self.ffi.from_buffer("float[]", x), self.ffi.from_buffer("float[]", y)
            )
        )
        return y

    def _check(self, status: int) -> None:
        if status != 0:
            raise CompileError(f"{self.name}_run returned status {status}")


def _macro_int(header: str, macro: str) -> int:
    for line in header.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "#define" and parts[1] == macro:
            return int(parts[2])
    raise CompileError(f"macro {macro} missing from the generated header")


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"
/* Reads samples of {P}_INPUT_SIZE int8 from stdin, writes {P}_OUTPUT_SIZE int8 per sample to stdout. */
int main(void)
{{
    static int8_t in[{P}_INPUT_SIZE];
    static int8_t out[{P}_OUTPUT_SIZE];
    while (fread(in, 1, sizeof in, stdin) == sizeof in)
    {{
        if ({name}_run(in, out) != 0 || fwrite(out, 1, sizeof out, stdout) != sizeof out)
        {{
            return 1;
        }}
    }}
    return 0;
}}
"""


def run_executable(
    build_dir: Path,
    name: str,
    inputs: np.ndarray,
    cc: str | None = None,
    sanitize: bool = True,
    extra_flags: tuple[str, ...] = (),
) -> np.ndarray:
    """Build NAME.c with a stdin/stdout harness (sanitizers on by default) and run it on int8 samples."""
    with tempfile.TemporaryDirectory(prefix="mcucompile_") as tmp:
        harness = Path(tmp) / "harness.c"
        harness.write_text(HARNESS.format(name=name, P=name.upper()))
        exe = Path(tmp) / "model"
        flags = [*STRICT_CFLAGS, "-O1", *(SANITIZE_FLAGS if sanitize else []), *extra_flags]
        _run_cc(
            [
                find_cc(cc),
                *flags,
                "-I",
                str(build_dir),
                str(Path(build_dir) / f"{name}.c"),
                str(harness),
                "-o",
                str(exe),
            ]
        )
        data = np.ascontiguousarray(inputs, np.int8).tobytes()
        proc = subprocess.run([str(exe)], input=data, capture_output=True)
        if proc.returncode != 0:
            raise CompileError(
                f"{name}: harness failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:3000]}"
            )
        return np.frombuffer(proc.stdout, np.int8).reshape(len(inputs), -1)


@dataclass(frozen=True)
class Accuracy:
    max_abs_error: float
    sqnr_db: float
    top1_agreement: float
    samples: int

    def __str__(self) -> str:
        return (
            f"samples {self.samples}  max abs error {self.max_abs_error:.5g}  SQNR {self.sqnr_db:.2f} dB  "
            f"top-1 agreement {self.top1_agreement * 100:.2f} %"
        )


def accuracy(reference: np.ndarray, output: np.ndarray) -> Accuracy:
    """Compare per-sample outputs (N x ...) with the float reference."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    out = np.asarray(output, np.float64).reshape(len(output), -1)
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref**2))
    sqnr = float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-30) / noise)
    top1 = float(np.mean(ref.argmax(axis=1) == out.argmax(axis=1)))
    return Accuracy(float(np.max(np.abs(ref - out))), sqnr, top1, len(ref))


def onnxruntime_outputs(
    model_path: str | os.PathLike | bytes, samples: np.ndarray, input_name: str | None = None
) -> np.ndarray:
    """The float model's first output for each sample (N x (1, ...)), from onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CompileError("verify needs onnxruntime: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = model_path if isinstance(model_path, bytes) else os.fspath(model_path)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    name = input_name or session.get_inputs()[0].name
    return np.stack([session.run(None, {name: s.astype(np.float32)})[0] for s in samples])
