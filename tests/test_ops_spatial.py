"""Pad, Resize and Upsample: C == int8 reference bit for bit (sanitizers), float reference == onnxruntime,
int8 SQNR vs onnxruntime; nearest resizing equal to onnxruntime exactly for every ONNX coordinate and rounding
mode; the zero-Pad -> Conv/AveragePool fold; PyTorch exports; and the refusals."""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import helper

import mcucompile
from conftest import check_model, make_model, ort_run
from mcucompile.ir import CompileError
from mcucompile.quant import dequantize

RNG = np.random.default_rng(5)
SHAPE = (1, 3, 5, 6)


def _pad_model(mode, pads, value=None, axes=None, opset=13, shape=SHAPE):
    inits = {"pads": np.array(pads, np.int64)}
    inputs = ["x", "pads"]
    if value is not None or axes is not None:
        inputs.append("" if value is None else "v")
        if value is not None:
            inits["v"] = np.array(value, np.float32)
    if axes is not None:
        inputs.append("axes")
        inits["axes"] = np.array(axes, np.int64)
    node = helper.make_node("Pad", inputs, ["y"], mode=mode)
    return make_model([node], {"x": shape}, ["y"], inits, opset=opset)


def _kernels(compiled):
    return [c.kernel for c in compiled.program.calls]


# --- Pad -------------------------------------------------------------------------------------------------------

PADS = [
    [0, 0, 1, 2, 0, 0, 2, 1],  # H and W
    [0, 1, 0, 0, 0, 2, 1, 3],  # C, H and W
    [0, 0, -1, 2, 0, 0, 1, -2],  # crops (negative pads) mixed with pads
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PADS, ids=["hw", "chw", "crop"])
def test_pad_modes(mode, pads):
    compiled, _ = check_model(_pad_model(mode, pads, opset=19 if mode == "wrap" else 13), SHAPE)
    assert "mcu_pad_s8" in _kernels(compiled)


def test_pad_opset2_attribute_form_with_a_value():
    node = helper.make_node("Pad", ["x"], ["y"], mode="constant", pads=[0, 0, 2, 1, 0, 1, 0, 2], value=0.75)
    check_model(make_model([node], {"x": SHAPE}, ["y"], opset=10), SHAPE)


def test_pad_value_outside_the_input_range_widens_the_output_quantization():
    compiled, _ = check_model(_pad_model("constant", [0, 0, 1, 1, 0, 0, 1, 1], value=-20.0), SHAPE)
    call = next(c for c in compiled.program.calls if c.kernel == "mcu_pad_s8")
    assert call.params["copy"] == 0 and call.params["pad_value"] == -128  # -20 is the new minimum


def test_pad_value_inside_the_range_keeps_the_input_quantization():
    compiled, _ = check_model(_pad_model("constant", [0, 0, 1, 1, 0, 0, 1, 1], value=0.5), SHAPE)
    call = next(c for c in compiled.program.calls if c.kernel == "mcu_pad_s8")
    assert call.params["copy"] == 1


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_pad_opset18_axes_input(mode):
    model = _pad_model(mode, [2, 1, 0, 3], value=0.25 if mode == "constant" else None, axes=[-1, 2], opset=18)
    check_model(model, SHAPE)


@pytest.mark.parametrize("shape,pads", [((2, 7, 3), [1, 0, 2, 0, 3, 1]), ((4, 9), [0, 2, 1, 3])])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_lower_ranks(shape, pads, mode):
    check_model(_pad_model(mode, pads, shape=shape), shape)


@pytest.mark.parametrize(
    "model,reason",
    [
        (_pad_model("wrap", [0, 0, -5, 0, 0, 0, 1, 0], opset=19), "wrap pads crop axis 2 away"),
        (_pad_model("reflect", [0, 0, 5, 0, 0, 0, 0, 0]), "reflect pads must be smaller"),
    ],
    ids=["wrap_crops_all", "reflect_too_far"],
)
def test_pad_refusals(model, reason):
    with pytest.raises(CompileError, match=reason):
        mcucompile.compile(model, calibration=RNG.standard_normal((4, *SHAPE)).astype(np.float32))


# --- fold_pad ---------------------------------------------------------------------------------------------------


