"""The memory report of a compiled model: the arena plan as a table, and as a picture (`mcucompile report`)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from .cformat import printable
from .files import write_files
from .ir import CompileError
from .lower import Program
from .memory import ArenaPlan, buffer_label, peak_step


def memory_report(program: Program, plan: ArenaPlan) -> str:
    rows = sorted(plan.buffers, key=lambda b: (b.first, plan.offsets[b.name], b.name))
    labels = {b.name: buffer_label(program, b.name) for b in rows}
    width = max([len("buffer")] + [len(s) for s in labels.values()])
    lines = [f"{'buffer':<{width}}  {'bytes':>9}  {'first':>5}  {'last':>5}  {'offset':>9}"]
    for b in rows:
        lines.append(
            f"{labels[b.name]:<{width}}  {b.size:>9,}  {b.first:>5}  {b.last:>5}  {plan.offsets[b.name]:>9,}"
        )
    for dst, src in plan.merged.items():
        group, at = plan.within[dst]
        lines.append(f"in place   {dst} overwrites {src} (at {at:,} in {group})")
    for name, (kind, k) in plan.external.items():
        lines.append(f"caller's   {name} is the {kind} buffer {k} (not in the arena)")
    step, live = peak_step(plan)
    if program.calls:
        call = program.calls[step]
        lines.append(f"peak       step {step} (node '{printable(call.node)}', {call.kernel}): {plan.lower_bound:,} bytes live")
        lines += [f"             {labels[b.name]} {b.size:,} B at {plan.offsets[b.name]:,}" for b in live]
    lines.append(f"bound      {plan.lower_bound:,} bytes (the lowered order: {plan.given_bound:,})")
    lines.append(f"arena      {plan.size:,} bytes, placement {plan.strategy}")
    lines.append("strategies " + ", ".join(f"{k} {v:,}" for k, v in plan.strategy_sizes.items()))
    if plan.reordered:
        moved = sum(i != k for i, k in zip(plan.order, sorted(plan.order)))
        lines.append(
            f"order      {moved} of {len(plan.order)} calls moved: lower bound {plan.given_bound:,} -> "
            f"{plan.lower_bound:,}, arena {plan.given_size:,} -> {plan.size:,} bytes"
        )
    else:
        lines.append("order      as lowered (no order found that needs a smaller arena)")
    return "\n".join(lines)


def plot_arena(program: Program, plan: ArenaPlan, path: str | os.PathLike) -> None:
    """Draw the arena over time as a PNG: x = step, y = offset, one labelled rectangle per buffer."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError:
        raise CompileError("--png needs matplotlib: pip install 'mcucompile[report]'") from None
    steps = max((b.last for b in plan.buffers), default=0) + 1
    fig = Figure(figsize=(min(4 + 0.4 * steps, 40), 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = max(plan.size, 1)
    for i, b in enumerate(sorted(plan.buffers, key=lambda b: b.name)):
        x, y, w = b.first - 0.45, plan.offsets[b.name], b.last - b.first + 0.9
        ax.add_patch(Rectangle((x, y), w, b.size, facecolor=f"C{i % 10}", edgecolor="black", alpha=0.7, lw=0.5))
        if b.size > 0.03 * top:  # label only where the text has room
            label = buffer_label(program, b.name)
            label = label if len(label) <= 24 else label[:23] + "…"  # TFLite names can run to hundreds
            ax.text(x + w / 2, y + b.size / 2, label, ha="center", va="center", fontsize=7)
    ax.axhline(plan.lower_bound, color="red", ls="--", lw=1, label=f"lower bound {plan.lower_bound:,} B")
    ax.set(xlim=(-0.5, steps - 0.5), ylim=(0, top * 1.05), xlabel="step (kernel call)", ylabel="arena offset (bytes)")
    ax.set_title(f"arena {plan.size:,} bytes, placement {plan.strategy}")
    ax.legend(loc="upper right")
    png = io.BytesIO()
    fig.savefig(png, format="png")
    write_files({Path(path): png.getvalue()}, "the picture", "choose another --png")
