"""Memory planning: lower bound, TFLite Micro's arena, and our arena per placement strategy, in the lowered order
and after operator reordering, with the planning time, all without overlapping outputs (only elementwise calls
in place); then the arena with overlapping in-place execution (KernelCall.overlap_gap) and its planning time.
The markdown section of BENCHMARKS.md.

    python benchmarks/memory.py

Models: the four MLPerf Tiny models, two branchy models built here (two parallel branches listed interleaved;
an Inception-v1-like block), the network families of tests/zoo.py (smaller input size), and a 300-call synthetic
program of branchy blocks (planning time only).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import zoo  # noqa: E402  (the network families of tests/zoo.py)

import mcucompile
from mcucompile.ir import KernelCall
from mcucompile.lower import Program, lower
from mcucompile.memory import STRATEGIES, plan, plan_memory


def _model(nodes, inits: dict, shape) -> object:
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _conv(x, y, cin, cout, k, inits, rng):
    inits[f"W_{y}"] = (rng.standard_normal((cout, cin, k, k)) * 0.3).astype(np.float32)
    return helper.make_node("Conv", [x, f"W_{y}"], [y], name=y, kernel_shape=[k, k], pads=[k // 2] * 4)


def two_branches(depth=4, wide=64, narrow=8, hw=24):
    """Two branches of 1x1 convs (narrow -> wide -> narrow, `depth` times) concatenated; the node list goes across
    the branches one layer at a time, as a breadth-first exporter writes it."""
    rng, inits, nodes, heads = np.random.default_rng(0), {}, [], {"a": "x", "b": "x"}
    for k in range(depth):
        for j, (cin, cout) in enumerate(((narrow, wide), (wide, narrow))):
            for br in "ab":
                nodes.append(_conv(heads[br], f"{br}{k}{j}", cin, cout, 1, inits, rng))
                heads[br] = f"{br}{k}{j}"
    nodes.append(helper.make_node("Concat", [heads["a"], heads["b"]], ["y"], name="concat", axis=1))
    return _model(nodes, inits, (1, narrow, hw, hw))


def inception(cin=32, hw=16):
    """Inception-v1's block 3a at a quarter of the channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1."""
    rng, inits = np.random.default_rng(1), {}
    nodes = [
        _conv("x", "b1", cin, 16, 1, inits, rng), _conv("x", "b2a", cin, 24, 1, inits, rng),
        _conv("x", "b3a", cin, 4, 1, inits, rng),
        helper.make_node("MaxPool", ["x"], ["b4a"], name="b4a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        _conv("b2a", "b2", 24, 32, 3, inits, rng), _conv("b3a", "b3", 4, 8, 5, inits, rng),
        _conv("b4a", "b4", cin, 8, 1, inits, rng),
        helper.make_node("Concat", ["b1", "b2", "b3", "b4"], ["y"], name="concat", axis=1),
    ]  # fmt: skip
    return _model(nodes, inits, (1, cin, hw, hw))


def synthetic_program(calls=300, seed=0) -> Program:
    """Blocks of 2-4 parallel branches (1-4 calls each, random sizes) joined by one call: planning input only."""
    rng = np.random.default_rng(seed)
    sizes, prev, body = {"in": 64}, "in", []
    while len(body) < calls - 1:
        heads = []
        for b in range(int(rng.integers(2, 5))):
            head = prev
            for _ in range(int(rng.integers(1, 5))):
                name = f"t{len(body)}"
                sizes[name] = int(rng.integers(1, 64)) * 16
                body.append(KernelCall("k", "", name, {}, {}, (head,), (name,), int(rng.integers(0, 3)) * 32))
                head = name
            heads.append(head)
        prev = f"t{len(body)}"
        sizes[prev] = int(rng.integers(1, 64)) * 16
        body.append(KernelCall("k", "", prev, {}, {}, tuple(heads), (prev,)))
    out = [*body, KernelCall("k", "", "out", {}, {}, (prev,), ("out",))]
    sizes["out"] = 16
    return Program(None, tuple(out), sizes, {}, ("in",), ("out",))


def without_overlap(program: Program) -> Program:
    """The program with only elementwise calls in place: the planner before overlapping execution."""
    calls = tuple(replace(c, overlap_gap=None) if "conv" in c.kernel or "pool" in c.kernel else c for c in program.calls)
    return replace(program, calls=calls)


def _row(name: str, overlapping: Program, tflm) -> str:
    start = time.perf_counter()
    overlapped = plan(overlapping)[1]
    overlap_ms = (time.perf_counter() - start) * 1e3
    program = without_overlap(overlapping)
    given = plan_memory(program)
    start = time.perf_counter()
    moved, best = plan(program)
    ms = (time.perf_counter() - start) * 1e3
    cells = []
    for s in STRATEGIES:
        a, b = given.strategy_sizes.get(s), best.strategy_sizes.get(s)
        cells.append("–" if a is None else f"{a:,}" if not best.reordered else f"{a:,} → {b:,}")
    bound = f"{given.lower_bound:,}" + (f" → {best.lower_bound:,}" if best.reordered else "")
    return (
        f"| {name} | {len(program.calls)} | {bound} | {tflm} | {' | '.join(cells)} | {given.size:,} | {best.size:,} "
        f"({best.strategy}) | {ms:.0f} | {overlapped.size:,} | {overlapped.lower_bound:,} | {overlap_ms:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    root = Path(__file__).resolve().parent / "mlperf_tiny"
    summary = json.loads((root / "summary.json").read_text())
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"mcucompile {mcucompile.__version__}\n")
    print(f"| model | calls | lower bound (B) | TFLite Micro arena (B) | {' | '.join(STRATEGIES)} "
          "| arena as lowered (B) | arena reordered (B) | planning (ms) | with overlapping in-place (B) "
          "| its lower bound (B) | planning (ms) |")
    print("|---|---:|---:|---:|" + "---:|" * len(STRATEGIES) + "---:|---:|---:|---:|---:|---:|")
    for name in ("kws", "vww", "ic", "ad"):
        cm = mcucompile.compile(root / f"{name}.onnx", name=name)
        print(_row(name, lower(cm.graph), f"{summary[name]['tflm_min_arena_bytes_x86_64']:,}"))
    rng = np.random.default_rng(0)
    branchy = (("two branches", two_branches(), (1, 8, 24, 24)), ("inception", inception(), (1, 32, 16, 16)))
    for name, model, shape in branchy:
        cm = mcucompile.compile(model, calibration=rng.standard_normal((8, *shape)).astype(np.float32))
        print(_row(name, lower(cm.graph), "–"))
    for family in zoo.FAMILIES:  # the op-coverage zoo, at its smaller input size
        size = zoo.sizes(family)[0]
        calib = zoo.samples(family, size, 8, seed=1)
        cm = mcucompile.compile(zoo.export(family, 17, size), calibration=calib, bias_correction=False)
        shape = "x".join(map(str, zoo.input_shape(family, size)[1:]))
        print(_row(f"zoo {family} {shape}", lower(cm.graph), "–"))
    print(_row("synthetic, 300 calls", synthetic_program(), "–"))


if __name__ == "__main__":
    main()
