"""Graph passes: pure functions Graph -> Graph, run as straight-line pipelines and verified between steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..ir import Graph
from .canonicalize import canonicalize, divide_by_reciprocal, remove_identity_and_dropout
from .dead_channels import eliminate_dead_channels
from .fold_batchnorm import fold_batchnorm
from .fold_channel_shuffle import fold_channel_shuffle
from .fold_norm import fold_norm
from .fold_pad import fold_pad
from .fold_qdq import fold_qdq
from .fold_softmax import fold_softmax, move_softmax_axis
from .fuse_activation import fuse_activation
from .fuse_pointwise import fuse_pointwise
from .lift_1d import lift_1d

Pass = Callable[[Graph], Graph]

# Ops that the float pipeline removes, so the support check before it lets them through.
REMOVED_BY_PASSES = frozenset({"Identity", "Dropout", "QuantizeLinear", "DequantizeLinear", "Sum", "Mean"})

FLOAT_PIPELINE: tuple[Pass, ...] = (
    fold_qdq,
    remove_identity_and_dropout,
    canonicalize,
    fold_norm,
    lift_1d,
    fold_softmax,
    move_softmax_axis,
    divide_by_reciprocal,
    fold_channel_shuffle,
    fold_pad,
    fold_batchnorm,
    fuse_activation,
    fuse_pointwise,
    # Last: a zero filter's channel is act(bias) only once BN is folded and the activation fused, and every
    # pointwise chain it passes through is one node by now.
    eliminate_dead_channels,
)


def run_passes(g: Graph, passes: Sequence[Pass], trace: Callable[[str, Graph], None] | None = None) -> Graph:
    g.verify()
    for p in passes:
        g = p(g)
        g.verify()  # fail in the pass that broke the graph, not three passes later
        if trace:
            trace(p.__name__, g)
    return g
