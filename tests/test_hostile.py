"""Malformed and hostile models, generated here (no committed binaries): each is refused by the command line with
exit 2 and one accurate line naming the file, node or tensor, no traceback and no warning, nothing written, within
a wall-time and address-space ceiling (so a size that would be allocated before being checked fails the test).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

WALL_SECONDS = 60
ADDRESS_SPACE = 3 << 30  # bytes: python, numpy and onnx fit in well under this; a 4 GiB array does not


def _vi(name, shape=(1, 4), elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _model(nodes, inputs, outputs, initializers=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def _sparse_model():
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x")], [_vi("y")])
    values = numpy_helper.from_array(np.array([1.0], np.float32), "w")
    model.graph.sparse_initializer.append(
        helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([0], np.int64), "w_indices"), [1, 4])
    )
    return model


RELU = helper.make_node("Relu", ["x"], ["y"])
MODELS = {  # name -> (model, what the one line must say)
    "cycle": (
        _model([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                helper.make_node("Add", ["x", "a"], ["y"])], [_vi("x")], [_vi("y")]),  # fmt: skip
        "cycle through node 'Relu_0'",
    ),
    "dangling_input": (
        _model([helper.make_node("Add", ["x", "nowhere"], ["y"])], [_vi("x")], [_vi("y")]),
        "reads tensor 'nowhere', which no node, graph input or initializer provides",
    ),
    "missing_initializer": (
        _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [_vi("x", (1, 1, 4, 4))], [_vi("y")]),
        "node 'conv' (Conv) reads tensor 'w'",
    ),
    "sparse_initializer": (_sparse_model(), "initializer 'w' is sparse"),
    "duplicate_output": (
        _model([RELU, helper.make_node("Sigmoid", ["x"], ["y"])], [_vi("x")], [_vi("y")]),
        "tensor 'y' is written by two nodes, 'Relu_0' and 'Sigmoid_1'",
    ),
    "output_listed_twice": (_model([RELU], [_vi("x")], [_vi("y"), _vi("y")]), "graph output 'y' is listed twice"),
    "no_outputs": (_model([RELU], [_vi("x")], []), "the graph has no outputs"),
    "no_nodes": (_model([], [_vi("x")], [_vi("x")]), "the graph has no nodes"),
    "float16": (
        _model([RELU], [_vi("x", elem=TensorProto.FLOAT16)], [_vi("y", elem=TensorProto.FLOAT16)]),
        "tensor 'x' has element type float16",
    ),
    "int64_input": (
        _model([helper.make_node("Cast", ["x"], ["y"], to=1)], [_vi("x", elem=TensorProto.INT64)], [_vi("y")]),
        "graph input 'x' is int64",
    ),
    "rank_7": (_model([RELU], [_vi("x", (1, 2, 1, 2, 1, 2, 2))], [_vi("y")]), "tensor 'x' has rank 7"),
    "huge_input": (  # 1 GiB of float32, and 16 of it for a random calibration set
        _model([RELU], [_vi("x", (1, 256, 1024, 1024))], [_vi("y")]),
        "input 'x' of shape (1, 256, 1024, 1024) is too large: it would take 1,073,741,824 bytes",
    ),
    "constant_of_shape_1e9": (
        _model([helper.make_node("ConstantOfShape", ["s"], ["c"], value=_const("v", np.array([1.0], np.float32))),
                helper.make_node("Add", ["x", "c"], ["y"])], [_vi("x", (1, 1))], [_vi("y")],
               [_const("s", np.array([1000, 1000, 1000], np.int64))]),  # fmt: skip
        "would fold to a constant of 1,000,000,000 elements",
    ),
    "expand_1e9": (
        _model([helper.make_node("Expand", ["k", "s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
               [_vi("x", (1, 1))], [_vi("y")],
               [_const("k", np.ones((1, 1), np.float32)),
                _const("s", np.array([40000, 25000], np.int64))]),  # fmt: skip
        "would fold to a constant of 1,000,000,000 elements",
    ),
    "initializer_too_large": (  # dims say 4 GiB; the check reads the dims, not the (absent) data
        _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x")], [_vi("y")],
               [TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 30])]),  # fmt: skip
        "initializer 'w' of shape (1073741824,) is too large: it would take 4,294,967,296 bytes",
    ),
    "weights_1e38": (  # x * 3e38 overflows float32 in calibration: named, and numpy's warning stays silent
        _model([helper.make_node("Mul", ["x", "w"], ["y"])], [_vi("x")], [_vi("y")],
               [_const("w", np.full((1, 4), 3e38, np.float32))]),  # fmt: skip
        "tensor 'y' reached NaN or infinity during calibration",
    ),
}


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_cli(path: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mcucompile", "compile", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=WALL_SECONDS,
        preexec_fn=_limits,
        env={**os.environ, "PYTHONWARNINGS": "default"},  # a warning that escapes would show
    )


def assert_refused(result: subprocess.CompletedProcess, out: Path, expected: str) -> None:
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning: no calibration data")]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("mcucompile: error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    assert not out.exists(), "something was written"


@pytest.mark.parametrize("case", sorted(MODELS))
def test_malformed_model_is_refused_in_one_line(case, tmp_path):
    model, expected = MODELS[case]
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(model.SerializeToString())
    assert_refused(run_cli(path, tmp_path / "out"), tmp_path / "out", expected)


def test_files_that_are_not_models(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "text.onnx").write_bytes(b"hello, this is not a protobuf")
    (tmp_path / "folder.onnx").mkdir()
    os.mkfifo(tmp_path / "pipe.onnx")  # opening it would block forever
    cases = {
        "empty.onnx": "empty.onnx: is empty, not an ONNX model",
        "text.onnx": "text.onnx: not a readable ONNX model",
        "folder.onnx": "folder.onnx: is a directory",
        "pipe.onnx": "pipe.onnx: is not a regular file",
        "missing.onnx": "missing.onnx: no such file",
    }
    for name, expected in cases.items():
        assert_refused(run_cli(tmp_path / name, tmp_path / "out"), tmp_path / "out", expected)
