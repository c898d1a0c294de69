"""Dead-channel elimination: channels nothing needs are removed, with the weights that make and read them.

A structurally pruned model (filters zeroed by a mask, still present) computes a constant in every channel whose
filter is all zero: act(bias) after a Conv/Gemm/ConvTranspose. A consumer stops needing such a channel where
folding c * (its weights) into the consumer's bias is exact:
- a Gemm, or a Conv without padding (1x1, or any kernel whose taps all read the image): every output adds c * w;
- any Conv/Gemm/ConvTranspose when c == 0 (its zero padding reads 0 too).
A padded Conv reading a non-zero constant sees a different value at the border, so it keeps the channel. An input
channel that a consumer's kept rows weight with zeros only is not needed either.

Channels are followed through ops that keep them apart: elementwise ops and pooling/spatial reductions (channel
k from channel k), depthwise convolutions (each multiplier group from one input channel; constant out of a
constant input where no padding or c == 0 makes the border differ), Concat, Split, Slice and reshapes that keep
whole channels. Channels tied by such an op are kept or removed together (one class of a union-find). A class is
kept when it holds a channel of a graph input or output, of an op the pass does not follow, or one a kept
weighted output needs. Every tensor keeps at least one channel. A removed channel takes its weight rows, bias
entries and per-channel QDQ scales with it; the kept rows of each consumer absorb the constants it folds.

In a QDQ model a constant is the value the model's own quantization of its tensor gives it, as onnxruntime
computes it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from ..ir import Graph, Node, QuantParams, Tensor
from ..ops import registry
from ..ops.conv import conv_window
from ..ops.lut import is_pointwise
from ..ops.reduce import reduced_axes

# Ops whose output channel k is a function of channel k of each operand (besides the pointwise ones).
_CHANNELWISE = frozenset(
    {"PointwiseLut", "Requantize", "MaxPool", "AveragePool", "GlobalAveragePool"}
    | {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"}
)
_VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
_MOVES = frozenset({"Concat", "Split", "Slice"}) | _VIEWS

Link = tuple[str, int, str, int]  # (output, channel, input, channel): kept or removed together
Constants = dict[str, dict[int, float]]  # tensor -> {channel: the value it holds everywhere}


@dataclass(frozen=True)
class _Rule:
    """How a node treats channels. kind: "weighted" (reads every input channel through its weights),
    "depthwise", "channelwise", "move" (each follows `links`), or None (not followed: all its channels stay)."""

    kind: str | None
    links: tuple[Link, ...] = ()


def eliminate_dead_channels(g: Graph) -> Graph:
    """Fires where some channel is needed by nothing kept; otherwise returns `g` itself."""
    rules = {n.name: _rule(n, g) for n in g.nodes}
    consts = _constant_channels(g, rules)
    keep = _kept_channels(g, rules, consts)
    if all(k.all() for k in keep.values()):
        return g
    return _remove(g, rules, keep, consts)


# --- which ops the pass follows ----------------------------------------------------------------------------------


def _tracked(g: Graph, name: str) -> bool:
    """Activations of rank 2 ([N, C]) or 4 ([N, C, H, W]): axis 1 holds the channels."""
    t = g.tensors[name]
    return t.data is None and len(t.shape) in (2, 4)


def _rule(node: Node, g: Graph) -> _Rule:
    if not node.outputs or not all(_tracked(g, t) for t in node.outputs if t):
        return _Rule(None)
    if node.op in ("Conv", "ConvTranspose", "Gemm"):
        return _weight_rule(node, g)
    if is_pointwise(node.op) or node.op in _CHANNELWISE:
        links = _channelwise_links(node, g)
        return _Rule(None) if links is None else _Rule("channelwise", links)
    if node.op in _MOVES:
        links = _moved_links(node, g)
        return _Rule(None) if links is None else _Rule("move", links)
    return _Rule(None)


def _weight_rule(node: Node, g: Graph) -> _Rule:
    x, y = node.inputs[0], node.outputs[0]
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    if not _tracked(g, x) or g.const(node.inputs[1]) is None or (bias and g.const(bias) is None):
        return _Rule(None)
    group, c_in = int(node.attr("group", 1)), g.tensors[x].shape[1]
    if node.op == "Gemm" and node.attr("transB", 0) != 1:
        return _Rule(None)  # canonicalize gives every constant-weight Gemm W[O, K]
    if group == 1:
        return _Rule("weighted")
    if node.op == "Conv" and group == c_in:
        multiplier = g.tensors[y].shape[1] // c_in
        return _Rule("depthwise", tuple((y, o, x, o // multiplier) for o in range(g.tensors[y].shape[1])))
    return _Rule(None)


def _const_channel_axis(ndim: int, rank: int) -> int:
    """The axis of a constant operand that broadcasts onto the channel axis (ONNX aligns shapes right), or -1."""
    return ndim - rank + 1


def _channelwise_links(node: Node, g: Graph) -> tuple[Link, ...] | None:
    if len(node.outputs) != 1:
        return None
    y = g.tensors[node.outputs[0]]
    rank, c = len(y.shape), y.shape[1]
    if node.op.startswith("Reduce") or node.op == "GlobalAveragePool":
        if {0, 1} & set(reduced_axes(node, len(g.tensors[node.inputs[0]].shape))):
            return None
    links: list[Link] = []
    for name in node.inputs:
        if not name:
            continue
        t = g.tensors[name]
        if t.data is not None:
            axis = _const_channel_axis(t.data.ndim, rank)
            if axis >= 0 and t.shape[axis] not in (1, c):
                return None
        elif not _tracked(g, name) or t.shape[0] != y.shape[0] or t.shape[1] not in (1, c):
            return None
        elif is_pointwise(node.op) and len(t.shape) != rank:
            return None  # an activation broadcast across ranks: its axis 1 is not the output's
        elif t.shape[1] == c:
            links += [(y.name, k, name, k) for k in range(c)]
    return tuple(links)  # an operand with one channel broadcast to all is not linked: it stays whole


def _moved_links(node: Node, g: Graph) -> tuple[Link, ...] | None:
    """Run the node on inputs that hold channel numbers: each output channel shows which it was moved from."""
    movable = node.inputs if node.op == "Concat" else node.inputs[:1]
    settings = [t for t in node.inputs if t and t not in movable]  # shape, starts, split, ...
    if not all(_tracked(g, t) for t in movable) or any(g.const(t) is None for t in settings):
        return None
    numbered, first = [], 0
    for name in movable:
        shape = g.tensors[name].shape
        ids = np.arange(first, first + shape[1], dtype=np.float32).reshape(1, -1, *[1] * (len(shape) - 2))
        numbered.append(np.broadcast_to(ids, shape))
        first += shape[1]
    owner = [(name, k) for name in movable for k in range(g.tensors[name].shape[1])]
    if node.op in _VIEWS:
        y = g.tensors[node.outputs[0]]
        if y.shape[0] != numbered[0].shape[0]:
            return None  # the batch axis takes part: channels are no longer whole
        outs = [numbered[0].reshape(y.shape)]
    else:
        consts = [g.const(t) if t else None for t in node.inputs[len(movable):]]
        outs = registry.get(node.op, node.name).reference(node, *numbered, *consts)
    links: list[Link] = []
    for y, out in zip(node.outputs, outs):
        sources = [np.unique(out[:, j]).astype(int) for j in range(out.shape[1])]
        if node.op == "Slice" and not all(s.size == 1 and s[0] == sources[0][0] + j for j, s in enumerate(sources)):
            return None  # only a contiguous run of channels stays a Slice after removal
        links += [(y, j, *owner[s]) for j, found in enumerate(sources) for s in found]
    return tuple(links)


# --- which channels hold constants -------------------------------------------------------------------------------


def _constant_channels(g: Graph, rules: dict[str, _Rule]) -> Constants:
    consts: Constants = {}
    for node in g.nodes:
        kind = rules[node.name].kind
        if kind == "weighted":
            found = _weighted_constants(node, g)
        elif kind == "depthwise":
            found = _depthwise_constants(node, g, consts)
        elif kind == "channelwise":
            found = _channelwise_constants(node, g, rules[node.name].links, consts)
        elif kind == "move":
            found = _moved_constants(rules[node.name].links, consts)
        else:
            continue
        for name, values in found.items():
            consts[name] = {k: _as_quantized(v, g.tensors[name].quant) for k, v in values.items()}
    return consts


def _as_quantized(value: float, q: QuantParams | None) -> float:
    """What a QDQ model's QuantizeLinear/DequantizeLinear pair on the tensor turns the value into."""
    if q is None:
        return value
    level = np.clip(np.rint(np.float32(value) / np.float32(q.s)) + q.zp, -128, 127)
    return float((level - q.zp) * np.float32(q.s))