def _pad_then(consumer: str, amounts, value=0.0, **attrs):
    c_in = SHAPE[1] + amounts[1] + amounts[5]
    w = {"w": RNG.standard_normal((4, c_in, 3, 3)).astype(np.float32) * 0.3} if consumer == "Conv" else {}
    nodes = [
        helper.make_node("Pad", ["x", "pads", "v"], ["p"]),
        helper.make_node(consumer, ["p", *w], ["y"], kernel_shape=[3, 3], **attrs),
    ]
    inits = {"pads": np.array(amounts, np.int64), "v": np.array(value, np.float32), **w}
    return make_model(nodes, {"x": SHAPE}, ["y"], inits)


@pytest.mark.parametrize(
    "consumer,pads,value,attrs,folded",
    [
        ("Conv", [0, 0, 1, 2, 0, 0, 2, 0], 0.0, {"pads": [1, 0, 0, 1]}, True),
        ("Conv", [0, 0, 1, 1, 0, 0, 1, 1], 0.0, {"strides": [2, 2]}, True),
        ("AveragePool", [0, 0, 1, 1, 0, 0, 2, 1], 0.0, {"count_include_pad": 1}, True),
        ("Conv", [0, 0, 1, 1, 0, 0, 1, 1], 0.5, {}, False),  # not zero
        ("Conv", [0, 1, 1, 1, 0, 0, 1, 1], 0.0, {}, False),  # pads channels
        ("AveragePool", [0, 0, 1, 1, 0, 0, 1, 1], 0.0, {}, False),  # pads would not be counted
        ("MaxPool", [0, 0, 1, 1, 0, 0, 1, 1], 0.0, {}, False),  # pads mean -inf
    ],
    ids=["conv", "conv_strided", "avgpool_include", "value", "channels", "avgpool_exclude", "maxpool"],
)
def test_zero_pad_folds_into_the_consumer_when_exact(consumer, pads, value, attrs, folded):
    compiled, _ = check_model(_pad_then(consumer, pads, value, **attrs), SHAPE)
    assert ("Pad" not in [n.op for n in compiled.float_graph.nodes]) == folded
    assert ("mcu_pad_s8" not in _kernels(compiled)) == folded


def test_pad_with_two_consumers_is_kept():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["a"], kernel_shape=[3, 3]),
        helper.make_node("Conv", ["p", "w"], ["b"], kernel_shape=[3, 3]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    inits = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "w": RNG.standard_normal((2, 3, 3, 3)).astype(np.float32),
    }
    compiled, _ = check_model(make_model(nodes, {"x": SHAPE}, ["y"], inits), SHAPE)
    assert "mcu_pad_s8" in _kernels(compiled)


# --- Resize: nearest ---------------------------------------------------------------------------------------------

TRANSFORMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# (input shape, scales or None, sizes or None): up, down, fractional, mixed, and by sizes
GEOMETRIES = [
    ((1, 2, 5, 6), [1, 1, 2, 3], None),
    ((1, 2, 8, 9), [1, 1, 0.5, 0.34], None),
    ((1, 2, 5, 7), [1, 1, 1.6, 0.75], None),
    ((1, 2, 6, 5), None, [1, 2, 4, 12]),
    ((1, 2, 7, 4), None, [1, 2, 15, 3]),
]


def _resize_model(shape, scales=None, sizes=None, opset=13, **attrs):
    inits = {}
    if scales is not None:
        inits["s"] = np.array(scales, np.float32)
    if sizes is not None:
        inits["z"] = np.array(sizes, np.int64)
    inputs = ["x", "", "s" if scales is not None else "", *(["z"] if sizes is not None else [])]
    if opset == 11:  # roi and scales are not optional yet: empty tensors
        inits.update(r=np.zeros(0, np.float32), s=inits.get("s", np.zeros(0, np.float32)))
        inputs[1:3] = ["r", "s"]
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    return make_model([node], {"x": shape}, ["y"], inits, opset=opset)


