"""The arena planner: fixed cases in TFLite Micro's style, the no-overlap invariant on random buffers, and
in-place reuse on a compiled model."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

import mcucompile
from conftest import make_model
from mcucompile.memory import ALIGNMENT, ArenaPlan, Buffer, greedy_by_size, overlapping_pairs


def arena_size(buffers, offsets):
    return max(offsets[b.name] + b.size for b in buffers)


def test_disjoint_lifetimes_share_bytes():
    buffers = (Buffer("a", 12, 0, 1), Buffer("b", 20, 2, 3))
    offsets = greedy_by_size(buffers)
    assert arena_size(buffers, offsets) == 20


def test_overlapping_lifetimes_stack_largest_first():
    buffers = (Buffer("a", 12, 0, 2), Buffer("b", 20, 1, 3))
    offsets = greedy_by_size(buffers)
    assert offsets == {"b": 0, "a": 20}


def test_a_gap_between_live_buffers_is_reused():
    buffers = (Buffer("big1", 40, 0, 3), Buffer("hole", 16, 0, 0), Buffer("big2", 40, 0, 3), Buffer("late", 16, 2, 3))
    offsets = greedy_by_size(buffers)
    assert arena_size(buffers, offsets) == 96  # "late" sits where "hole" was


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 64), st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=25))
def test_no_two_live_buffers_overlap(specs):
    buffers = tuple(Buffer(f"b{i}", (s + 3) // 4 * 4, t, t + d) for i, (s, t, d) in enumerate(specs))
    offsets = greedy_by_size(buffers)
    plan = ArenaPlan(arena_size(buffers, offsets), 0, offsets, buffers, {}, {})
    assert overlapping_pairs(plan) == []
    assert all(o % ALIGNMENT == 0 for o in offsets.values())
    bound = max(sum(b.size for b in buffers if b.first <= s <= b.last) for s in range(20))
    assert plan.size >= bound


def test_compiled_model_plan_is_valid_and_clamp_runs_in_place():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Relu", ["p"], ["r"]),
        helper.make_node("Conv", ["r", "W2"], ["y"], kernel_shape=[1, 1]),
    ]
    inits = {
        "W": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "W2": rng.standard_normal((4, 8, 1, 1)).astype(np.float32),
    }
    model = make_model(nodes, {"x": (1, 3, 8, 8)}, ["y"], inits)
    compiled = mcucompile.compile(model, name="m", calibration=rng.standard_normal((8, 1, 3, 8, 8)).astype(np.float32))
    plan, program = compiled.plan, compiled.program
    assert overlapping_pairs(plan) == []
    clamp = next(c for c in program.calls if c.kernel == "mcu_clamp_s8")
    assert plan.locate(program, clamp.inputs[0]) == plan.locate(program, clamp.outputs[0])
    assert plan.size >= plan.lower_bound
