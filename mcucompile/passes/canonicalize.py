"""Rewrite equivalent ONNX spellings into the one form each op's lowering expects.

- Identity and Dropout (inference) disappear.
- Relu becomes Clip(min=0); Clip's min/max inputs become attributes.
- MatMul(x[N,K], constant B[K,O]) becomes Gemm; every Gemm gets W[O,K] with transB=1 and alpha=beta=1,
  its bias a vector of O values, and a following Add of a constant vector is folded into that bias.
- The axes input of reductions (opset 18; ReduceSum from 13) becomes an attribute.
- Sum, Mean, Max and Min of any number of inputs become chains of binary Add/Max/Min (Mean then a Mul by 1/k).
- (divide_by_reciprocal, after the softmax patterns are folded) a Div by a computed tensor becomes a Mul by its
  Reciprocal: a lookup table of the divisor (joining the divisor's own pointwise chain) and an int8 multiply.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import CompileError, Graph, Node, QuantParams, Tensor


def remove_identity_and_dropout(g: Graph) -> Graph:
    """Identity/Dropout -> nothing; consumers read the input instead (or the producer takes over a graph output).

    One pass over the graph in order, so chains and many copies of one tensor (onnxruntime's pre-processing
    writes an Identity per duplicated initializer) resolve together. A copy that must stay a distinct graph output
    (of a graph input, a constant, another output, or a tensor a second output already took over) becomes a view,
    which lowering turns into a copy.
    """
    alias: dict[str, str] = {}  # a removed copy's output -> the tensor read instead
    writes: dict[str, str] = {}  # a producer's output -> the graph output it writes instead
    views, removed, new = [], set(), {}
    producers = {t for n in g.nodes if n.op not in ("Identity", "Dropout") for t in n.outputs}
    for node in g.nodes:
        if node.op not in ("Identity", "Dropout"):
            continue
        if len(node.outputs) > 1 and node.outputs[1] and any(node.outputs[1] in n.inputs for n in g.nodes):
            raise CompileError(
                f"node '{node.name}' (Dropout): its mask output is used; only inference graphs are supported"
            )
        src, dst = alias.get(node.inputs[0], node.inputs[0]), node.outputs[0]
        removed.add(node.name)
        if dst not in g.outputs:
            alias[dst] = writes.get(src, src)
        elif src in producers and src not in g.outputs and src not in writes:
            writes[src] = dst
        else:
            shape = f"{node.name}::shape"
            new[shape] = Tensor(shape, (len(g.tensors[dst].shape),), "int64",
                                data=np.array(g.tensors[dst].shape, np.int64))  # fmt: skip
            views.append(Node("Reshape", node.name, (writes.get(src, src), shape), (dst,), {}))
    if not removed:
        return g
    nodes = []
    for n in g.nodes:
        if n.name in removed:
            nodes.extend(v for v in views if v.name == n.name)
            continue
        inputs = tuple(writes.get(alias.get(t, t), alias.get(t, t)) for t in n.inputs)
        nodes.append(Node(n.op, n.name, inputs, tuple(writes.get(t, t) for t in n.outputs), n.attrs))
    return g.rewrite(nodes, new)


def _scalar(g: Graph, name: str, default: float) -> float:
    if not name:
        return default
    value = g.const(name)
    if value is None:
        raise CompileError(f"tensor '{name}': Clip bounds must be constants")
    return float(np.asarray(value).ravel()[0])


def _canonical_clip(g: Graph, n: Node) -> Node:
    if n.op == "Relu":
        return Node("Clip", n.name, n.inputs[:1], n.outputs, {"min": 0.0, "max": math.inf})
    lo = (
        _scalar(g, n.inputs[1], float(n.attr("min", -math.inf)))
        if len(n.inputs) > 1
        else float(n.attr("min", -math.inf))
    )
    hi = (
        _scalar(g, n.inputs[2], float(n.attr("max", math.inf))) if len(n.inputs) > 2 else float(n.attr("max", math.inf))
    )
    return Node("Clip", n.name, n.inputs[:1], n.outputs, {"min": lo, "max": hi})


def _transposed_quant(q: QuantParams | None) -> QuantParams | None:
    """The quantization of a transposed 2-D weight: a per-column axis becomes per-row."""
    if q is None or q.axis is None:
        return q
    return QuantParams(q.scale, q.zero_point, 1 - q.axis % 2)


def _canonical_gemm(g: Graph, n: Node, new: dict[str, Tensor]) -> Node:
    """Gemm/MatMul with a constant weight -> Gemm(x, W[O,K], b[O]), transB=1, alpha=beta=1.

    Values stay float64, and a QDQ model's weight and bias quantization follows them where the values
    are only moved (transposed), so the quantize pass can recover the model's integers exactly.
    """
    wt = g.tensors[n.inputs[1]]
    if wt.data is None or wt.data.ndim != 2 or n.attr("transA", 0):
        return n  # check_gemm explains what is unsupported
    w, wq = np.asarray(wt.data, np.float64), wt.quant
    if not (n.op == "Gemm" and n.attr("transB", 0)):
        w, wq = w.T, _transposed_quant(wq)
    alpha = float(n.attr("alpha", 1.0)) if n.op == "Gemm" else 1.0
    if alpha != 1.0:
        w, wq = w * alpha, None
    out_features = w.shape[0]
    bias, bq = np.zeros(out_features), None
    if n.op == "Gemm" and len(n.inputs) > 2 and n.inputs[2]:
        ct = g.tensors[n.inputs[2]]
        if ct.data is None or ct.data.size not in (1, out_features):
            return n
        beta = float(n.attr("beta", 1.0))
        bias = np.broadcast_to(np.asarray(ct.data, np.float64).ravel(), (out_features,)) * beta
        bq = ct.quant if beta == 1.0 and ct.data.size == out_features else None
    w_name, b_name = f"{n.name}::weight", f"{n.name}::bias"
    new[w_name] = Tensor(w_name, w.shape, "float32", data=np.ascontiguousarray(w), quant=wq)
    new[b_name] = Tensor(b_name, bias.shape, "float32", data=np.array(bias), quant=bq)
    return Node("Gemm", n.name, (n.inputs[0], w_name, b_name), n.outputs, {"transB": 1})


def _fold_bias_add(g: Graph, nodes: list[Node], new: dict[str, Tensor]) -> list[Node]:
    """Gemm -> Add(constant vector) becomes one Gemm with the sum as bias (MatMul+Add is how Linear often exports)."""
    out = list(nodes)
    by_output = {t: n for n in out for t in n.outputs}
    for add in [n for n in out if n.op == "Add"]:
        consts = [t for t in add.inputs if g.const(t) is not None]
        if len(consts) != 1:
            continue
        other = add.inputs[1] if add.inputs[0] == consts[0] else add.inputs[0]
        gemm = by_output.get(other)
        if gemm is None or gemm.op != "Gemm" or gemm.attr("transB", 0) != 1 or len(gemm.inputs) < 3:
            continue
        if other in g.outputs or sum(other in n.inputs for n in out) != 1:
            continue
        bias = new.get(gemm.inputs[2], g.tensors.get(gemm.inputs[2]))
        ct = g.tensors[consts[0]]
        if bias is None or bias.data is None or ct.data.size not in (1, bias.data.size) or ct.data.ndim > 2:
            continue
        total = np.asarray(bias.data, np.float64) + np.asarray(ct.data, np.float64).ravel()
        # The sum keeps the Add constant's quantization when the Gemm had no bias of its own (MatMul + Add).
        bq = ct.quant if not np.any(bias.data) and ct.data.size == bias.data.size else None
        b_name = f"{gemm.name}::bias_add"
        new[b_name] = Tensor(b_name, bias.shape, "float32", data=total, quant=bq)
        fused = Node("Gemm", gemm.name, (gemm.inputs[0], gemm.inputs[1], b_name), add.outputs, gemm.attrs)
        out = [fused if n is gemm else n for n in out if n is not add]
        by_output = {t: n for n in out for t in n.outputs}
    return out


VARIADIC = {"Sum": "Add", "Mean": "Add", "Max": "Max", "Min": "Min"}


def _binary_chain(g: Graph, n: Node, new: dict[str, Tensor]) -> list[Node]:
    """Sum/Mean/Max/Min of k inputs -> k - 1 binary nodes (Mean then times 1/k); of one input, a view of it."""
    y = g.tensors[n.outputs[0]]
    inputs = [t for t in n.inputs if t]
    if len(inputs) == 1 and n.op in ("Sum", "Max", "Min", "Mean"):
        shape = f"{n.name}::shape"
        new[shape] = Tensor(shape, (len(y.shape),), "int64", data=np.array(y.shape, np.int64))
        return [Node("Reshape", n.name, (inputs[0], shape), n.outputs, {})]
    nodes, acc = [], inputs[0]
    for k, t in enumerate(inputs[1:], start=1):
        last = k == len(inputs) - 1 and n.op != "Mean"
        out = n.outputs[0] if last else f"{n.name}::partial{k}"
        if not last:
            shape = np.broadcast_shapes(g.tensors[acc].shape if acc in g.tensors else new[acc].shape, g.tensors[t].shape)
            new[out] = Tensor(out, tuple(shape), "float32")
        nodes.append(Node(VARIADIC[n.op], n.name if last else f"{n.name}::{k}", (acc, t), (out,), {}))
        acc = out
    if n.op == "Mean":
        scale = f"{n.name}::inverse_count"
        new[scale] = Tensor(scale, (), "float32", data=np.array(1.0 / len(inputs), np.float32))
        nodes.append(Node("Mul", n.name, (acc, scale), n.outputs, {}))
    return nodes


def canonicalize(g: Graph) -> Graph:
    new: dict[str, Tensor] = {}
    nodes = []
    for n in g.nodes:
        if n.op in VARIADIC and (n.op in ("Sum", "Mean") or len([t for t in n.inputs if t]) != 2):
            nodes.extend(_binary_chain(g, n, new))
            continue
        if n.op in ("Relu", "Clip"):
            n = _canonical_clip(g, n)
        elif n.op in ("Gemm", "MatMul"):
            n = _canonical_gemm(g, n, new)
        elif n.op.startswith("Reduce") and len(n.inputs) > 1 and n.inputs[1]:
            axes = g.const(n.inputs[1])
            if axes is None:
                raise CompileError(f"node '{n.name}' ({n.op}): axes must be a constant")
            n = Node(n.op, n.name, n.inputs[:1], n.outputs, {**n.attrs, "axes": tuple(int(a) for a in axes.ravel())})
        nodes.append(n)
    nodes = _fold_bias_add(g, nodes, new)
    return g.rewrite(nodes, new)


def divide_by_reciprocal(g: Graph) -> Graph:
    """Div(a, b) with a computed b -> Mul(a, Reciprocal(b)); a constant b stays (ops/elementwise.py multiplies by
    its inverse)."""
    nodes, new = [], {}
    for n in g.nodes:
        if n.op != "Div" or len(n.inputs) != 2 or g.is_const(n.inputs[1]):
            nodes.append(n)
            continue
        b = g.tensors[n.inputs[1]]
        inverse = f"{n.name}::reciprocal"
        new[inverse] = Tensor(inverse, b.shape, "float32")
        nodes += [Node("Reciprocal", inverse, (b.name,), (inverse,), {}),
                  Node("Mul", n.name, (n.inputs[0], inverse), n.outputs, n.attrs)]  # fmt: skip
    return g.rewrite(nodes, new) if new else g
