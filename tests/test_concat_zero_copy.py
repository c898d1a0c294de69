"""Zero-copy Concat: producers write their slice of the concat output (pixels output_stride apart), so the copy
and its bytes disappear. Each model: C == int8 reference bit for bit under ASan/UBSan, float == onnxruntime,
int8 SQNR (conftest.check_model); no mcu_concat_s8 call where every part qualifies; an arena computed here by
hand, or below the arena of the same program with its concats copied."""

from __future__ import annotations

import io

import numpy as np
import onnx
import torch
from onnx import helper

from conftest import check_model, make_model
from mcucompile.lower import concats_in_place, in_place_concats, lower
from mcucompile.memory import ALIGNMENT, overlapping_pairs, plan_memory
from mcucompile.simulate import run_program
from test_memory import inception, tensor_conflicts

RNG = np.random.default_rng(5)


def weights(seed: int, *shapes) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) / np.sqrt(s[-1])).astype(np.float32) for s in shapes]


def align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def conv(x, y, cin, cout, k=1, relu=True, group=1, stride=1, inits=None):
    inits[f"W_{y}"] = (RNG.standard_normal((cout, cin // group, k, k)) * 0.4).astype(np.float32)
    inits[f"B_{y}"] = (RNG.standard_normal(cout) * 0.1).astype(np.float32)
    out = f"{y}_pre" if relu else y
    nodes = [helper.make_node("Conv", [x, f"W_{y}", f"B_{y}"], [out], kernel_shape=[k, k], pads=[k // 2] * 4,
                              group=group, strides=[stride, stride])]
    return nodes + ([helper.make_node("Relu", [out], [y])] if relu else [])


def kernels(compiled) -> list[str]:
    return [c.kernel for c in compiled.program.calls]


def assert_valid_plan(compiled):
    assert overlapping_pairs(compiled.plan) == [] and tensor_conflicts(compiled.program, compiled.plan) == []


def copied_arena(compiled) -> int:
    """The arena of the same int8 graph with every concat a copy, in the lowered order."""
    return plan_memory(lower(compiled.graph)).size


def test_fire_module_writes_both_expands_in_place():
    cin, squeeze, expand, hw = 4, 2, 16, 8
    inits: dict = {}
    nodes = [
        *conv("x", "s", cin, squeeze, inits=inits),
        *conv("s", "e1", squeeze, expand, inits=inits),
        *conv("s", "e3", squeeze, expand, 3, inits=inits),
        helper.make_node("Concat", ["e1", "e3"], ["y"], axis=1),
    ]
    compiled, _ = check_model(make_model(nodes, {"x": (1, cin, hw, hw)}, ["y"], inits), (1, cin, hw, hw))
    assert "mcu_concat_s8" not in kernels(compiled)
    convs = ("mcu_conv_s8", "mcu_conv_s8_fast")
    strides = [c.params["output_stride"] for c in compiled.program.calls if c.kernel in convs]
    assert sorted(strides) == [0, 2 * expand, 2 * expand]
    assert_valid_plan(compiled)
    # Peak: the 3x3 expand, with the squeeze output, the whole concat output and its scratch (im2col) live.
    y, s = 2 * expand * hw * hw, squeeze * hw * hw
    scratch = next(c.scratch_bytes for c in compiled.program.calls if c.params.get("filter_dims", (0, 0))[1] == 3)
    assert compiled.plan.size == align(y) + align(s) + align(scratch)
    assert compiled.plan.size < 2 * y <= copied_arena(compiled)  # the copy holds both expands and the output


def test_inception_branches_write_in_place():
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; 3x3 max pool -> 1x1) whose outputs are wider than their
    intermediates, as in Inception v1."""
    inits: dict = {}
    nodes = [
        *conv("x", "b1", 4, 8, inits=inits),
        *conv("x", "b2a", 4, 4, inits=inits), *conv("b2a", "b2", 4, 8, 3, inits=inits),
        *conv("x", "b3a", 4, 2, inits=inits), *conv("b3a", "b3b", 2, 4, 3, inits=inits),
        *conv("b3b", "b3", 4, 8, 3, inits=inits),
        helper.make_node("MaxPool", ["x"], ["b4a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        *conv("b4a", "b4", 4, 8, inits=inits),
        helper.make_node("Concat", ["b1", "b2", "b3", "b4"], ["y"], axis=1),
    ]  # fmt: skip
    compiled, _ = check_model(make_model(nodes, {"x": (1, 4, 8, 8)}, ["y"], inits), (1, 4, 8, 8))
    assert "mcu_concat_s8" not in kernels(compiled) and sorted(compiled.program.slices.values()) == [0, 8, 16, 24]
    assert_valid_plan(compiled)
    assert compiled.plan.size < copied_arena(compiled)


def test_the_planner_keeps_the_copy_where_in_place_costs_more():
    """Narrow branch outputs after wide intermediates: the whole concat output live through the wide branch
    would cost more than the copy, so the planner copies."""
    compiled, _ = check_model(inception(), (1, 4, 8, 8))
    assert "mcu_concat_s8" in kernels(compiled) and not compiled.program.slices
    assert_valid_plan(compiled)


def test_pool_branch_keeps_its_requantizing_copy_and_the_conv_branch_goes_in_place():
    inits: dict = {}
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        *conv("x", "c", 4, 12, 3, inits=inits),
        helper.make_node("Concat", ["p", "c"], ["y"], axis=1),
    ]
    compiled, _ = check_model(make_model(nodes, {"x": (1, 4, 6, 6)}, ["y"], inits), (1, 4, 6, 6))
    concat = [c for c in compiled.program.calls if c.kernel == "mcu_concat_s8"]
    assert len(concat) == 1 and concat[0].params["count"] == 1 and not concat[0].params["parts"][0]["copy"]
    assert compiled.program.slices == {"c": 4}  # the pool part (the input's quantization) stays a copy
    assert_valid_plan(compiled)
    assert compiled.plan.size < copied_arena(compiled)


def test_input_with_a_second_reader_falls_back_to_a_copy():
    inits: dict = {}
    nodes = [
        *conv("x", "a", 3, 4, inits=inits),
        *conv("x", "b", 3, 4, 3, inits=inits),
        helper.make_node("Concat", ["a", "b"], ["y"], axis=1),
        *conv("y", "u", 8, 4, relu=False, inits=inits),
        helper.make_node("Add", ["u", "a"], ["z"]),
    ]
    compiled, _ = check_model(make_model(nodes, {"x": (1, 3, 5, 5)}, ["z"], inits), (1, 3, 5, 5))
    concat = [c for c in compiled.program.calls if c.kernel == "mcu_concat_s8"]
    assert len(concat) == 1 and "a" in concat[0].inputs and "a" not in compiled.program.slices
    # b could be written in place ({"b": 4}); the planner keeps whichever of that and the copy needs less arena
    assert compiled.program.slices in ({"b": 4}, {})
    assert_valid_plan(compiled)


class _ShuffleUnit(torch.nn.Module):
    """ShuffleNet v2's stride-2 unit: depthwise 3x3 s2 -> 1x1 and 1x1 -> depthwise 3x3 s2 -> 1x1, concatenated,
    channels shuffled."""

    def __init__(self, cin=8, half=8):
        super().__init__()
        nn = torch.nn
        self.b1 = nn.Sequential(nn.Conv2d(cin, cin, 3, 2, 1, groups=cin), nn.Conv2d(cin, half, 1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(cin, half, 1), nn.ReLU(), nn.Conv2d(half, half, 3, 2, 1, groups=half),
                                nn.Conv2d(half, half, 1), nn.ReLU())

    def forward(self, x):
        y = torch.cat([self.b1(x), self.b2(x)], 1)
        n, c, h, w = y.shape
        return y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def test_shufflenet_unit_in_place_is_exact_and_chosen_only_where_smaller():
    torch.manual_seed(0)
    f = io.BytesIO()
    torch.onnx.export(_ShuffleUnit().eval(), torch.randn(1, 8, 8, 8), f, opset_version=13, dynamo=False)
    compiled, _ = check_model(onnx.load_from_string(f.getvalue()), (1, 8, 8, 8))
    assert_valid_plan(compiled)
    # Both branches qualify, but in place the whole output would be live while branch 2's first 1x1 conv runs,
    # which the copied plan spends on that conv overwriting the input: the planner keeps the copy here.
    lowered = lower(compiled.graph)
    assert len(in_place_concats(lowered)) == 1 and compiled.plan.size <= copied_arena(compiled)
    in_place, _ = concats_in_place(lowered, in_place_concats(lowered))
    assert "mcu_concat_s8" not in [c.kernel for c in in_place.calls] and len(in_place.slices) == 2
    x = np.random.default_rng(0).integers(-128, 128, (1, 8, 8, 8)).astype(np.int8)
    got, expected = run_program(in_place, {"input.1": x}), run_program(lowered, {"input.1": x})
    np.testing.assert_array_equal(*(next(iter(r.values())) for r in (got, expected)))


# Few outputs per sample: calibrate on enough samples that the test's own do not fall outside the range.
CALIB_RANK2 = np.random.default_rng(3).standard_normal((1000, 1, 8)).astype(np.float32)


def test_rank2_features_are_written_in_place():
    """Batch 1: one outer index, so any kernel (here fully connected) writes its contiguous slice."""
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["a"], transB=1),
        helper.make_node("Gemm", ["x", "w2"], ["b"], transB=1),
        helper.make_node("Concat", ["a", "b"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w3"], ["y"], transB=1),
    ]
    inits = dict(zip(("w1", "w2", "w3"), weights(1, (5, 8), (3, 8), (4, 8))))
    compiled, _ = check_model(make_model(nodes, {"x": (1, 8)}, ["y"], inits), (1, 8), calib=CALIB_RANK2)
    assert "mcu_concat_s8" not in kernels(compiled) and compiled.program.slices == {"a": 0, "b": 5}
    assert_valid_plan(compiled)
    assert compiled.plan.size == align(8)  # only the concat output: both producers write into it
    assert copied_arena(compiled) == align(5) + align(3) + align(8)


def test_rank2_concat_as_the_graph_output_is_written_into_the_callers_buffer():
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["a"], transB=1),
        helper.make_node("Gemm", ["x", "w2"], ["b"], transB=1),
        helper.make_node("Concat", ["a", "b"], ["y"], axis=1),
    ]
    inits = dict(zip(("w1", "w2"), weights(2, (5, 8), (3, 8))))
    compiled, _ = check_model(make_model(nodes, {"x": (1, 8)}, ["y"], inits), (1, 8), calib=CALIB_RANK2)
    assert kernels(compiled) == ["mcu_fully_connected_s8"] * 2
    assert compiled.plan.size == 0 and compiled.plan.locate(compiled.program, "b") == ("output", 0, 5)
