"""int8 Graph -> Program: the kernel calls in execution order, views as aliases, and the caller's buffers.

The caller's input and output buffers are in ONNX element order (NCHW for images). Where that differs from
the internal NHWC layout, a transpose call copies between the caller's buffer and the arena; otherwise
kernels read the input buffer and write the output buffer directly, which costs no arena bytes.

A Concat input that shares the output's quantization and is written by a kernel that can store its pixels a
stride apart (or by any kernel when the concat has one outer index) can become a slice of the concat output: its
producer writes there directly, and that part of the copy disappears (the whole call when every part does).
That keeps the whole output live from its first producer on, so memory.plan decides per concat
(concats_in_place).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import numpy as np

from .ir import CompileError, Graph, KernelCall
from .layout import NCHW_TO_NHWC, NHWC_TO_NCHW, is_row_major, physical_shape, same_bytes
from .ops import registry
from .ops.reshape import moves_bytes, transpose_call


@dataclass(frozen=True, eq=False)
class Program:
    graph: Graph  # the int8 graph (shapes, quantization of the graph inputs/outputs)
    calls: tuple[KernelCall, ...]
    sizes: dict[str, int]  # bytes of every buffer the calls name (int8: one byte an element)
    aliases: dict[str, str] = field(default_factory=dict)  # view -> the tensor whose bytes it reuses
    user_inputs: tuple[str, ...] = ()  # per graph input: the buffer name bound to the caller's input pointer
    user_outputs: tuple[str, ...] = ()  # per graph output: the buffer name bound to the caller's output pointer
    # A view holding only part of the bytes it aliases (a concat input written in place) -> its first byte there;
    # its producer's output_stride says where the rest of its bytes are.
    slices: dict[str, int] = field(default_factory=dict)

    def root(self, name: str) -> str:
        return _root(self.aliases, name)

    def base(self, name: str) -> tuple[str, int]:
        """(root, byte offset of `name`'s first byte in it)."""
        offset = 0
        while name in self.aliases:
            offset += self.slices.get(name, 0)
            name = self.aliases[name]
        return name, offset

    def is_slice(self, name: str) -> bool:
        """Whether `name` holds only part of its root's bytes (its writer must not overlap anything in place)."""
        while name in self.aliases:
            if name in self.slices:
                return True
            name = self.aliases[name]
        return False


def lower(g: Graph) -> Program:
    calls: list[KernelCall] = []
    aliases: dict[str, str] = {}
    sizes = {name: t.size for name, t in g.tensors.items() if t.data is None}
    user_inputs = []
    for name in g.inputs:
        shape = g.tensors[name].shape
        if is_row_major(shape):
            user_inputs.append(name)
            continue
        user = f"{name}::user"
        sizes[user] = sizes[name]
        calls.append(transpose_call(f"{name}_to_nhwc", user, name, shape, NCHW_TO_NHWC))
        user_inputs.append(user)
    for node in g.nodes:
        op = registry.get(node.op, node.name)
        if op.is_view:
            calls.extend(_view(node.name, node.inputs[0], node.outputs[0], g, aliases, sizes))
        elif op.lower is None:
            raise CompileError(f"internal: node '{node.name}' ({node.op}) should have been removed by a pass")
        else:
            calls.extend(op.lower(node, g))
    calls = _elide_copies(calls, aliases, g.outputs)
    user_outputs = _bind_outputs(g, calls, aliases, sizes, user_inputs)
    return Program(g, tuple(calls), sizes, aliases, tuple(user_inputs), tuple(user_outputs))


def _view(node: str, src: str, dst: str, g: Graph, aliases: dict, sizes: dict) -> list[KernelCall]:
    """A reshape: an alias when the bytes already sit in the right order, else a copy through row-major order."""
    src_shape, dst_shape = g.tensors[src].shape, g.tensors[dst].shape
    if same_bytes(src_shape, dst_shape):
        aliases[dst] = src
        return []
    calls, current = [], src
    if len(src_shape) == 4:
        row_major = f"{dst}::row_major"
        sizes[row_major] = sizes[dst]
        calls.append(transpose_call(f"{node}_to_nchw", src, row_major, physical_shape(src_shape), NHWC_TO_NCHW))
        current = row_major
    if len(dst_shape) == 4:
        calls.append(transpose_call(f"{node}_to_nhwc", current, dst, dst_shape, NCHW_TO_NHWC))
    else:
        aliases[dst] = current
    return calls


def _bind_outputs(g: Graph, calls: list, aliases: dict, sizes: dict, user_inputs: list) -> list[str]:
    """Per graph output, the buffer the caller's output pointer stands for; copies where it cannot be the tensor."""
    user_outputs: list[str] = []
    taken = {_root(aliases, t) for t in user_inputs}
    for name in g.outputs:
        shape = g.tensors[name].shape
        root = _root(aliases, name)
        if not is_row_major(shape):
            user = f"{name}::user"
            calls.append(transpose_call(f"{name}_to_nchw", name, user, physical_shape(shape), NHWC_TO_NCHW))
        elif root in taken or g.tensors.get(root) is not None and g.tensors[root].data is not None:
            user = f"{name}::user"  # the output is an input or another output: copy it
            calls.append(transpose_call(f"{name}_copy", name, user, (sizes[name],), (0,)))
        else:
            user = root
        sizes[user] = sizes[name]
        taken.add(user)
        user_outputs.append(user)
    return user_outputs


def _elide_copies(calls: list[KernelCall], aliases: dict, outputs: tuple[str, ...]) -> list[KernelCall]:
    """Merge back-to-back transposes into one, and drop those that move no bytes (their output aliases the input).

    E.g. an NHWC image input that the model transposes to NCHW needs no copy at all in NHWC memory.
    """
    calls = list(calls)
    i = 0
    while i < len(calls):
        c = calls[i]
        if c.kernel != "mcu_transpose_s8":
            i += 1
            continue
        readers = [k for k, d in enumerate(calls) if c.outputs[0] in d.inputs]
        d = calls[readers[0]] if len(readers) == 1 else None
        if (
            d is not None
            and d.kernel == "mcu_transpose_s8"
            and d.params["dims"] == c.params["out_dims"]  # not across a reshape
            and c.outputs[0] not in outputs
            and c.outputs[0] not in aliases.values()
        ):
            perm = tuple(c.params["axes"][p] for p in d.params["axes"])
            calls[readers[0]] = transpose_call(d.node, c.inputs[0], d.outputs[0], c.params["dims"], perm)
            del calls[i]
            continue
        if not moves_bytes(c.params["dims"], c.params["axes"]):
            aliases[c.outputs[0]] = c.inputs[0]
            del calls[i]
            continue
        i += 1
    return calls


def in_place_concats(program: Program) -> tuple[str, ...]:
    """The nodes of the concat calls with at least one part its producer can write in place."""
    return tuple(
        c.node
        for c in program.calls
        if c.kernel == "mcu_concat_s8" and any(_in_place_part(program, c, k) for k in range(len(c.inputs)))
    )


def concats_in_place(program: Program, nodes: Collection[str]) -> tuple[Program, tuple[int, ...]]:
    """The program with every qualifying part of the concat calls of `nodes` written in place by its producer,
    and per call the index of the call of `program` it comes from (a concat left with no part is removed)."""
    calls = list(program.calls)
    aliases, slices = dict(program.aliases), dict(program.slices)
    for at, c in enumerate(program.calls):
        if c.kernel != "mcu_concat_s8" or c.node not in nodes:
            continue
        p, kept = c.params, []
        for k, (part, name) in enumerate(zip(p["parts"], c.inputs)):
            if not _in_place_part(program, c, k):
                kept.append(k)
                continue
            i, producer = next((i, d) for i, d in enumerate(program.calls) if name in d.outputs)
            if p["outer"] > 1:
                calls[i] = replace(producer, params={**producer.params, "output_stride": p["out_inner"]})
            aliases[name], slices[name] = c.outputs[0], part["offset"]
        parts = tuple(p["parts"][k] for k in kept)
        calls[at] = replace(c, params={**p, "count": len(kept), "parts": parts}, inputs=tuple(c.inputs[k] for k in kept))
    index = tuple(i for i, c in enumerate(calls) if c.kernel != "mcu_concat_s8" or c.params["count"])
    moved = replace(program, calls=tuple(calls[i] for i in index), aliases=aliases, slices=slices)
    return moved, index


def _in_place_part(program: Program, concat: KernelCall, k: int) -> bool:
    """Whether part k of a concat call can be written in place: copied as is (same quantization), its input a
    plain tensor (no view of or into it, not a graph output) that one single-output call writes and only this
    concat reads, once; and that call can store it there: with one outer index any kernel (the slice is
    contiguous), otherwise a kernel with an output_stride whose pixels are the concat's outer indices and whose
    channels are the part's run."""
    p, name = concat.params, concat.inputs[k]
    writers = [d for d in program.calls if name in d.outputs]
    readers = [d for d in program.calls if name in d.inputs]
    return (
        bool(p["parts"][k]["copy"])
        and len(writers) == 1
        and writers[0].outputs == (name,)
        and readers == [concat]
        and concat.inputs.count(name) == 1
        and name not in program.aliases
        and name not in program.aliases.values()
        and name not in program.graph.outputs
        and (p["outer"] == 1 or _strides_to(writers[0], p["outer"], p["parts"][k]["inner"]))
    )


def _strides_to(call: KernelCall, pixels: int, channels: int) -> bool:
    """Whether the call can write `pixels` pixels of `channels` channels each a stride apart (a dense one now)."""
    dims = call.params.get("out_dims")
    return (
        call.params.get("output_stride") == 0
        and dims is not None
        and int(np.prod(dims[:3])) == pixels
        and dims[3] == channels
    )


def _root(aliases: dict, name: str) -> str:
    while name in aliases:
        name = aliases[name]
    return name
