"""Static memory planning: buffer lifetimes over the call order, in-place reuse, and offsets in one arena.

Placement is TFLite Micro's greedy algorithm, stated here in prose:
  - buffers are sorted by size, largest first (ties: earlier first use first);
  - each is placed at the lowest offset where it overlaps no already-placed buffer whose lifetime overlaps its own.
The lower bound reported next to it is the largest total of bytes live at any one step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lower import Program

ALIGNMENT = 4  # every buffer starts on a 4-byte boundary (int16/int32 scratch, word loads)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int
    first: int  # first step (call index) that writes it
    last: int  # last step that reads it

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class ArenaPlan:
    size: int  # bytes of the arena
    lower_bound: int  # max over steps of the bytes live at that step
    offsets: dict[str, int]  # buffer name -> offset in the arena
    buffers: tuple[Buffer, ...]
    merged: dict[str, str]  # in-place outputs -> the buffer they overwrite
    external: dict[str, tuple[str, int]]  # buffer -> ("input" | "output", index): the caller's memory

    def locate(self, program: Program, tensor: str) -> tuple[str, int]:
        """("arena", offset), ("input", k) or ("output", k) for any tensor or scratch name the calls use."""
        root = program.root(tensor)
        root = self.merged.get(root, root)
        if root in self.external:
            return self.external[root]
        return "arena", self.offsets[root]


def scratch_name(step: int) -> str:
    return f"::scratch{step}"


def plan_memory(program: Program) -> ArenaPlan:
    external = {r: ("input", k) for k, r in enumerate(program.root(t) for t in program.user_inputs)}
    external.update({program.root(t): ("output", k) for k, t in enumerate(program.user_outputs)})
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for step, call in enumerate(program.calls):
        for t in call.inputs:
            last[program.root(t)] = step
        for t in call.outputs:
            r = program.root(t)
            first.setdefault(r, step)
            last[r] = max(last.get(r, step), step)
            sizes[r] = program.sizes[t]
        if call.scratch_bytes:
            name = scratch_name(step)
            first[name], last[name], sizes[name] = step, step, call.scratch_bytes
    merged = _merge_in_place(program, external, first, last, sizes)
    buffers = tuple(
        Buffer(name, _align(sizes[name]), first[name], last[name])
        for name in first
        if name not in external and name not in merged
    )
    offsets = greedy_by_size(buffers)
    size = max((offsets[b.name] + b.size for b in buffers), default=0)
    steps = range(len(program.calls))
    bound = max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)
    return ArenaPlan(size, bound, offsets, buffers, merged, external)


def _merge_in_place(program: Program, external, first, last, sizes) -> dict[str, str]:
    """In-place calls write over their input when that input dies at the call and both live in the arena."""
    merged: dict[str, str] = {}
    for step, call in enumerate(program.calls):
        if not call.in_place:
            continue
        src = program.root(call.inputs[0])
        src = merged.get(src, src)
        dst = program.root(call.outputs[0])
        if src in external or dst in external or last[src] != step or sizes[dst] > sizes[src]:
            continue
        merged[dst] = src
        last[src] = max(last[src], last[dst])
    return merged


def greedy_by_size(buffers: tuple[Buffer, ...]) -> dict[str, int]:
    offsets: dict[str, int] = {}
    placed: list[Buffer] = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.first, b.name)):
        candidate = 0
        for other in sorted((p for p in placed if p.overlaps_in_time(b)), key=lambda p: offsets[p.name]):
            if candidate + b.size <= offsets[other.name]:
                break
            candidate = max(candidate, _align(offsets[other.name] + other.size))
        offsets[b.name] = candidate
        placed.append(b)
    return offsets


def overlapping_pairs(plan: ArenaPlan) -> list[tuple[str, str]]:
    """Buffers that share bytes while both are live: always empty for a correct plan (a test invariant)."""
    pairs = []
    for i, a in enumerate(plan.buffers):
        for b in plan.buffers[i + 1 :]:
            if a.overlaps_in_time(b):
                a0, b0 = plan.offsets[a.name], plan.offsets[b.name]
                if a0 < b0 + b.size and b0 < a0 + a.size:
                    pairs.append((a.name, b.name))
    return pairs
