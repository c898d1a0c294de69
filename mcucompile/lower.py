"""int8 Graph -> Program: the kernel calls in execution order, views as aliases, and the caller's buffers.

The caller's input and output buffers are in ONNX element order (NCHW for images). Where that differs from
the internal NHWC layout, a transpose call copies between the caller's buffer and the arena; otherwise
kernels read the input buffer and write the output buffer directly, which costs no arena bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def root(self, name: str) -> str:
        return _root(self.aliases, name)


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
            and tuple(d.params["in_dims"]) == tuple(c.params["out_dims"])  # not across a reshape
            and c.outputs[0] not in outputs
            and c.outputs[0] not in aliases.values()
        ):
            perm = tuple(c.params["perm"][p] for p in d.params["perm"])
            calls[readers[0]] = transpose_call(d.node, c.inputs[0], d.outputs[0], c.params["in_dims"], perm)
            del calls[i]
            continue
        if not moves_bytes(c.params["in_dims"], c.params["perm"]):
            aliases[c.outputs[0]] = c.inputs[0]
            del calls[i]
            continue
        i += 1
    return calls


def _root(aliases: dict, name: str) -> str:
    while name in aliases:
        name = aliases[name]
    return name
