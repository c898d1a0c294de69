"""Model statistics for the compile summary: operators, parameters, weight bytes, MACs, and what dead-channel
elimination removed (with the unstructured sparsity left)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cformat import printable
from .ir import Graph, KernelCall, Node
from .layout import kernel_dims
from .lower import Program
from .ops import registry
from .ops.conv_transpose import conv_transpose_macs, geometry


@dataclass(frozen=True)
class ModelStats:
    ops: int  # graph nodes after the passes
    kernels: int  # kernel calls in the generated C
    params: int  # weight and bias elements
    weight_bytes: int  # bytes of every constant array in flash (weights, biases, multipliers, tables)
    macs: int  # multiply-accumulates of one inference


def call_macs(call: KernelCall) -> int:
    p = call.params
    if call.kernel in ("mcu_conv_s8", "mcu_conv_s8_fast"):
        o, kh, kw, c = p["filter_dims"]
        return int(np.prod(p["out_dims"])) * kh * kw * c
    if call.kernel in ("mcu_depthwise_conv_s8", "mcu_depthwise_conv_3x3_s8_fast"):
        _, kh, kw, _ = p["filter_dims"]
        return int(np.prod(p["out_dims"])) * kh * kw
    if call.kernel == "mcu_conv_transpose_s8":
        return conv_transpose_macs(p)
    if call.kernel == "mcu_fully_connected_s8":
        return p["rows"] * p["depth"] * p["out_features"]
    return 0


# Beyond what microcontrollers have (the largest: about 2 MiB of flash, 1 MiB of RAM): compile, but say so.
LARGE_FLASH_BYTES, LARGE_ARENA_BYTES = 2 << 20, 1 << 20


def size_warning(stats: ModelStats, arena_bytes: int) -> str | None:
    """One line when the constants or the arena exceed what any microcontroller has, else None."""
    if stats.weight_bytes <= LARGE_FLASH_BYTES and arena_bytes <= LARGE_ARENA_BYTES:
        return None
    return (f"note: {stats.weight_bytes:,} bytes of constants and a {arena_bytes:,}-byte arena exceed what "
            f"microcontrollers have (at most about {LARGE_FLASH_BYTES >> 20} MiB of flash and {LARGE_ARENA_BYTES >> 20} "
            "MiB of RAM); the C compiles, but a smaller model or input is needed on a device")  # fmt: skip


def call_params(call: KernelCall) -> int:
    """Weight and bias elements of a call (mcu_conv_s8_fast's weights come padded to chunks of 4 depths)."""
    if call.kernel == "mcu_conv_s8_fast":
        return int(np.prod(call.params["filter_dims"])) + int(call.arrays["bias"].size)
    return sum(int(a.size) for k, a in call.arrays.items() if k in ("weights", "bias") and a is not None)


def model_stats(program: Program) -> ModelStats:
    params = sum(call_params(c) for c in program.calls)
    weight_bytes = sum(int(a.nbytes) for c in program.calls for a in c.arrays.values() if a is not None)
    return ModelStats(
        ops=len(program.graph.nodes),
        kernels=len(program.calls),
        params=params,
        weight_bytes=weight_bytes,
        macs=sum(call_macs(c) for c in program.calls),
    )


# The summary mentions sparsity from this fraction of zero weights on (unstructured pruning leaves many).
NOTABLE_SPARSITY = 0.1


@dataclass(frozen=True)
class LayerPruning:
    """One weighted layer (Conv, ConvTranspose, Gemm) before and after dead-channel elimination."""

    name: str  # the node's name in the model (untrusted text: print it through cformat.printable)
    op: str
    channels_before: int  # output channels
    channels_after: int
    params_removed: int  # weights and biases
    macs_removed: int
    bytes_removed: int  # int8 weights and int32 biases
    weights_after: int
    zero_fraction: float  # of the weights left that are exactly zero: unstructured sparsity


@dataclass(frozen=True)
class PruningReport:
    """Totals over `layers`. A layer whose inputs were removed counts its removed weights, not channels."""

    channels_removed: int
    params_removed: int
    macs_removed: int
    bytes_removed: int
    layers: tuple[LayerPruning, ...]

    @property
    def zero_fraction(self) -> float:
        weights = sum(r.weights_after for r in self.layers)
        return sum(r.zero_fraction * r.weights_after for r in self.layers) / weights if weights else 0.0

    def summary_lines(self) -> list[str]:
        """For CompiledModel.summary: a line when channels were removed, one when many weights are zero."""
        lines = []
        if self.params_removed:
            pruned = sum(r.channels_before != r.channels_after for r in self.layers)
            lines.append(
                f"pruned     {self.channels_removed:,} dead output channels of {pruned} layer(s): "
                f"{self.params_removed:,} params, {self.macs_removed:,} MACs, {self.bytes_removed:,} bytes removed"
            )
        if self.zero_fraction >= NOTABLE_SPARSITY:
            top = max(self.layers, key=lambda r: r.zero_fraction)
            lines.append(
                f"sparsity   {self.zero_fraction * 100:.1f} % of the weights are zero "
                f"(most in {printable(top.name, limit=40)}: {top.zero_fraction * 100:.1f} %)"
            )
        return lines


def node_macs(node: Node, g: Graph) -> int:
    """Multiply-accumulates of a weighted graph node, counted as call_macs counts its kernel's."""
    x, w, y = (g.tensors[t] for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    if node.op == "ConvTranspose":
        geo = geometry(node, x.shape, w.shape)
        c_in, c_out_group, kh, kw = w.shape
        group = int(node.attr("group", 1))
        params = dict(
            in_dims=kernel_dims(x.shape),
            filter_dims=(c_out_group * group, kh, kw, c_in // group),
            out_dims=kernel_dims(y.shape),
            stride=geo.strides,
            dilation=geo.dilations,
            padding=geo.pads[:2],
        )
        return conv_transpose_macs(params)
    return y.size * int(np.prod(w.shape[1:]))  # Conv: taps x channels per group; Gemm: K per output


def pruning_report(before: Graph, after: Graph) -> PruningReport:
    """Compare the weighted nodes of the graph dead-channel elimination received and the one it returned."""
    old = {n.name: n for n in before.nodes}
    rows = []
    for node in after.nodes:
        op = registry.get(node.op) if registry.is_supported(node.op) else None
        if op is None or not op.weight_axis or after.const(node.inputs[1]) is None or node.name not in old:
            continue
        axis = op.weight_axis[1]  # output channels
        w0, w1 = before.const(old[node.name].inputs[1]), after.const(node.inputs[1])
        c0, c1 = w0.shape[axis], w1.shape[axis]
        weights_removed = w0.size - w1.size
        rows.append(
            LayerPruning(
                name=node.name,
                op=node.op,
                channels_before=c0,
                channels_after=c1,
                params_removed=weights_removed + c0 - c1,  # a bias value per output channel, as in model_stats
                macs_removed=node_macs(old[node.name], before) - node_macs(node, after),
                bytes_removed=weights_removed + 4 * (c0 - c1),
                weights_after=int(w1.size),
                zero_fraction=float(np.mean(w1 == 0)) if w1.size else 0.0,
            )
        )
    return PruningReport(
        channels_removed=sum(r.channels_before - r.channels_after for r in rows),
        params_removed=sum(r.params_removed for r in rows),
        macs_removed=sum(r.macs_removed for r in rows),
        bytes_removed=sum(r.bytes_removed for r in rows),
        layers=tuple(rows),
    )
