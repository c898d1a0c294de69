"""Shared test helpers: build ONNX models with onnx.helper, compile them, and check the C against two oracles:
the numpy int8 reference (bit for bit) and onnxruntime on the float model (SQNR)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import mcucompile
from mcucompile.simulate import run_float
from mcucompile.verify import accuracy, run_executable


def make_model(nodes, inputs: dict, outputs: list[str], initializers: dict | None = None, opset: int = 13):
    """A float ONNX model; `inputs` maps names to shapes (a str dim is dynamic)."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(s)) for k, s in inputs.items()],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def torch_export(net, shape, dynamo: bool, opset: int = 13) -> onnx.ModelProto:
    """A PyTorch module exported as users do: the TorchScript exporter (dynamo=False) at `opset`, or the default
    torch.export-based one (its own opset)."""
    import io
    import warnings

    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            buf.write(torch.onnx.export(net, (torch.zeros(shape),), dynamo=True, verbose=False).model_proto
                      .SerializeToString())  # fmt: skip
        else:
            torch.onnx.export(net, torch.zeros(shape), buf, opset_version=opset, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def ort_run(model: onnx.ModelProto, samples: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: s})[0] for s in samples])


def check_model(
    model, sample_shape, *, calib=None, n_test=16, n_exact=None, min_sqnr=25.0, seed=0, sanitize=True, name="m", test=None
):
    """Compile, then: C == int8 reference exactly; float reference ~= onnxruntime; int8 vs onnxruntime >= min_sqnr.

    The C runs all n_test samples (or the given `test` samples); the numpy references, which are slow, check the
    first n_exact of them (default: all), and the accuracy against onnxruntime is taken over all of them.
    """
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((64, *sample_shape)).astype(np.float32) if calib is None else calib
    compiled = mcucompile.compile(model, name=name, calibration=calib)
    test = rng.standard_normal((n_test, *sample_shape)).astype(np.float32) if test is None else test
    n_test, n_exact = len(test), len(test) if n_exact is None else n_exact
    q_in = np.stack([compiled.quantize_input(x) for x in test])
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), name, q_in.reshape(n_test, -1), sanitize=sanitize)
    assert_bit_exact(got[:n_exact], compiled.run_reference(q_in[:n_exact]).reshape(n_exact, -1))

    reference = ort_run(model, test)
    g = compiled.float_graph
    ours = np.stack([run_float(g, {g.inputs[0]: x})[g.outputs[0]] for x in test[:n_exact]])
    np.testing.assert_allclose(ours.reshape(reference[:n_exact].shape), reference[:n_exact], rtol=1e-4, atol=1e-4)

    out_q = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    dequant = (np.asarray(got, np.float32).reshape(n_test, -1) - out_q.zp) * out_q.s
    acc = accuracy(reference, dequant)
    assert acc.sqnr_db >= min_sqnr, f"int8 vs onnxruntime: {acc}"
    return compiled, acc


def assert_bit_exact(got: np.ndarray, expected: np.ndarray) -> None:
    got, expected = np.asarray(got).ravel(), np.asarray(expected).ravel()
    assert got.shape == expected.shape
    bad = np.flatnonzero(got != expected)
    detail = ", ".join(f"[{i}] C {got[i]} ref {expected[i]}" for i in bad[:10])
    assert bad.size == 0, f"{bad.size} of {got.size} int8 outputs differ: {detail}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