def _activate(node: Node, value: float) -> float:
    clamp = node.attr("activation")
    return float(np.clip(value, *clamp)) if clamp else float(value)


def _weights(node: Node, g: Graph) -> np.ndarray:
    """The weights as [C_out, C_in (per group), ...]."""
    w = g.const(node.inputs[1])
    return w.swapaxes(0, 1) if node.op == "ConvTranspose" else w


def _bias(node: Node, g: Graph, channels: int) -> np.ndarray:
    b = g.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    return np.zeros(channels) if b is None else np.asarray(b, np.float64).ravel()


def _weighted_constants(node: Node, g: Graph) -> Constants:
    w = _weights(node, g)
    b = _bias(node, g, w.shape[0])
    return {node.outputs[0]: {o: _activate(node, b[o]) for o in range(w.shape[0]) if not w[o].any()}}


def _is_padded(node: Node, g: Graph) -> bool:
    x, w, y = (g.tensors[t] for t in (node.inputs[0], node.inputs[1], node.outputs[0]))
    if node.op == "Gemm":
        return False
    # A ConvTranspose's taps land unevenly near the border, as if padded.
    return node.op == "ConvTranspose" or any(conv_window(node, x.shape, w.shape, y.shape).pads)


def _depthwise_constants(node: Node, g: Graph, consts: Constants) -> Constants:
    """Output o = act(b + c * sum(w[o])) from a constant input c, unless padding makes the border differ."""
    x, y = node.inputs[0], node.outputs[0]
    w = _weights(node, g)
    b = _bias(node, g, w.shape[0])
    multiplier = w.shape[0] // g.tensors[x].shape[1]
    padded = _is_padded(node, g)
    found = {}
    for o in range(w.shape[0]):
        c = consts.get(x, {}).get(o // multiplier) if w[o].any() else 0.0
        if c is not None and (c == 0 or not padded):
            found[o] = _activate(node, b[o] + c * float(w[o].sum()))
    return {y: found}


def _channelwise_constants(node: Node, g: Graph, links: tuple[Link, ...], consts: Constants) -> Constants:
    """Evaluate the op on one channel of constants; it is a constant if the result is the same everywhere."""
    y = g.tensors[node.outputs[0]]
    rank = len(y.shape)
    candidates = {k for _, k, x, _ in links if k in consts.get(x, {})} if links else set(range(y.shape[1]))
    found = {}
    for k in sorted(candidates):
        args = []
        for name in node.inputs:
            t = g.tensors[name] if name else None
            if t is None:
                args.append(None)
            elif t.data is not None:
                args.append(_channel_of_constant(t.data, rank, k))
            else:
                c = consts.get(name, {}).get(k if t.shape[1] == y.shape[1] else 0)
                if c is None:
                    break
                args.append(np.full((t.shape[0], 1, *t.shape[2:]), c, np.float32))
        else:
            out = registry.get(node.op, node.name).reference(node, *args)[0]
            if out.size and np.allclose(out, out.flat[0], rtol=1e-5, atol=0):
                found[k] = _activate(node, out.flat[0])
    return {y.name: found}


def _channel_of_constant(data: np.ndarray, rank: int, k: int) -> np.ndarray:
    axis = _const_channel_axis(data.ndim, rank)
    return data if axis < 0 or data.shape[axis] == 1 else np.take(data, [k], axis=axis)


def _moved_constants(links: tuple[Link, ...], consts: Constants) -> Constants:
    sources: dict[tuple[str, int], list[float | None]] = defaultdict(list)
    for y, j, x, k in links:
        sources[(y, j)].append(consts.get(x, {}).get(k))
    found: Constants = defaultdict(dict)
    for (y, j), values in sources.items():
        if values[0] is not None and all(v == values[0] for v in values):
            found[y][j] = values[0]
    return found


# --- which channels are kept -------------------------------------------------------------------------------------


class _Channels:
    """Union-find over the (tensor, channel) pairs of the tracked activations."""

    def __init__(self, g: Graph):
        self.first: dict[str, int] = {}
        count = 0
        for name in g.tensors:
            if _tracked(g, name):
                self.first[name] = count
                count += g.tensors[name].shape[1]
        self.parent = list(range(count))
        self.pairs = [(name, k) for name in self.first for k in range(g.tensors[name].shape[1])]

    def find(self, name: str, k: int) -> int:
        i = self.first[name] + k
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: tuple[str, int], b: tuple[str, int]) -> None:
        self.parent[self.find(*a)] = self.find(*b)


