"""Data movement at every rank 1-6, exactly: Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Slice, Split,
Concat, Gather, Expand, Tile, DepthToSpace, SpaceToDepth, with random shapes, perms and axes.

These ops only move int8 values, so the oracle is exact: onnxruntime runs the float model on the int8 input's
dequantized values, and its output, quantized with the (shared) output quantization, must equal the generated
C's int8 output element for element (built under ASan/UBSan). Rank-4 tensors live in NHWC inside the C, so
every case also crosses the layout boundary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import mcucompile
from conftest import assert_bit_exact, make_model, ort_run
from mcucompile.quant import quantize
from mcucompile.verify import run_executable

CASES_PER_RANK = 4


def check_exact(model, in_shape, seed, samples=3):
    """Compile with calibration on the input; the C's int8 output == onnxruntime on the dequantized input."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, *in_shape)).astype(np.float32)
    compiled = mcucompile.compile(model, name="mv", calibration=x)
    g = compiled.graph
    in_q, out_q = g.tensors[g.inputs[0]].quant, g.tensors[g.outputs[0]].quant
    assert (in_q.s, in_q.zp) == (out_q.s, out_q.zp), "a pure data movement keeps the input's quantization"
    q = np.stack([compiled.quantize_input(s) for s in x])
    with tempfile.TemporaryDirectory() as tmp:
        compiled.write(tmp)
        got = run_executable(Path(tmp), "mv", q.reshape(samples, -1))
    reference = ort_run(model, ((q.astype(np.float32) - in_q.zp) * in_q.s).astype(np.float32))
    expected = np.stack([quantize(r, out_q) for r in reference])
    assert_bit_exact(got, expected.reshape(samples, -1))
    return compiled


def _shape(rng, rank, low=1, high=4):
    return tuple(int(d) for d in rng.integers(low, high + 1, rank))


def _cases(rank):
    return [(rank, k) for k in range(CASES_PER_RANK)]


ALL_RANKS = [c for r in range(1, 7) for c in _cases(r)]


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_transpose(rank, k):
    rng = np.random.default_rng(100 * rank + k)
    shape = _shape(rng, rank, 1, 5 if rank < 5 else 3)
    perm = [int(p) for p in rng.permutation(rank)]
    model = make_model([helper.make_node("Transpose", ["x"], ["y"], perm=perm)], {"x": shape}, ["y"])
    check_exact(model, shape, k)


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_reshape_through_ranks(rank, k):
    """Reshape to a random factorisation of another rank, transpose there, reshape back to the input's rank."""
    rng = np.random.default_rng(200 * rank + k)
    shape = _shape(rng, rank, 2, 3)
    size = int(np.prod(shape))
    factors = [f for f in range(2, size + 1) if size % f == 0]
    middle = [int(rng.choice(factors))]
    middle.append(size // middle[0])
    if rank < 6 and middle[1] % 2 == 0:
        middle = [middle[0], 2, middle[1] // 2]
    perm = [int(p) for p in rng.permutation(len(middle))]
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Transpose", ["a"], ["b"], perm=perm),
        helper.make_node("Flatten", ["b"], ["c"], axis=1),
        helper.make_node("Reshape", ["c", "s2"], ["y"]),
    ]
    out = tuple(int(d) for d in rng.permutation(list(shape)))
    inits = {"s1": np.array(middle, np.int64), "s2": np.array(out, np.int64)}
    check_exact(make_model(nodes, {"x": shape}, ["y"], inits), shape, k)


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_squeeze_unsqueeze(rank, k):
    rng = np.random.default_rng(300 * rank + k)
    shape = list(_shape(rng, rank, 2, 4))
    ones = sorted(int(a) for a in rng.choice(rank, size=min(rank, 2), replace=False))
    for a in ones:
        shape[a] = 1
    unsq = [int(rng.integers(0, rank - len(ones) + 1))]
    nodes = [
        helper.make_node("Squeeze", ["x", "sq"], ["a"]),
        helper.make_node("Unsqueeze", ["a", "un"], ["b"]),
        helper.make_node("Transpose", ["b"], ["y"], perm=list(reversed(range(rank - len(ones) + 1)))),
    ]
    inits = {"sq": np.array(ones, np.int64), "un": np.array(unsq, np.int64)}
    check_exact(make_model(nodes, {"x": tuple(shape)}, ["y"], inits), tuple(shape), k)


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_slice(rank, k):
    rng = np.random.default_rng(400 * rank + k)
    shape = _shape(rng, rank, 2, 6 if rank < 5 else 4)
    axes = sorted(int(a) for a in rng.choice(rank, size=int(rng.integers(1, rank + 1)), replace=False))
    starts, ends, steps = [], [], []
    for a in axes:
        d = shape[a]
        step = int(rng.choice([1, 2, -1, -2]))
        start = int(rng.integers(-d, d))
        end = int(rng.integers(-d - 1, d + 2))
        if len(range(*slice(start, end, step).indices(d))) == 0:
            start, end = (0, d) if step > 0 else (-1, -d - 1)
        starts.append(start), ends.append(end), steps.append(step)
    inits = {n: np.array(v, np.int64) for n, v in (("st", starts), ("en", ends), ("ax", axes), ("sp", steps))}
    model = make_model([helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], {"x": shape}, ["y"], inits)
    check_exact(model, shape, k)


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_split_and_concat(rank, k):
    """Split along one axis, reorder the parts, concatenate along the same axis: a permutation of slabs."""
    rng = np.random.default_rng(500 * rank + k)
    shape = list(_shape(rng, rank, 1, 3))
    axis = int(rng.integers(-rank, rank))
    shape[axis] = int(rng.integers(3, 7))
    cut = int(rng.integers(1, shape[axis]))
    split = np.array([cut, shape[axis] - cut], np.int64)
    nodes = [
        helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=axis),
        helper.make_node("Concat", ["b", "x", "a"], ["y"], axis=axis),
    ]
    check_exact(make_model(nodes, {"x": tuple(shape)}, ["y"], {"sp": split}), tuple(shape), k)


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_gather(rank, k):
    rng = np.random.default_rng(600 * rank + k)
    shape = _shape(rng, rank, 1, 4)
    axis = int(rng.integers(-rank, rank))
    dim = shape[axis]
    indices = rng.integers(-dim, dim, int(rng.integers(1, 6))).astype(np.int64)
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)], {"x": shape}, ["y"], {"i": indices})
    check_exact(model, shape, k)


