"""The arena planner: fixed cases where each placement strategy's result is known, the no-overlap invariant on
random buffers for every strategy, operator reordering on random DAGs (against brute force) and on a branchy
ONNX model (bit-exact C), and in-place reuse on a compiled model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

import mcucompile
from conftest import check_model, make_model
from mcucompile.lower import lower
from mcucompile.memory import (
    ALIGNMENT,
    STRATEGIES,
    ArenaPlan,
    Buffer,
    greedy_by_size,
    lower_bound,
    overlapping_pairs,
    place,
    plan_memory,
)
from mcucompile.schedule import Task, best_order, dependencies, peak


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


def chain(*sizes):
    """Buffer k is written at step k and read at step k + 1, as in a network without branches."""
    return tuple(Buffer(chr(97 + k), s, k, k + 1) for k, s in enumerate(sizes))


# Each case: buffers, the lower bound, and the arena each strategy gives (found by a search over random cases).
KNOWN = {
    "two_ended": (chain(20, 20, 20, 32), 52, dict(greedy_by_size=60, greedy_by_conflicts=72, two_ended=52)),
    "greedy_by_conflicts": (
        (Buffer("a", 32, 4, 6), Buffer("b", 12, 4, 6), Buffer("c", 16, 1, 3), Buffer("d", 20, 2, 3),
         Buffer("e", 12, 3, 5)),
        56,
        dict(greedy_by_size=60, greedy_by_conflicts=56, greedy_by_breadth=60, two_ended=60),
    ),
    "greedy_by_breadth": (
        (Buffer("a", 24, 3, 4), Buffer("b", 20, 1, 3), Buffer("c", 16, 3, 4), Buffer("d", 32, 0, 1),
         Buffer("e", 32, 4, 6)),
        72,
        dict(greedy_by_size=92, greedy_by_conflicts=92, greedy_by_breadth=72, two_ended=84),
    ),
    "exact": (
        (Buffer("a", 16, 2, 4), Buffer("b", 16, 1, 2), Buffer("c", 20, 1, 1), Buffer("d", 4, 2, 4),
         Buffer("e", 32, 3, 3)),
        52,
        dict(greedy_by_size=56, greedy_by_conflicts=68, greedy_by_breadth=68, two_ended=84, exact=52),
    ),
}  # fmt: skip


@pytest.mark.parametrize("winner", KNOWN)
def test_each_strategy_wins_where_it_should(winner):
    buffers, bound, expected = KNOWN[winner]
    offsets, strategy, sizes = place(buffers)
    assert lower_bound(buffers) == bound
    assert {k: sizes[k] for k in expected} == expected
    assert strategy == winner and arena_size(buffers, offsets) == bound


def test_ties_go_to_tflite_micros_greedy():
    offsets, strategy, sizes = place(chain(8, 8, 8))
    assert strategy == "greedy_by_size" and set(sizes.values()) == {16}


def test_exact_is_skipped_for_many_buffers():
    assert "exact" not in place(chain(*[4] * 40))[2]


specs = st.lists(st.tuples(st.integers(1, 64), st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(specs)
def test_every_strategy_is_valid_and_the_winner_is_between_bound_and_tflm(specs):
    buffers = tuple(Buffer(f"b{i}", (s + 3) // 4 * 4, t, t + d) for i, (s, t, d) in enumerate(specs))
    bound, tflm = lower_bound(buffers), arena_size(buffers, greedy_by_size(buffers))
    for name, strategy in STRATEGIES.items():
        offsets = strategy(buffers)
        plan = ArenaPlan(arena_size(buffers, offsets), bound, offsets, buffers, {}, {})
        assert overlapping_pairs(plan) == [], name
        assert all(o % ALIGNMENT == 0 for o in offsets.values()), name
    offsets, _, sizes = place(buffers)
    assert bound <= arena_size(buffers, offsets) == min(sizes.values()) <= tflm


# --- operator reordering ------------------------------------------------------------------------------------


@st.composite
def dags(draw, max_tasks):
    """Task i writes buffer i and reads up to two earlier buffers; sizes and scratch at random."""
    n = draw(st.integers(1, max_tasks))
    sizes = draw(st.lists(st.integers(0, 16).map(lambda k: 4 * k), min_size=n, max_size=n))
    tasks = []
    for i in range(n):
        reads = draw(st.sets(st.integers(0, i - 1), max_size=2)) if i else set()
        tasks.append(Task(tuple(sorted(reads)), (i,), draw(st.sampled_from((0, 0, 8)))))
    return tasks, sizes


def is_valid_order(order, tasks):
    deps, done = dependencies(tasks), 0
    for c in order:
        if deps[c] & ~done:
            return False
        done |= 1 << c
    return sorted(order) == list(range(len(tasks)))


def brute_force_peak(tasks, sizes):
    deps, n, best = dependencies(tasks), len(tasks), [None]

    def walk(order, done):
        if len(order) == n:
            p = peak(order, tasks, sizes)
            best[0] = p if best[0] is None else min(best[0], p)
        for c in range(n):
            if not done >> c & 1 and not deps[c] & ~done:
                walk([*order, c], done | 1 << c)

    walk([], 0)
    return best[0]


@settings(max_examples=60, deadline=None)
@given(dags(7))
def test_reordering_finds_the_minimum_peak_of_small_graphs(dag):
    tasks, sizes = dag
    order = best_order(tasks, sizes)
    assert is_valid_order(order, tasks)
    assert peak(order, tasks, sizes) == brute_force_peak(tasks, sizes)


@settings(max_examples=30, deadline=None)
@given(dags(40), st.integers(1, 8))
def test_reordering_beyond_the_exact_width_is_valid_and_never_worse(dag, width):
    tasks, sizes = dag
    order = best_order(tasks, sizes, width=width)
    assert is_valid_order(order, tasks)
    assert peak(order, tasks, sizes) <= peak(range(len(tasks)), tasks, sizes)


def test_a_chain_keeps_its_order():
    tasks = [Task((), (0,)), Task((0,), (1,)), Task((1,), (2,))]
    assert best_order(tasks, [40, 8, 40]) == (0, 1, 2)


def branches(depth=3, wide=24):
    """Two parallel branches of 1x1 convs (4 -> wide -> 2 channels, `depth` times), concatenated. The ONNX node
    list interleaves them so that both wide tensors are live at once; one branch after the other is better."""
    rng = np.random.default_rng(0)
    nodes, inits, heads = [], {}, {"a": "x", "b": "x"}
    for k in range(depth):
        for j, (cin, cout) in enumerate(((4 if k == 0 else 2, wide), (wide, 2))):
            for br in "ab":
                out, w = f"{br}{k}{j}", f"W{br}{k}{j}"
                inits[w] = (rng.standard_normal((cout, cin, 1, 1)) * 0.5).astype(np.float32)
                nodes.append(helper.make_node("Conv", [heads[br], w], [out], name=f"conv_{out}", kernel_shape=[1, 1]))
                heads[br] = out
    nodes.append(helper.make_node("Concat", [heads["a"], heads["b"]], ["y"], name="concat", axis=1))
    return make_model(nodes, {"x": (1, 4, 8, 8)}, ["y"], inits)


def test_branchy_model_is_reordered_into_a_smaller_arena_and_stays_bit_exact():
    compiled, _ = check_model(branches(), (1, 4, 8, 8))
    plan, program = compiled.plan, compiled.program
    given = plan_memory(lower(compiled.graph))  # the lowered (ONNX) order
    assert plan.reordered and plan.size < given.size == plan.given_size
    assert plan.lower_bound < given.lower_bound == plan.given_bound
    assert overlapping_pairs(plan) == []
    lowered = lower(compiled.graph).calls
    assert [c.node for c in program.calls] == [lowered[i].node for i in plan.order]
    assert "reordered" in compiled.summary() and plan.strategy in compiled.summary()


def inception(c=4, wide=32):
    """An Inception-like block: 1x1, 1x1 -> 3x3, 1x1 -> 3x3 -> 3x3 and 3x3 max pool -> 1x1, concatenated, with
    the ONNX node list going across the branches one depth at a time."""
    rng = np.random.default_rng(1)
    inits = {}

    def conv(x, y, cin, cout, k):
        inits[f"W_{y}"] = (rng.standard_normal((cout, cin, k, k)) * 0.3).astype(np.float32)
        pads = [k // 2] * 4
        return helper.make_node("Conv", [x, f"W_{y}"], [y], name=y, kernel_shape=[k, k], pads=pads)

    nodes = [
        conv("x", "b1", 4, c, 1), conv("x", "b2a", 4, wide, 1), conv("x", "b3a", 4, wide, 1),
        helper.make_node("MaxPool", ["x"], ["b4a"], name="b4a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        conv("b2a", "b2", wide, c, 3), conv("b3a", "b3b", wide, wide, 3), conv("b4a", "b4", 4, c, 1),
        conv("b3b", "b3", wide, c, 3),
        helper.make_node("Concat", ["b1", "b2", "b3", "b4"], ["y"], name="concat", axis=1),
    ]  # fmt: skip
    return make_model(nodes, {"x": (1, 4, 8, 8)}, ["y"], inits)


def test_inception_block_is_reordered_into_a_smaller_arena_and_stays_bit_exact():
    compiled, _ = check_model(inception(), (1, 4, 8, 8))
    plan = compiled.plan
    assert overlapping_pairs(plan) == []
    assert plan.reordered and plan.lower_bound <= plan.size < plan.given_size


# --- overlapping in-place execution ---------------------------------------------------------------------------


def c_loop_gap(kind, in_dims, out_dims, kernel, stride, pad, dil):
    """The oracle: the smallest (input offset - output offset) that a trace of the C kernel's loops allows, every
    byte read and written in the kernel's real order (mcu_conv_s8: im2col of a pixel, then its channels;
    depthwise and pooling: channel by channel, each window read right before its byte is written)."""
    n, h, w, cin = in_dims
    _, oh, ow, cout = out_dims
    events = []  # (is_write, byte)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                taps = [(oy * stride[0] - pad[0] + ky * dil[0], ox * stride[1] - pad[1] + kx * dil[1])
                        for ky in range(kernel[0]) for kx in range(kernel[1])]
                taps = [((b * h + iy) * w + ix) * cin for iy, ix in taps if 0 <= iy < h and 0 <= ix < w]
                out = ((b * oh + oy) * ow + ox) * cout
                if kind == "conv":
                    events += [(False, t + ic) for t in taps for ic in range(cin)]
                    events += [(True, out + oc) for oc in range(cout)]
                elif kind == "dw3x3":  # mcu_depthwise_conv_3x3_s8_fast: blocks of 4 channels, then one by one
                    full = cout - cout % 4
                    groups = [range(c, c + 4) for c in range(0, full, 4)] + [range(c, c + 1) for c in range(full, cout)]
                    for group in groups:
                        events += [(False, t + oc) for t in taps for oc in group]
                        events += [(True, out + oc) for oc in group]
                else:
                    for oc in range(cout):
                        events += [(False, t + oc // (cout // cin)) for t in taps]
                        events.append((True, out + oc))
    gap, lowest_later = -n * h * w * cin, None
    for is_write, byte in reversed(events):
        if not is_write:
            lowest_later = byte if lowest_later is None else min(lowest_later, byte)
        elif lowest_later is not None:
            gap = max(gap, byte + 1 - lowest_later)
    return gap


def gemm_loop_gap(in_dims, out_dims, kernel, stride, pad, dil, pixels_per_step):
    """The oracle for mcu_conv_s8_fast: output pixels k at a time across rows and images, every window of the step
    read (im2col; taps outside the image read nothing) before any of the step's outputs is written; the slots past
    the last pixel repeat it (nothing new read or written)."""
    n, h, w, cin = in_dims
    _, oh, ow, cout = out_dims
    pixels = [(b, oy, ox) for b in range(n) for oy in range(oh) for ox in range(ow)]
    events = []  # (is_write, byte)
    for first in range(0, len(pixels), pixels_per_step):
        step = range(first, min(first + pixels_per_step, len(pixels)))
        for b, oy, ox in (pixels[p] for p in step):
            taps = [(oy * stride[0] - pad[0] + ky * dil[0], ox * stride[1] - pad[1] + kx * dil[1])
                    for ky in range(kernel[0]) for kx in range(kernel[1])]
            events += [(False, ((b * h + iy) * w + ix) * cin + ic) for iy, ix in taps if 0 <= iy < h and 0 <= ix < w
                       for ic in range(cin)]
        events += [(True, p * cout + oc) for p in step for oc in range(cout)]
    gap, lowest_later = -n * h * w * cin, None
    for is_write, byte in reversed(events):
        if not is_write:
            lowest_later = byte if lowest_later is None else min(lowest_later, byte)
        elif lowest_later is not None:
            gap = max(gap, byte + 1 - lowest_later)
    return gap


def fast_conv_gap(in_dims, out_dims, kernel, stride, pad, dil):
    """mcu_conv_s8_fast's gap: its C takes 3 pixels at a time where MCU_DSP, 2 elsewhere; the gap suits both."""
    return max(gemm_loop_gap(in_dims, out_dims, kernel, stride, pad, dil, k) for k in (2, 3))