def _kept_channels(g: Graph, rules: dict[str, _Rule], consts: Constants) -> dict[str, np.ndarray]:
    """A bool mask over the channels of every tracked tensor: the channels some kept computation needs."""
    channels = _Channels(g)
    whole = [t for t in (*g.inputs, *g.outputs) if t in channels.first]  # the caller's shapes never change
    for node in g.nodes:
        rule = rules[node.name]
        for y, j, x, k in rule.links:
            channels.union((y, j), (x, k))
        followed = {t for link in rule.links for t in link[::2]}  # outputs and inputs
        if rule.kind == "weighted":
            followed = {node.inputs[0], node.outputs[0]}
        whole += [t for t in (*node.inputs, *node.outputs) if t in channels.first and t not in followed]
    members = defaultdict(list)
    for name, k in channels.pairs:
        members[channels.find(name, k)].append((name, k))
    needs = {n.outputs[0]: (n.inputs[0], _needs(n, g, consts)) for n in g.nodes if rules[n.name].kind == "weighted"}

    kept: set[int] = set()

    def keep(pending: list[tuple[str, int]]) -> None:
        while pending:
            root = channels.find(*pending.pop())
            if root in kept:
                continue
            kept.add(root)
            for y, o in members[root]:  # a kept output of a weighted node needs the input channels it cannot fold
                if y in needs:
                    x, need = needs[y]
                    pending += [(x, int(k)) for k in np.flatnonzero(need[o])]

    def mask(name: str) -> np.ndarray:
        return np.array([channels.find(name, k) in kept for k in range(g.tensors[name].shape[1])])

    keep([(name, k) for name in whole for k in range(g.tensors[name].shape[1])])
    for name in channels.first:
        if not mask(name).any():  # a tensor without channels would break its producer and consumers
            keep([(name, 0)])
    return {name: mask(name) for name in channels.first}