def _int8_vs_onnxruntime(model, shape, n=4):
    """int8 reference output and onnxruntime's on the dequantized int8 input, both as float."""
    compiled = mcucompile.compile(model, calibration=RNG.standard_normal((8, *shape)).astype(np.float32))
    g = compiled.graph
    q_in = np.stack([compiled.quantize_input(x) for x in RNG.standard_normal((n, *shape)).astype(np.float32)])
    ours = dequantize(compiled.run_reference(q_in), g.tensors[g.outputs[0]].quant)
    theirs = ort_run(model, dequantize(q_in, g.tensors[g.inputs[0]].quant))
    return ours.reshape(theirs.shape), theirs, g.tensors[g.outputs[0]].quant.s


NEAREST_CASES = [(t, m) for t in TRANSFORMS[:4] for m in NEAREST] + [
    ("tf_half_pixel_for_nn", "round_prefer_floor"),
    ("half_pixel_symmetric", "round_prefer_floor"),
    ("half_pixel_symmetric", "floor"),
]


@pytest.mark.parametrize("geometry", range(len(GEOMETRIES)))
@pytest.mark.parametrize("transform,nearest", NEAREST_CASES)
def test_resize_nearest_equals_onnxruntime_exactly(transform, nearest, geometry):
    """Nearest picks input values: the int8 result dequantized is onnxruntime's output on the int8 input."""
    shape, scales, sizes = GEOMETRIES[geometry]
    opset = 19 if transform == "half_pixel_symmetric" else 13
    model = _resize_model(
        shape, scales, sizes, opset, coordinate_transformation_mode=transform, nearest_mode=nearest
    )
    ours, theirs, _ = _int8_vs_onnxruntime(model, shape)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    "shape,scales,sizes,opset,attrs",
    [
        ((1, 3, 4, 5), [1, 1, 2, 2], None, 13, {"mode": "nearest"}),
        ((1, 3, 9, 8), None, [1, 3, 4, 3], 11, {"mode": "nearest", "nearest_mode": "ceil"}),
        ((1, 3, 4, 5), [3, 1.5], None, 18, {"mode": "nearest", "axes": [2, 3]}),
        ((1, 3, 4, 5), [1, 1, 1.5, 2.5], None, 19,
         {"mode": "nearest", "coordinate_transformation_mode": "half_pixel_symmetric"}),
    ],
    ids=["up2", "down_sizes_opset11", "axes_opset18", "half_pixel_symmetric_opset19"],
)
def test_resize_nearest_in_c(shape, scales, sizes, opset, attrs):
    compiled, _ = check_model(_resize_model(shape, scales, sizes, opset, **attrs), shape)
    assert "mcu_resize_nearest_s8" in _kernels(compiled)


# --- Resize: linear ----------------------------------------------------------------------------------------------

LINEAR_TRANSFORMS = TRANSFORMS[:4] + ["half_pixel_symmetric"]


@pytest.mark.parametrize("geometry", range(len(GEOMETRIES)))
@pytest.mark.parametrize("transform", LINEAR_TRANSFORMS)
def test_resize_linear_within_one_lsb_of_onnxruntime(transform, geometry):
    shape, scales, sizes = GEOMETRIES[geometry]
    opset = 19 if transform == "half_pixel_symmetric" else 13
    model = _resize_model(shape, scales, sizes, opset, mode="linear", coordinate_transformation_mode=transform)
    ours, theirs, scale = _int8_vs_onnxruntime(model, shape)
    # rounding (1/2 LSB) plus the Q11 weights (2^-12 per axis times a step of at most 255 LSB, per axis)
    assert np.abs(ours - theirs).max() <= scale * (0.5 + 2 * 255 / 4096 + 1e-3)


@pytest.mark.parametrize("transform", ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize("geometry", [0, 2, 3])
def test_resize_linear_in_c(transform, geometry):
    shape, scales, sizes = GEOMETRIES[geometry]
    model = _resize_model(shape, scales, sizes, mode="linear", coordinate_transformation_mode=transform)
    compiled, _ = check_model(model, shape)
    assert "mcu_resize_bilinear_s8" in _kernels(compiled)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset10(mode):
    node = helper.make_node("Resize", ["x", "s"], ["y"], mode=mode)
    inits = {"s": np.array([1, 1, 2, 1.5], np.float32)}
    check_model(make_model([node], {"x": SHAPE}, ["y"], inits, opset=10), SHAPE)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset, mode):
    scales = [1.0, 1.0, 2.0, 3.0]
    if opset == 7:
        node, inits = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=scales), {}
    else:
        node, inits = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode), {"s": np.array(scales, np.float32)}
    check_model(make_model([node], {"x": SHAPE}, ["y"], inits, opset=opset), SHAPE)