@pytest.mark.parametrize("rank,k", ALL_RANKS)
def test_expand(rank, k):
    rng = np.random.default_rng(700 * rank + k)
    out = _shape(rng, rank, 2, 3)
    shape = tuple(d if rng.random() < 0.5 else 1 for d in out)
    lead = int(rng.integers(0, rank))  # the input may have fewer axes: ONNX right-aligns
    shape = shape[lead:] or (1,)
    target = np.array([d if rng.random() < 0.7 else 1 for d in out], np.int64)  # 1: keep the input's size
    target[:lead] = out[:lead]
    model = make_model([helper.make_node("Expand", ["x", "s"], ["y"])], {"x": shape}, ["y"], {"s": target})
    check_exact(model, shape, k)


@pytest.mark.parametrize("rank,k", [c for r in range(1, 5) for c in _cases(r)])
def test_tile(rank, k):
    rng = np.random.default_rng(800 * rank + k)
    shape = _shape(rng, rank, 1, 3)
    repeats = np.array([int(rng.integers(1, 3)) for _ in range(rank)], np.int64)
    if rank > 2:  # keep the copy within the kernel's six loops
        repeats[: rank - 2] = 1
    model = make_model([helper.make_node("Tile", ["x", "r"], ["y"])], {"x": shape}, ["y"], {"r": repeats})
    check_exact(model, shape, k)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("block,shape", [(2, (1, 8, 3, 5)), (3, (2, 18, 2, 2)), (2, (1, 4, 1, 1))])
def test_depth_to_space_and_back(mode, block, shape):
    nodes = [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=block, mode=mode)]
    check_exact(make_model(nodes, {"x": shape}, ["y"]), shape, block)
    n, c, h, w = shape
    back = (n, c // block**2, h * block, w * block)
    nodes = [helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=block)]
    check_exact(make_model(nodes, {"x": back}, ["y"]), back, block)


def test_pixel_shuffle_as_exported_is_exact():
    """PyTorch's PixelShuffle written out: Reshape -> 6-D Transpose -> Reshape (the wrong answer of the issue)."""
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Transpose", ["a"], ["b"], perm=[0, 1, 4, 2, 5, 3]),
        helper.make_node("Reshape", ["b", "s2"], ["y"]),
    ]
    inits = {"s1": np.array([1, 3, 2, 2, 6, 5], np.int64), "s2": np.array([1, 3, 12, 10], np.int64)}
    check_exact(make_model(nodes, {"x": (1, 12, 6, 5)}, ["y"], inits), (1, 12, 6, 5), 0)


def test_yolo_head_permute_is_exact():
    """view(b, 3, 7, h, w).permute(0, 1, 3, 4, 2): a 5-D transpose (its perm once came out with -1 entries)."""
    nodes = [
        helper.make_node("Reshape", ["x", "s"], ["a"]),
        helper.make_node("Transpose", ["a"], ["y"], perm=[0, 1, 3, 4, 2]),
    ]
    inits = {"s": np.array([1, 3, 7, 4, 5], np.int64)}
    check_exact(make_model(nodes, {"x": (1, 21, 4, 5)}, ["y"], inits), (1, 21, 4, 5), 1)


def test_rank_7_transpose_is_refused_before_calibration():
    shape = (1, 2, 1, 2, 1, 2, 2)
    node = helper.make_node("Transpose", ["x"], ["y"], perm=list(reversed(range(7))))
    model = make_model([node], {"x": shape}, ["y"])
    with pytest.raises(mcucompile.CompileError, match="tensor 'x' has rank 7; at most 6"):  # at import
        mcucompile.compile(model, calibration=np.zeros((1, *shape), np.float32))


@pytest.mark.parametrize("op", ["Identity", "Dropout"])
def test_graph_output_that_is_the_input_is_a_copy(op):
    """torch.nn.Identity / Dropout in eval mode export as Identity of the graph input: compiled as a copy."""
    model = make_model([helper.make_node(op, ["x"], ["y"])], {"x": (1, 3, 4, 5)}, ["y"])
    compiled = check_exact(model, (1, 3, 4, 5), 2)
    assert {c.kernel for c in compiled.program.calls} == {"mcu_transpose_s8"}  # copies only