def _needs(node: Node, g: Graph, consts: Constants) -> np.ndarray:
    """bool [C_out, C_in]: output channel o needs input channel k (a non-zero weight, and k cannot be folded)."""
    w = _weights(node, g)
    reads = np.any(w.reshape(w.shape[0], w.shape[1], -1) != 0, axis=2)
    values = consts.get(node.inputs[0], {})
    padded = _is_padded(node, g)
    foldable = np.array([k in values and (values[k] == 0 or not padded) for k in range(w.shape[1])], bool)
    return reads & ~foldable


# --- removal -----------------------------------------------------------------------------------------------------


def _remove(g: Graph, rules: dict[str, _Rule], keep: dict[str, np.ndarray], consts: Constants) -> Graph:
    new: dict[str, Tensor] = {}
    for name, k in keep.items():
        if not k.all():
            t = g.tensors[name]
            new[name] = replace(t, shape=(t.shape[0], int(k.sum()), *t.shape[2:]))
    nodes = []
    for node in g.nodes:
        rule = rules[node.name]
        if rule.kind is None or all(keep[t].all() for t in (*node.inputs, *node.outputs) if t in keep):
            nodes.append(node)  # (a node the pass does not follow keeps all its channels)
        elif rule.kind in ("weighted", "depthwise"):
            nodes.append(_prune_weighted(node, g, keep, consts, new))
        elif rule.kind == "channelwise":
            nodes.append(_prune_channelwise(node, g, keep[node.outputs[0]], new))
        else:
            nodes.append(_prune_move(node, g, rule.links, keep, new))
    return g.rewrite(nodes, new)


def _sliced_quant(q: QuantParams | None, keep: np.ndarray) -> QuantParams | None:
    """Per-channel scales and zero points follow their channels; per-tensor ones stay."""
    if q is None or q.scale.size == 1:
        return q
    return QuantParams(q.scale[keep], q.zero_point[keep], q.axis)