def call_gap_oracle(call):
    p = call.params
    if call.kernel == "mcu_conv_s8_fast":
        return fast_conv_gap(p["in_dims"], p["out_dims"], p["filter_dims"][1:3], p["stride"], p["padding"],
                             p["dilation"])
    if call.kernel == "mcu_depthwise_conv_3x3_s8_fast":
        return c_loop_gap("dw3x3", p["in_dims"], p["out_dims"], (3, 3), p["stride"], p["padding"], (1, 1))
    if call.kernel in ("mcu_conv_s8", "mcu_depthwise_conv_s8"):
        kind, kernel = ("conv" if call.kernel == "mcu_conv_s8" else "channelwise"), p["filter_dims"][1:3]
    else:
        kind, kernel = "channelwise", p["kernel"]
    return c_loop_gap(kind, p["in_dims"], p["out_dims"], kernel, p["stride"], p["padding"], p["dilation"])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_overlap_gap_matches_a_trace_of_the_c_loops(data):
    from mcucompile.ops.window import overlap_gap

    d = data.draw
    kind = d(st.sampled_from(["conv", "channelwise"]))
    n, h, w, cin = d(st.integers(1, 2)), d(st.integers(1, 7)), d(st.integers(1, 7)), d(st.integers(1, 4))
    cout = cin * d(st.integers(1, 3)) if kind == "channelwise" else d(st.integers(1, 6))
    kernel = (d(st.integers(1, 4)), d(st.integers(1, 4)))
    stride, dil = (d(st.integers(1, 3)), d(st.integers(1, 3))), (d(st.integers(1, 2)), d(st.integers(1, 2)))
    pad = (d(st.integers(0, 2)), d(st.integers(0, 2)))
    oh = max((h + 2 * pad[0] - dil[0] * (kernel[0] - 1) - 1) // stride[0] + 1, 1)
    ow = max((w + 2 * pad[1] - dil[1] * (kernel[1] - 1) - 1) // stride[1] + 1, 1)
    dims_in, dims_out = (n, h, w, cin), (n, oh, ow, cout)
    expected = c_loop_gap(kind, dims_in, dims_out, kernel, stride, pad, dil)
    assert overlap_gap(dims_in, dims_out, kernel, stride, pad, dil, per_channel=kind != "conv") == expected
    if kind == "conv":  # mcu_conv_s8_fast: 2 or 3 pixels a step
        for k in (2, 3):
            got = overlap_gap(dims_in, dims_out, kernel, stride, pad, dil, per_channel=False, pixels_per_step=k)
            assert got == gemm_loop_gap(dims_in, dims_out, kernel, stride, pad, dil, k)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 10), st.integers(1, 2),
       st.integers(1, 2), st.integers(0, 3), st.integers(0, 3))