@pytest.mark.parametrize(
    "attrs,scales,reason",
    [
        ({"mode": "cubic"}, [1, 1, 2, 2], "mode 'cubic'"),
        ({"mode": "linear", "antialias": 1}, [1, 1, 0.5, 0.5], "antialias"),
        ({"mode": "cubic", "exclude_outside": 1}, [1, 1, 2, 2], "mode 'cubic'"),
        ({"mode": "nearest", "keep_aspect_ratio_policy": "not_larger"}, None, "keep_aspect_ratio_policy"),
        ({"coordinate_transformation_mode": "tf_crop_and_resize"}, [1, 1, 2, 2], "tf_crop_and_resize"),
        ({"mode": "nearest"}, [1, 2, 1, 1], "only H and W"),
    ],
    ids=["cubic", "antialias", "exclude_outside", "aspect", "crop", "channels"],
)
def test_resize_refusals(attrs, scales, reason):
    sizes = [1, 3, 10, 8] if scales is None else None
    model = _resize_model(SHAPE, scales, sizes, opset=18, **attrs)
    with pytest.raises(CompileError, match=reason):
        mcucompile.compile(model, calibration=RNG.standard_normal((4, *SHAPE)).astype(np.float32))


def test_exclude_outside_is_refused_by_name():
    from mcucompile.onnx_import import import_onnx
    from mcucompile.support import node_support

    model = _resize_model(SHAPE, [1, 1, 2, 2], None, opset=18, mode="linear", exclude_outside=1)
    reasons = [s.reason for s in node_support(import_onnx(model))]
    assert reasons == ["exclude_outside=1 is not supported"]


# --- PyTorch exports ----------------------------------------------------------------------------------------------


class _Net(torch.nn.Module):
    def __init__(self, body: torch.nn.Module):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.body = body

    def forward(self, x):
        return self.body(torch.relu(self.conv(x)))


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _export(body, opset, shape=SHAPE):
    torch.manual_seed(opset)
    f = io.BytesIO()
    torch.onnx.export(_Net(body).eval(), torch.randn(*shape), f, opset_version=opset, dynamo=False)
    return onnx.load_from_string(f.getvalue())


TORCH_BODIES = {
    "upsample_nearest": lambda: torch.nn.Upsample(scale_factor=2, mode="nearest"),
    "upsample_bilinear": lambda: torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
    "upsample_bilinear_corners": lambda: torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
    "interpolate_size": lambda: _Fn(lambda x: F.interpolate(x, size=(7, 4), mode="bilinear", align_corners=False)),
    "interpolate_size_nearest": lambda: _Fn(lambda x: F.interpolate(x, size=(9, 13), mode="nearest")),
    "pad_reflect": lambda: _Fn(lambda x: F.pad(x, (2, 1, 1, 3), mode="reflect")),
    "pad_constant": lambda: _Fn(lambda x: F.pad(x, (1, 2, 0, 1, 1, 0), mode="constant", value=0.3)),
    "pad_replicate": lambda: _Fn(lambda x: F.pad(x, (3, 0, 2, 2), mode="replicate")),
}


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("body", sorted(TORCH_BODIES))
def test_pytorch_export(body, opset):
    check_model(_export(TORCH_BODIES[body](), opset), SHAPE)


@pytest.mark.parametrize("opset", [13, 17])
def test_pytorch_zero_pad_then_conv_is_folded(opset):
    body = torch.nn.Sequential(torch.nn.ZeroPad2d((1, 2, 2, 0)), torch.nn.Conv2d(4, 5, 3))
    compiled, _ = check_model(_export(body, opset), SHAPE)
    assert "Pad" in [n.op_type for n in compiled.onnx_model.graph.node]
    assert "mcu_pad_s8" not in _kernels(compiled)