def _prune_weighted(node: Node, g: Graph, keep: dict[str, np.ndarray], consts: Constants, new: dict) -> Node:
    """Kept rows and columns of the weights; each removed input channel's constant folds into the bias."""
    x, y = node.inputs[0], node.outputs[0]
    keep_in, keep_out = keep[x], keep[y]
    w = _weights(node, g)[keep_out]
    b = _bias(node, g, len(keep_out))[keep_out]
    attrs = node.attrs
    if int(node.attr("group", 1)) > 1:  # depthwise: each kept output channel still reads its own input channel
        attrs = {**attrs, "group": int(keep_in.sum())}
    else:
        removed = np.flatnonzero(~keep_in)
        # A removed channel is a constant these rows fold exactly, or one they weight with zeros only (c = 0
        # then). Where folding is not exact (padding, ConvTranspose), only c == 0 or zero weights were removed.
        c = np.array([consts.get(x, {}).get(int(k), 0.0) for k in removed])
        b = b + w[:, removed].sum(axis=tuple(range(2, w.ndim))).astype(np.float64) @ c  # sum over the taps
        w = w[:, keep_in]
    if node.op == "ConvTranspose":
        w = w.swapaxes(0, 1)
    w_t = g.tensors[node.inputs[1]]
    b_t = g.tensors[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    w_name, b_name = f"{node.name}::weight_live", f"{node.name}::bias_live"
    w_quant = _sliced_quant(w_t.quant, keep_out)
    new[w_name] = Tensor(w_name, w.shape, w_t.dtype, data=np.ascontiguousarray(w), quant=w_quant)
    b_dtype, b_quant = (np.float32, None) if b_t is None else (b_t.data.dtype, _sliced_quant(b_t.quant, keep_out))
    new[b_name] = Tensor(b_name, b.shape, "float32", data=b.astype(b_dtype), quant=b_quant)
    return Node(node.op, node.name, (x, w_name, b_name), node.outputs, attrs)


def _prune_channelwise(node: Node, g: Graph, keep: np.ndarray, new: dict) -> Node:
    """Per-channel constant operands (a bias of an Add, a PRelu slope) keep the kept channels' entries."""
    rank = len(g.tensors[node.outputs[0]].shape)
    inputs = list(node.inputs)
    for i, name in enumerate(node.inputs):
        t = g.tensors[name] if name else None
        if t is None or t.data is None:
            continue
        axis = _const_channel_axis(t.data.ndim, rank)
        if axis >= 0 and t.shape[axis] == len(keep) > 1:
            data = np.compress(keep, t.data, axis=axis)
            inputs[i] = f"{node.name}::input{i}_live"
            new[inputs[i]] = Tensor(inputs[i], data.shape, t.dtype, data=data, quant=_sliced_quant(t.quant, keep))
    return Node(node.op, node.name, tuple(inputs), node.outputs, node.attrs)


def _prune_move(node: Node, g: Graph, links: tuple[Link, ...], keep: dict[str, np.ndarray], new: dict) -> Node:
    """Concat and views need nothing but the new shapes; Split gets its new sizes, Slice its new channel bounds,
    Reshape its new target shape."""
    x = node.inputs[0]
    rank = len(g.tensors[x].shape)
    if node.op == "Split" and int(node.attr("axis", 0)) % rank == 1:
        sizes = tuple(int(keep[y].sum()) for y in node.outputs)
        return Node(node.op, node.name, node.inputs[:1], node.outputs, {**node.attrs, "split": sizes})
    if node.op == "Slice":
        starts, ends = (np.array(g.const(t)) for t in node.inputs[1:3])
        axes = g.const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else np.arange(len(starts))
        on_channels = np.flatnonzero(np.asarray(axes) % rank == 1)
        if on_channels.size == 0:
            return node
        first = min(k for _, _, _, k in links)  # _moved_links: a contiguous run from here
        starts[on_channels] = keep[x][:first].sum()
        ends[on_channels] = starts[on_channels] + keep[node.outputs[0]].sum()
        names = (f"{node.name}::starts_live", f"{node.name}::ends_live")
        for name, value in zip(names, (starts, ends)):
            new[name] = Tensor(name, value.shape, str(value.dtype), data=value)
        return Node(node.op, node.name, (x, *names, *node.inputs[3:]), node.outputs, node.attrs)
    if node.op == "Reshape":
        shape = np.array(new.get(node.outputs[0], g.tensors[node.outputs[0]]).shape, np.int64)
        name = f"{node.name}::shape_live"
        new[name] = Tensor(name, shape.shape, "int64", data=shape)
        return Node(node.op, node.name, (x, name), node.outputs, node.attrs)
    return node