def test_overlap_gap_of_the_depthwise_3x3_fast_kernel_matches_a_trace_of_its_c_loops(n, h, w, c, sh, sw, ph, pw):
    from mcucompile.ops.window import overlap_gap

    oh, ow = max((h + 2 * ph - 3) // sh + 1, 1), max((w + 2 * pw - 3) // sw + 1, 1)
    dims_in, dims_out = (n, h, w, c), (n, oh, ow, c)
    got = overlap_gap(dims_in, dims_out, (3, 3), (sh, sw), (ph, pw), (1, 1), per_channel=c != 4)  # as lower_conv
    assert got == c_loop_gap("dw3x3", dims_in, dims_out, (3, 3), (sh, sw), (ph, pw), (1, 1))


def tensor_conflicts(program, plan):
    """The generalised no-overlap invariant, checked tensor by tensor (not by the planner's groups): two arena
    tensors share bytes at a step only if one is a merged output over the other, at the one step where the
    input dies and the output is born, with the output starting at least the call's overlap_gap before it."""
    first, last, ranges = {}, {}, {}
    for step, call in enumerate(program.calls):
        for t in call.inputs:
            last[program.root(t)] = step
        for t in call.outputs:
            r = program.root(t)
            first.setdefault(r, step)
            last[r] = max(last.get(r, step), step)
        if call.scratch_bytes:
            s = f"::scratch{step}"
            first[s] = last[s] = step
            ranges[s] = (plan.offsets[s], plan.offsets[s] + call.scratch_bytes)
    for r in first:
        if r not in ranges:
            where, at, _ = plan.locate(program, r)
            if where == "arena":
                ranges[r] = (at, at + program.sizes[r])
    bad = []
    names = sorted(ranges)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if first[a] > last[b] or first[b] > last[a]:
                continue
            if ranges[a][0] >= ranges[b][1] or ranges[b][0] >= ranges[a][1]:
                continue
            src, dst = (a, b) if plan.merged.get(b) == a else (b, a)
            step = first[dst]
            call = program.calls[step] if plan.merged.get(dst) == src else None
            ok = (
                call is not None
                and last[src] == step
                and program.root(call.inputs[0]) == src
                and ranges[src][0] - ranges[dst][0] >= call.overlap_gap
            )
            if not ok:
                bad.append((a, b))
    return bad


def dscnn_chain(c=8, hw=12):
    """Expanding 1x1, depthwise 3x3, pointwise 1x1 (x2), max pool, average pool: every overlap gap at work."""
    rng, inits = np.random.default_rng(3), {}

    def conv(x, y, cin, cout, k, group=1, stride=1):
        inits[f"W_{y}"] = (rng.standard_normal((cout, cin // group, k, k)) * 0.4).astype(np.float32)
        return helper.make_node("Conv", [x, f"W_{y}"], [y], kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                                strides=[stride, stride])

    nodes = [
        conv("x", "a", 3, c, 3, stride=2), conv("a", "b", c, c, 3, group=c), conv("b", "d", c, 2 * c, 1),
        conv("d", "e", 2 * c, 2 * c, 3, group=2 * c, stride=2), conv("e", "f", 2 * c, 2 * c, 1),
        helper.make_node("MaxPool", ["f"], ["g"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("AveragePool", ["g"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]  # fmt: skip
    return make_model(nodes, {"x": (1, 3, hw, hw)}, ["y"], inits)


def test_overlapping_chain_is_bit_exact_and_below_the_conventional_bound():
    compiled, _ = check_model(dscnn_chain(), (1, 3, 12, 12))
    program, plan = compiled.program, compiled.plan
    merged = [(c.kernel, c.overlap_gap) for c in program.calls if program.root(c.outputs[0]) in plan.merged]
    assert {"mcu_depthwise_conv_3x3_s8_fast", "mcu_conv_s8_fast"} <= {k for k, _ in merged}
    assert any(g > 0 for _, g in merged)
    for call in program.calls:
        if "conv" in call.kernel or "pool" in call.kernel:
            assert call.overlap_gap == call_gap_oracle(call)
    assert overlapping_pairs(plan) == [] and tensor_conflicts(program, plan) == []
    conventional = lower_bound(tuple(Buffer(b.name, b.size, b.first, b.last) for b in plan_memory(
        replace_gaps(program)).buffers))
    assert plan.size < conventional


def replace_gaps(program):
    """The program with every overlap of a window kernel forbidden (the conventional, non-overlapping plan)."""
    from dataclasses import replace

    calls = tuple(replace(c, overlap_gap=None) if "conv" in c.kernel or "pool" in c.kernel else c
                  for c in program.calls)
    return replace(program, calls=calls)


@st.composite
def window_chains(draw):
    """A random chain of convs (some 1x1, some depthwise), max and average pools on a small image."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    c, hw = draw(st.integers(1, 4)), draw(st.integers(6, 10))
    nodes, inits, x = [], {}, "x"
    shape = (1, c, hw, hw)
    for k in range(draw(st.integers(2, 5))):
        y = f"t{k}"
        kind = draw(st.sampled_from(["conv", "pointwise", "depthwise", "maxpool", "avgpool"]))
        stride = draw(st.integers(1, 2)) if hw >= 4 else 1
        size = 1 if kind == "pointwise" else draw(st.integers(1, 3))
        pad = size // 2
        if kind in ("maxpool", "avgpool"):
            op = "MaxPool" if kind == "maxpool" else "AveragePool"
            nodes.append(helper.make_node(op, [x], [y], kernel_shape=[size, size], strides=[stride, stride],
                                          pads=[pad] * 4))
            cout = c
        else:
            group = c if kind == "depthwise" else 1
            cout = c * draw(st.integers(1, 2)) if kind == "depthwise" else draw(st.integers(1, 8))
            inits[f"W{k}"] = (rng.standard_normal((cout, c // group, size, size)) * 0.5).astype(np.float32)
            nodes.append(helper.make_node("Conv", [x, f"W{k}"], [y], kernel_shape=[size, size], pads=[pad] * 4,
                                          strides=[stride, stride], group=group))
        hw = (hw + 2 * pad - size) // stride + 1
        c, x = cout, y
    nodes[-1] = helper.make_node(nodes[-1].op_type, list(nodes[-1].input), ["y"],
                                 **{a.name: helper.get_attribute_value(a) for a in nodes[-1].attribute})
    return make_model(nodes, {"x": shape}, ["y"], inits), shape


@settings(max_examples=12, deadline=None)
@given(window_chains())
def test_random_window_chains_overlap_in_place_bit_exact_under_sanitizers(case):
    model, shape = case
    compiled, _ = check_model(model, shape, min_sqnr=-100.0, n_test=4)
    assert overlapping_pairs(compiled.plan) == [] and tensor_conflicts(compiled.program, compiled.plan) == []
    for call in compiled.program.calls:
        if call.kernel in ("mcu_conv_s8", "mcu_conv_s8_fast", "mcu_depthwise_conv_s8", "mcu_max_pool_s8",
                           "mcu_avg_pool_s8"):
            assert call.overlap_gap == call_gap_oracle(call)


@pytest.mark.parametrize("name, before, target", [("kws", 16_128, 12_143), ("vww", 55_312, 51_838)])
def test_mlperf_arena_below_half_of_tflite_micro(name, before, target):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mlperf_tiny" / f"{name}.onnx"
    compiled = mcucompile.compile(path, name=name)
    plan, program = compiled.plan, compiled.program
    assert plan.size <= target < before
    assert plan.merged and overlapping_pairs(plan) == [] and tensor_conflicts(program, plan) == []
