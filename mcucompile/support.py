"""Which nodes of an imported model the compiler supports, and why not where it does not.

One owner for the question: `compile` refuses a model with the answer of `require_supported`, and
`mcucompile check` prints `node_support` for every node. Each op's own limits (attribute values, shapes,
constant operands) live with the op, as `OpDef.check` in ops/; this module only asks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cformat import printable
from .ir import CompileError, Graph, Node
from .ops import registry
from .ops.lut import CHAIN_ONLY
from .ops.select import SELECT_OPS
from .passes import REMOVED_BY_PASSES
from .passes.fold_softmax import softmax_patterns
from .passes.fuse_pointwise import pointwise_fusions

SUPPORTED_DTYPES = frozenset({"float32", "int8", "int32", "int64", "bool"})
BOOL_OPS = frozenset({*SELECT_OPS, *CHAIN_ONLY, "PointwiseLut"})  # the ops that read or write masks (ops/select.py)


@dataclass(frozen=True)
class NodeSupport:
    node: str
    op: str
    reason: str | None  # None: supported

    @property
    def ok(self) -> bool:
        return self.reason is None


def node_support(g: Graph, extra_removed: frozenset[str] = REMOVED_BY_PASSES) -> list[NodeSupport]:
    """Every node of `g` (in order) with the reason it cannot be compiled, or None."""
    folded = {n.name for p in softmax_patterns(g) for n in p.nodes}  # the Div by a sum becomes a Softmax
    folded |= pointwise_fusions(g)[1]  # functions of one tensor become lookup tables (comparisons, Where, ...)
    return [NodeSupport(n.name, n.op, None if n.name in folded else _reason(n, g, extra_removed)) for n in g.nodes]


def _reason(node: Node, g: Graph, removed: frozenset[str]) -> str | None:
    if node.op in removed:
        return None
    if not registry.is_supported(node.op):
        return f"operator {node.op} is not supported"
    for t in (*node.inputs, *node.outputs):
        dtype = g.tensors[t].dtype if t and t in g.tensors else None
        if dtype == "bool" and t in g.outputs:  # (bool graph inputs are refused at import)
            return (f"tensor '{printable(t)}' is a bool graph output; cast it to float in the model (the compiled "
                    "model's outputs are int8/float)")  # fmt: skip
        if dtype == "bool" and node.op not in BOOL_OPS and not registry.get(node.op, node.name).is_view:
            return f"tensor '{printable(t)}' is bool; only comparisons, logic, Where, Cast and views take bool tensors"
        if dtype is not None and dtype not in SUPPORTED_DTYPES:
            return f"tensor '{printable(t)}' has dtype {dtype}; supported are float32 (quantized to int8), int8"
    check = registry.get(node.op, node.name).check
    return check(node, g) if check else None


def require_supported(g: Graph, extra_removed: frozenset[str] = REMOVED_BY_PASSES) -> None:
    """Raise one CompileError naming every unsupported node and why (the first few, then a count)."""
    bad = [s for s in node_support(g, extra_removed) if not s.ok]
    if bad:
        listed = "; ".join(f"node '{printable(s.node)}' ({s.op}): {s.reason}" for s in bad[:4])
        more = f"; and {len(bad) - 4} more" if len(bad) > 4 else ""
        raise CompileError(
            f"{len(bad)} unsupported node(s): {listed}{more} (run `mcucompile check MODEL.onnx` for the full list)"
        )


def check_report(g: Graph, source: str) -> tuple[str, bool]:
    """The text `mcucompile check` prints: one line per node, then a summary; and whether all are supported."""
    rows = node_support(g)
    width = max((len(r.op) for r in rows), default=2)
    lines = [f"{'ok ' if r.ok else 'NO '} {r.op:<{width}}  {printable(r.node)}" + (f": {r.reason}" if r.reason else "")
             for r in rows]
    bad = sum(not r.ok for r in rows)
    lines.append(f"{source}: {len(rows)} nodes after constant folding, {len(rows) - bad} supported, {bad} unsupported")
    return "\n".join(lines), bad == 0

