"""The intermediate representation: tensors, nodes and graphs (graph level) and kernel calls (C level).

Graph-level values are frozen; a pass returns a new Graph. Tensor shapes are in ONNX (NCHW) order
throughout; the physical layout (NHWC for rank-4 activations) is decided only when lowering to kernel calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

Shape = tuple[int, ...]


class CompileError(Exception):
    """A model the compiler cannot handle; the message names the node or tensor and the fix."""


@dataclass(frozen=True, eq=False)  # eq=False: holds ndarrays
class QuantParams:
    """real = scale * (q - zero_point). Per-channel along `axis` when axis is not None."""

    scale: np.ndarray  # float32, shape (1,) or (C,)
    zero_point: np.ndarray  # int32, same shape as scale
    axis: int | None = None

    @staticmethod
    def per_tensor(scale: float, zero_point: int) -> QuantParams:
        return QuantParams(np.array([scale], np.float32), np.array([zero_point], np.int32))

    @property
    def s(self) -> float:
        """The per-tensor scale as a Python float (of the float32 value)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


@dataclass(frozen=True, eq=False)
class Tensor:
    name: str
    shape: Shape
    dtype: str  # "float32" | "int8" | "int32" | "int64"
    data: np.ndarray | None = None  # constants only (weights, bias)
    quant: QuantParams | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class Node:
    op: str  # ONNX op_type ("Conv"), or a canonical op a pass introduced
    name: str  # unique; passes address nodes by name
    inputs: tuple[str, ...]  # tensor names; "" = omitted optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)  # ONNX attrs + "activation" after fusion

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def with_attrs(self, **changes: Any) -> Node:
        return replace(self, attrs={**self.attrs, **changes})


@dataclass(frozen=True, eq=False)
class Graph:
    nodes: tuple[Node, ...]  # invariant: topologically sorted (verify() checks it)
    tensors: Mapping[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    name: str = "model"

    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def const(self, tensor: str) -> np.ndarray | None:
        t = self.tensors.get(tensor) if tensor else None
        return None if t is None else t.data

    def is_const(self, tensor: str) -> bool:
        return self.const(tensor) is not None

    def rewrite(
        self,
        nodes: Iterable[Node] | None = None,
        tensors: Mapping[str, Tensor] | None = None,
    ) -> Graph:
        """A new graph with `nodes` (default: the same), `tensors` added or replaced, sorted and pruned.

        Nodes that no graph output depends on are dropped, then tensors that no node or graph
        input/output names.
        """
        all_tensors = {**self.tensors, **(tensors or {})}
        kept = _live_nodes(tuple(self.nodes if nodes is None else nodes), self.outputs)
        ordered = _toposort(kept, all_tensors)
        used = set(self.inputs) | set(self.outputs)
        for n in ordered:
            used.update(t for t in n.inputs + n.outputs if t)
        return replace(self, nodes=ordered, tensors={k: v for k, v in all_tensors.items() if k in used})

    def verify(self) -> None:
        """Raise CompileError if a node reads a tensor nothing defines, or the order is not topological."""
        defined = set(self.inputs) | {k for k, t in self.tensors.items() if t.data is not None}
        for n in self.nodes:
            for t in n.inputs:
                if t and t not in defined:
                    raise CompileError(f"internal: node '{n.name}' ({n.op}) reads '{t}' before it is defined")
                if t and t not in self.tensors:
                    raise CompileError(f"internal: node '{n.name}' ({n.op}) reads unknown tensor '{t}'")
            for t in n.outputs:
                if t and t not in self.tensors:  # "": an omitted optional output
                    raise CompileError(f"internal: node '{n.name}' ({n.op}) writes unknown tensor '{t}'")
            defined.update(n.outputs)
        for t in self.outputs:
            if t not in defined:
                raise CompileError(f"internal: graph output '{t}' is never computed")


def _live_nodes(nodes: tuple[Node, ...], outputs: tuple[str, ...]) -> list[Node]:
    producer = {t: n for n in nodes for t in n.outputs}
    live: set[str] = set()
    stack = [producer[t] for t in outputs if t in producer]
    while stack:
        n = stack.pop()
        if n.name in live:
            continue
        live.add(n.name)
        stack.extend(producer[t] for t in n.inputs if t in producer)
    return [n for n in nodes if n.name in live]


def _toposort(nodes: list[Node], tensors: Mapping[str, Tensor]) -> tuple[Node, ...]:
    """Stable topological sort: keeps the given order wherever it is already valid."""
    produced_by = {t: n.name for n in nodes for t in n.outputs}
    done: set[str] = set()
    ordered: list[Node] = []
    pending = list(nodes)
    while pending:
        for i, n in enumerate(pending):
            if all(produced_by.get(t) in done or t not in produced_by for t in n.inputs if t):
                ordered.append(n)
                done.add(n.name)
                del pending[i]
                break
        else:
            raise CompileError(f"the graph has a cycle through node '{pending[0].name}'")
    return tuple(ordered)


@dataclass(frozen=True, eq=False)
class KernelCall:
    """One C kernel call with everything resolved: the kernel-level IR."""

    kernel: str  # "mcu_conv_s8"
    template: str  # "kernels/conv_s8.c.j2"
    node: str  # source node name -> C symbol prefix
    params: Mapping[str, Any]  # ints / int tuples only
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)  # multipliers, packed weights, bias
    inputs: tuple[str, ...] = ()  # tensor names; memory.py maps them to arena offsets
    outputs: tuple[str, ...] = ()
    scratch_bytes: int = 0  # = mcu_<kernel>_get_buffer_size(...), computed in Python
    # Smallest (input 0 offset - output offset) in bytes at which the kernel, in its own loop order, never writes
    # over input bytes it has yet to read (0: elementwise in place; may be negative); None: no overlap allowed.
    overlap_gap: int | None = None
