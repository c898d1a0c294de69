"""Where the package's data lives: the C templates, the C runtime and the bundled example.

They sit at the top of the repository (templates/, runtime_c/, examples/digits/) and ship inside the wheel as
the data packages mcucompile._templates, mcucompile._runtime_c and mcucompile._examples (pyproject.toml). The
lookup is relative to this package's own files, so a source checkout uses its own copies and an installed
wheel its packaged ones, whatever else is on sys.path; gcc and Jinja get real directories either way.
"""

from __future__ import annotations

from pathlib import Path


def _data_dir(installed: str, checkout: str) -> Path:
    here = Path(__file__).resolve().parent
    return here / installed if (here / installed).is_dir() else here.parent / checkout


def template_dir() -> Path:
    return _data_dir("_templates", "templates")


def runtime_dir() -> Path:
    return _data_dir("_runtime_c", "runtime_c")


def example_dir() -> Path:
    """The digits DS-CNN of `mcucompile demo`: digits_dscnn.onnx, digits_calib.npy, digits_test.npz."""
    return _data_dir("_examples", "examples/digits")
