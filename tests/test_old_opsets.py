"""Models of opset 1 to 6 (the classic ONNX model zoo's era): upgraded on import with onnx's version converter,
their quirks included (broadcast/axis attributes, consumed_inputs, BatchNormalization's spatial and is_test,
Dropout's is_test, Reshape's shape attribute, variadic Sum, Softmax's 2-D coercion), and said so in one line.

onnxruntime does not run opset < 7, so the oracle is the same network written by hand at opset 13: the
generated C of the old model must match onnxruntime on that one.
"""

from __future__ import annotations

from tempfile import TemporaryDirectory

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import mcucompile
from conftest import ort_run
from mcucompile.verify import CModel, accuracy

RNG = np.random.default_rng(3)
SHAPE = (1, 3, 6, 6)
W = {
    "w": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3,
    "b": RNG.standard_normal(4).astype(np.float32) * 0.3,
    "g": RNG.uniform(0.5, 1.5, 4).astype(np.float32),
    "be": RNG.standard_normal(4).astype(np.float32) * 0.3,
    "m": RNG.standard_normal(4).astype(np.float32) * 0.3,
    "v": RNG.uniform(0.5, 1.5, 4).astype(np.float32),
    "bias4": RNG.standard_normal(4).astype(np.float32) * 0.3,
    "fw": RNG.standard_normal((5, 36)).astype(np.float32) * 0.3,
    "fb": RNG.standard_normal(5).astype(np.float32) * 0.3,
}


def _model(nodes, inits: dict, opset: int, ir_version: int):
    """initializers listed as graph inputs too, as IR version 3 required."""
    values = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))]
    if ir_version < 4:
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in values]
    graph = helper.make_graph(nodes, "old", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              values)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def old_model(opset: int):
    """Conv, BN, Relu, Add of a per-channel vector (broadcast + axis), MaxPool, Dropout, Sum, Reshape, Gemm,
    Softmax, in the attribute forms of `opset` (1-4: consumed_inputs and Reshape's shape attribute)."""
    legacy = {"consumed_inputs": [0]} if opset < 6 else {}
    reshape = (helper.make_node("Reshape", ["s"], ["f"], shape=[1, -1]) if opset < 5 else
               helper.make_node("Reshape", ["s", "rs"], ["f"]))  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"], epsilon=1e-5, is_test=1, spatial=1,
                         **({"consumed_inputs": [0, 0, 0, 1, 1]} if opset < 6 else {})),  # fmt: skip
        helper.make_node("Relu", ["bn"], ["r"], **legacy),
        helper.make_node("Add", ["r", "bias4"], ["a"], broadcast=1, axis=1, **({"consumed_inputs": [0, 0]} if opset < 6
                                                                                 else {})),  # fmt: skip
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Dropout", ["p"], ["d"], is_test=1, ratio=0.5),
        helper.make_node("Sum", ["d", "p"], ["s"]),
        reshape,
        helper.make_node("Gemm", ["f", "fw", "fb"], ["h"], transB=1, broadcast=1),
        helper.make_node("Softmax", ["h"], ["y"]),
    ]
    inits = dict(W) if opset < 5 else {**W, "rs": np.array([1, -1], np.int64)}
    return _model(nodes, inits, opset, 3)


def opset13_model():
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"], epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Add", ["r", "bias4c"], ["a"]),
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Add", ["p", "p"], ["s"]),
        helper.make_node("Reshape", ["s", "rs"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["h"], transB=1),
        helper.make_node("Softmax", ["h"], ["y"], axis=-1),
    ]
    inits = {**W, "bias4c": W["bias4"].reshape(4, 1, 1), "rs": np.array([1, -1], np.int64)}
    return _model(nodes, inits, 13, 8)


@pytest.mark.parametrize("opset", [6, 5, 3, 1])
def test_old_opset_model_is_upgraded_and_matches_its_opset13_twin(opset, capsys):
    x = RNG.standard_normal((16, *SHAPE)).astype(np.float32)
    compiled = mcucompile.compile(old_model(opset), name="m", calibration=x)
    note = capsys.readouterr().err.strip().splitlines()
    assert note == [f"note: the model uses opset {opset}; upgraded to opset 13 with onnx's version converter"]
    test = RNG.standard_normal((8, *SHAPE)).astype(np.float32)
    twin = mcucompile.compile(opset13_model(), name="m", calibration=x)
    outputs = []
    for model in (compiled, twin):
        with TemporaryDirectory() as tmp:
            model.write(tmp)
            c_model = CModel(tmp, "m")
            outputs.append(np.stack([c_model.run_f32(s) for s in test]))
    np.testing.assert_array_equal(outputs[0], outputs[1])  # the same int8 network as the hand-written twin
    # and the float network of both: a softmax of large logits, so steps of 1/256 on peaky rows
    assert accuracy(ort_run(opset13_model(), test), outputs[0]).sqnr_db >= 20


def test_opset_newer_than_supported_is_refused():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], {}, 99, 8)
    with pytest.raises(mcucompile.CompileError, match="opset 99; supported are 1 to 23"):
        mcucompile.compile(model)


@pytest.mark.parametrize("opset", [7, 9, 11])
def test_opset7_to_11_unsqueeze_folds_and_dropout_mask_is_dropped(opset):
    """An Unsqueeze with its axes attribute folds at the model's own opset (the evaluator's newest Unsqueeze
    takes no attribute), and Dropout's unread mask output, which has no inferred shape, is dropped."""
    from conftest import check_model, make_model

    nodes = [helper.make_node("Unsqueeze", ["c"], ["u"], axes=[0]), helper.make_node("Add", ["x", "u"], ["a"]),
             helper.make_node("Dropout", ["a"], ["y", "mask"], ratio=0.3)]  # fmt: skip
    # 64 x 32 calibration values: the test inputs stay inside their range
    model = make_model(nodes, {"x": (1, 32)}, ["y"], {"c": np.linspace(-0.5, 0.5, 32, dtype=np.float32)}, opset=opset)
    compiled, _ = check_model(model, (1, 32))
    assert [n.op for n in compiled.float_graph.nodes] == ["Add"]
