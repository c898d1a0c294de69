"""Is this a well-formed ONNX model of a size we can hold? Checked before shape inference, folding or any
allocation the model's own numbers decide, so that a malformed or hostile file gets one accurate line (naming
the file, node or tensor) instead of a misleading later error, a hang or an exhausted machine.

One owner for these questions: the file (regular, non-empty), the graph's structure (nodes, outputs, who writes
and who reads each tensor, cycles) and the resource limits (tensor sizes, node and input counts).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx

from .cformat import printable
from .ir import CompileError


@dataclass(frozen=True)
class Limits:
    """Generous bounds no microcontroller model comes near; past them the model is refused before allocation."""

    max_tensor_bytes: int = 256 << 20  # one tensor (input, constant, folded result, calibration set)
    max_total_bytes: int = 1 << 30  # all constants together
    max_nodes: int = 100_000
    max_node_inputs: int = 4_096  # e.g. one Concat


LIMITS = Limits()


def check_file(path: str) -> None:
    """A readable regular file that is not empty (a directory, FIFO or device would block or mislead)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CompileError(f"{path}: no such file; give the path of an .onnx model") from None
    except OSError as exc:
        raise CompileError(f"{path}: cannot be read ({exc.strerror}); give the path of an .onnx model") from None
    if stat.S_ISDIR(info.st_mode):
        raise CompileError(f"{path}: is a directory; give the path of an .onnx model file")
    if not stat.S_ISREG(info.st_mode):
        raise CompileError(f"{path}: is not a regular file (a pipe or device); give the path of an .onnx model file")
    if info.st_size == 0:
        raise CompileError(f"{path}: is empty, not an ONNX model; export the model again")


def element_type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"unknown ({elem_type})"


def tensor_bytes(shape: Iterable[int], itemsize: int) -> int:
    """The size in bytes, in Python integers (no overflow whatever the dims)."""
    n = itemsize
    for d in shape:
        n *= max(int(d), 0)
    return n


def check_size(what: str, shape: Iterable[int], itemsize: int, limits: Limits = LIMITS) -> None:
    """Refuse before allocating a tensor larger than the limit."""
    shape = tuple(int(d) for d in shape)
    size = tensor_bytes(shape, itemsize)
    if size > limits.max_tensor_bytes:
        raise CompileError(
            f"{what} of shape {shape} is too large: it would take {size:,} bytes, more than the "
            f"{limits.max_tensor_bytes:,} allowed for one tensor (check the shapes, or give smaller ones with "
            "--input-shape)"
        )


def check_graph(model: onnx.ModelProto, limits: Limits = LIMITS) -> None:
    """The graph's structure, with the first problem found as one CompileError."""
    g = model.graph
    if len(g.node) > limits.max_nodes:
        raise CompileError(f"the graph has {len(g.node):,} nodes, more than the {limits.max_nodes:,} allowed")
    if not g.output:
        raise CompileError("the graph has no outputs; export the model with its output tensors")
    if not g.node:
        raise CompileError("the graph has no nodes; there is nothing to compile")
    _check_output_names(g)
    _check_sparse_and_sizes(g, limits)
    provided = {i.name for i in g.input} | {i.name for i in g.initializer}
    writer: dict[str, int] = {}  # tensor -> index of the node writing it
    for index, node in enumerate(g.node):
        name = node_name(node, index)
        if len(node.input) > limits.max_node_inputs:
            raise CompileError(f"node '{name}' ({node.op_type}) has {len(node.input):,} inputs, more than the "
                               f"{limits.max_node_inputs:,} allowed")  # fmt: skip
        for out in node.output:
            if not out:
                continue
            if out in writer:
                first = node_name(g.node[writer[out]], writer[out])
                raise CompileError(f"tensor '{printable(out)}' is written by two nodes, '{first}' and "
                                   f"'{name}'; every tensor needs exactly one producer")  # fmt: skip
            if out in provided:
                raise CompileError(f"node '{name}' ({node.op_type}) writes '{printable(out)}', which is already a "
                                   "graph input or initializer")  # fmt: skip
            writer[out] = index
    for index, node in enumerate(g.node):
        for t in node.input:
            if t and t not in provided and t not in writer:
                raise CompileError(
                    f"node '{node_name(node, index)}' ({node.op_type}) reads tensor '{printable(t)}', which no node, "
                    "graph input or initializer provides (a missing initializer?)"
                )
    for out in g.output:
        if out.name not in provided and out.name not in writer:
            raise CompileError(f"graph output '{printable(out.name)}' is not computed by any node")
    _check_acyclic(g, writer)


def node_name(node: onnx.NodeProto, index: int) -> str:
    """The node's name for messages (the import's own rule for unnamed nodes)."""
    return printable(node.name) if node.name else f"{node.op_type}_{index}"


def _check_output_names(g: onnx.GraphProto) -> None:
    seen: set[str] = set()
    for out in g.output:
        if out.name in seen:
            raise CompileError(f"graph output '{printable(out.name)}' is listed twice; list each output once")
        seen.add(out.name)


def _check_sparse_and_sizes(g: onnx.GraphProto, limits: Limits) -> None:
    if g.sparse_initializer:
        s = g.sparse_initializer[0]
        raise CompileError(
            f"initializer '{printable(s.values.name)}' is sparse ({len(g.sparse_initializer)} sparse initializer(s)); "
            "sparse initializers are not supported: store the weights dense and export again"
        )
    total = 0
    for init in g.initializer:
        itemsize = _itemsize(init.data_type)
        check_size(f"initializer '{printable(init.name)}'", init.dims, itemsize, limits)
        total += tensor_bytes(init.dims, itemsize)
    if total > limits.max_total_bytes:
        raise CompileError(f"the initializers take {total:,} bytes, more than the {limits.max_total_bytes:,} allowed")


def _itemsize(elem_type: int) -> int:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize
    except Exception:
        return 1  # an exotic type: counted per element here, refused by name at import


def _check_acyclic(g: onnx.GraphProto, writer: dict[str, int]) -> None:
    """Kahn's algorithm over node dependencies, O(nodes + edges); names a node on a cycle if there is one."""
    waiting = [0] * len(g.node)
    readers: list[list[int]] = [[] for _ in g.node]
    for i, node in enumerate(g.node):
        for p in {writer[t] for t in node.input if t in writer}:
            waiting[i] += 1
            readers[p].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
    if done < len(g.node):
        stuck = next(i for i, w in enumerate(waiting) if w > 0)
        raise CompileError(f"the graph has a cycle through node '{node_name(g.node[stuck], stuck)}' "
                           f"({g.node[stuck].op_type}); an inference graph must be acyclic")  # fmt: skip
