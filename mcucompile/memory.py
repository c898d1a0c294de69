"""Static memory planning: the call order, buffer lifetimes, in-place reuse, and offsets in one arena.

`plan(program)` first chooses the order of the kernel calls (schedule.py: the order with the lowest peak of live
bytes, kept only if it gives a smaller arena), then `plan_memory` places the buffers of that order. Every
placement strategy below runs and the smallest arena wins; ties go to the earlier strategy in STRATEGIES:
  - greedy_by_size (TFLite Micro's GreedyMemoryPlanner): largest buffer first, each at the lowest offset where it
    overlaps no placed buffer whose lifetime overlaps its own;
  - greedy_by_conflicts (TVM USMP): the same lowest-offset placement, buffers with the most lifetime conflicts first;
  - greedy_by_breadth (Pisarchyk & Lee): steps with the most live bytes first, and within a step the largest buffer;
  - two_ended ("ping-pong"): in order of first use, each buffer goes to the end of a lower-bound-sized arena away
    from the buffer it follows, which on a chain reaches max(in + out + scratch) exactly;
  - exact: branch and bound over placement orders (lowest offset each), searching only below the best arena so far
    (the heuristics' to start with), stopped at the lower bound or after EXACT_NODES placements; exact up to that
    budget, and only for at most EXACT_MAX_BUFFERS buffers.
The lower bound is the largest total of bytes live at one step of the order: no placement can go below it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .ir import CompileError
from .lower import Program
from .schedule import Task, best_order

ALIGNMENT = 4  # every buffer starts on a 4-byte boundary (int16/int32 scratch, word loads)
EXACT_MAX_BUFFERS = 24
EXACT_NODES = 20_000


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
    strategy: str = "greedy_by_size"  # the placement that won
    strategy_sizes: dict[str, int] = field(default_factory=dict)  # arena per strategy that ran
    order: tuple[int, ...] = ()  # per step, the index of its call in the lowered order
    given_bound: int = 0  # lower bound and arena of the lowered order (equal to the above when not reordered)
    given_size: int = 0

    @property
    def reordered(self) -> bool:
        return self.order != tuple(range(len(self.order)))

    def locate(self, program: Program, tensor: str) -> tuple[str, int]:
        """("arena", offset), ("input", k) or ("output", k) for any tensor or scratch name the calls use."""
        root = program.root(tensor)
        root = self.merged.get(root, root)
        if root in self.external:
            return self.external[root]
        return "arena", self.offsets[root]


def scratch_name(step: int) -> str:
    return f"::scratch{step}"


def plan(program: Program) -> tuple[Program, ArenaPlan]:
    """The program with its calls in the order that needs the smallest arena, and that arena's plan."""
    given = plan_memory(program)
    order = best_order(*_schedule_problem(program))
    if order == given.order:
        return program, given
    moved = replace(program, calls=tuple(program.calls[i] for i in order))
    better = plan_memory(moved)
    if better.size >= given.size:  # the search sees only lifetimes; the placement decides
        return program, given
    return moved, replace(better, order=order, given_bound=given.lower_bound, given_size=given.size)


def plan_memory(program: Program) -> ArenaPlan:
    """Place the buffers of the program's calls, in their given order."""
    external = _external(program)
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
    offsets, strategy, strategy_sizes = place(buffers)
    size, bound = arena_size(buffers, offsets), lower_bound(buffers)
    order = tuple(range(len(program.calls)))
    return ArenaPlan(size, bound, offsets, buffers, merged, external, strategy, strategy_sizes, order, bound, size)


def _external(program: Program) -> dict[str, tuple[str, int]]:
    external = {r: ("input", k) for k, r in enumerate(program.root(t) for t in program.user_inputs)}
    external.update({program.root(t): ("output", k) for k, t in enumerate(program.user_outputs)})
    return external


def _in_place_pair(program: Program, call, external, owner: dict[str, str], sizes) -> tuple[str, str] | None:
    """(buffer overwritten, output) if the call may write its output over its input 0's bytes in the arena."""
    if not call.in_place:
        return None
    src = program.root(call.inputs[0])
    src = owner.get(src, src)
    dst = program.root(call.outputs[0])
    if src in external or dst in external or sizes[dst] > sizes[src]:
        return None
    return src, dst


def _merge_in_place(program: Program, external, first, last, sizes) -> dict[str, str]:
    """In-place calls write over their input when that input dies at the call and both live in the arena."""
    merged: dict[str, str] = {}
    for step, call in enumerate(program.calls):
        pair = _in_place_pair(program, call, external, merged, sizes)
        if pair is None or last[pair[0]] != step:
            continue
        src, dst = pair
        merged[dst] = src
        last[src] = max(last[src], last[dst])
    return merged


def _schedule_problem(program: Program) -> tuple[list[Task], list[int]]:
    """The calls as schedule.Tasks over buffer ids, with the caller's buffers at 0 bytes.

    An in-place call whose input has no other reader overwrites it in every order, so its output costs no bytes
    and its readers keep the overwritten buffer alive; other in-place merges depend on the order and are left out
    (the search then overestimates, and plan() compares the real arenas).
    """
    external = _external(program)
    ids: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for call in program.calls:
        for t in (*call.inputs, *call.outputs):
            r = program.root(t)
            ids.setdefault(r, len(ids))
            sizes.setdefault(r, program.sizes[t])
    readers: dict[str, int] = {}
    for call in program.calls:
        for r in {program.root(t) for t in call.inputs}:
            readers[r] = readers.get(r, 0) + 1
    owner: dict[str, str] = {}  # output -> the buffer whose bytes it reuses
    for call in program.calls:
        pair = _in_place_pair(program, call, external, owner, sizes)
        if pair is not None and readers.get(program.root(call.inputs[0])) == 1:
            owner[pair[1]] = pair[0]
    byte_sizes = [0 if r in owner or r in external else _align(sizes[r]) for r in ids]
    tasks = []
    for call in program.calls:
        reads = [ids[program.root(t)] for t in call.inputs]
        reads += [ids[owner[program.root(t)]] for t in call.inputs if program.root(t) in owner]
        writes = tuple(ids[program.root(t)] for t in call.outputs)
        tasks.append(Task(tuple(reads), writes, _align(call.scratch_bytes)))
    return tasks, byte_sizes


# --- placement -------------------------------------------------------------------------------------------------


def arena_size(buffers, offsets: dict[str, int]) -> int:
    return max((offsets[b.name] + b.size for b in buffers), default=0)


def lower_bound(buffers) -> int:
    """The largest total of bytes live at one step."""
    steps = {b.first for b in buffers}  # the total only rises where a buffer starts
    return max((sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps), default=0)


def _lowest_fit(b: Buffer, live, offsets: dict[str, int]) -> int:
    """The lowest offset where b overlaps none of `live` (placed buffers whose lifetimes overlap b's)."""
    candidate = 0
    for other in sorted(live, key=lambda p: offsets[p.name]):
        if candidate + b.size <= offsets[other.name]:
            break
        candidate = max(candidate, offsets[other.name] + other.size)
    return candidate


def _highest_fit(b: Buffer, live, offsets: dict[str, int], top: int) -> int | None:
    """The highest offset at most top - b.size where b overlaps none of `live`, or None."""
    candidate = top - b.size
    for other in sorted(live, key=lambda p: -(offsets[p.name] + p.size)):
        if candidate >= offsets[other.name] + other.size:
            break
        if candidate + b.size > offsets[other.name]:
            candidate = offsets[other.name] - b.size
    return candidate if candidate >= 0 else None


def _first_fit(ordered) -> dict[str, int]:
    offsets: dict[str, int] = {}
    placed: list[Buffer] = []
    for b in ordered:
        offsets[b.name] = _lowest_fit(b, [p for p in placed if p.overlaps_in_time(b)], offsets)
        placed.append(b)
    return offsets


def greedy_by_size(buffers) -> dict[str, int]:
    return _first_fit(sorted(buffers, key=lambda b: (-b.size, b.first, b.name)))


def greedy_by_conflicts(buffers) -> dict[str, int]:
    conflicts = {b.name: sum(b.overlaps_in_time(o) for o in buffers) for b in buffers}
    return _first_fit(sorted(buffers, key=lambda b: (-conflicts[b.name], -b.size, b.first, b.name)))


def greedy_by_breadth(buffers) -> dict[str, int]:
    steps = sorted({b.first for b in buffers} | {b.last for b in buffers})
    breadth = {s: sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps}
    ordered: dict[str, Buffer] = {}
    for s in sorted(steps, key=lambda s: (-breadth[s], s)):
        for b in sorted((b for b in buffers if b.first <= s <= b.last), key=lambda b: (-b.size, b.first, b.name)):
            ordered.setdefault(b.name, b)
    return _first_fit(ordered.values())


def two_ended(buffers) -> dict[str, int]:
    top = lower_bound(buffers)
    offsets: dict[str, int] = {}
    high: dict[str, bool] = {}  # placed at the top end
    placed: list[Buffer] = []
    # one-step buffers (scratch) after the outputs of their step, so each output sits opposite its input
    for b in sorted(buffers, key=lambda b: (b.first, b.first == b.last, -b.size, b.name)):
        live = [p for p in placed if p.overlaps_in_time(b)]
        follows = max(live, key=lambda p: (p.first, p.size, p.name), default=None)
        want_high = follows is not None and not high[follows.name]
        low, up = _lowest_fit(b, live, offsets), _highest_fit(b, live, offsets, top)
        if up is not None and (want_high or low + b.size > top):
            offsets[b.name], high[b.name] = up, True
        else:
            offsets[b.name], high[b.name] = low, False
        placed.append(b)
    return offsets


def exact(buffers, incumbent: dict[str, int] | None = None) -> dict[str, int] | None:
    """Branch and bound over the order of lowest-offset placements, searching only below the incumbent plan's
    arena (the best heuristic's); that plan if nothing smaller is found; None above EXACT_MAX_BUFFERS buffers."""
    if len(buffers) > EXACT_MAX_BUFFERS:
        return None
    bound = lower_bound(buffers)
    start = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))  # first leaf: greedy_by_size
    best: list = [None, None] if incumbent is None else [arena_size(buffers, incumbent), incumbent]
    nodes = 0

    def search(offsets: dict[str, int], placed: list[Buffer], rest: list[Buffer], height: int) -> None:
        nonlocal nodes
        if not rest:
            best[:] = [height, dict(offsets)]
            return
        for i, b in enumerate(rest):
            if nodes >= EXACT_NODES or best[0] == bound:
                return
            nodes += 1
            at = _lowest_fit(b, [p for p in placed if p.overlaps_in_time(b)], offsets)
            if best[0] is not None and max(height, at + b.size) >= best[0]:
                continue
            offsets[b.name] = at
            search(offsets, [*placed, b], rest[:i] + rest[i + 1 :], max(height, at + b.size))
            del offsets[b.name]

    search({}, [], start, 0)
    return best[1]


STRATEGIES: dict[str, Callable] = {
    "greedy_by_size": greedy_by_size,
    "greedy_by_conflicts": greedy_by_conflicts,
    "greedy_by_breadth": greedy_by_breadth,
    "two_ended": two_ended,
    "exact": exact,
}


def place(buffers) -> tuple[dict[str, int], str, dict[str, int]]:
    """(offsets, winning strategy, arena per strategy that ran): the smallest arena, ties to the earlier one."""
    results: dict[str, dict[str, int] | None] = {}
    sizes: dict[str, int] = {}
    for name, strategy in STRATEGIES.items():
        results[name] = exact(buffers, results[min(sizes, key=sizes.get)]) if name == "exact" else strategy(buffers)
        if results[name] is not None:
            sizes[name] = arena_size(buffers, results[name])
    winner = min(sizes, key=lambda name: sizes[name])  # min keeps the first of equal sizes (dict order)
    return results[winner], winner, sizes


# --- checks and explanations ---------------------------------------------------------------------------------


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


def peak_step(plan: ArenaPlan) -> tuple[int, list[Buffer]]:
    """The first step with the most live bytes, and its live buffers (largest first)."""
    if not plan.buffers:
        return 0, []
    steps = sorted({b.first for b in plan.buffers})
    step = max(steps, key=lambda s: (sum(b.size for b in plan.buffers if b.first <= s <= b.last), -s))
    live = [b for b in plan.buffers if b.first <= step <= b.last]
    return step, sorted(live, key=lambda b: (-b.size, b.name))


def buffer_label(program: Program, name: str) -> str:
    """A buffer's name for people: the tensor, or 'scratch of NODE'."""
    if name.startswith("::scratch"):
        return f"scratch of {program.calls[int(name[len('::scratch'):])].node}"
    return name


def parse_bytes(value: int | str) -> int:
    """65536, "65536", "64K", "64KB", "64KiB" (all 1024 bytes a K), "1M" -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = re.fullmatch(r"\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib)\s*", str(value), re.IGNORECASE)
    if m is None or int(m.group(1)) == 0:
        raise CompileError(f"--ram-limit {value!r}: expected a positive number of bytes, e.g. 65536, 64K or 64KiB")
    return int(m.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1 << 20}[m.group(2).lower()[:1]]


def check_ram_limit(program: Program, plan: ArenaPlan, limit: int) -> None:
    """Raise a one-line CompileError naming the peak step and its live tensors if the arena exceeds `limit`."""
    if plan.size <= limit:
        return
    step, live = peak_step(plan)
    tensors = ", ".join(f"'{buffer_label(program, b.name)}' {b.size:,} B" for b in live)
    raise CompileError(
        f"the activation arena needs {plan.size:,} bytes (lower bound {plan.lower_bound:,}), "
        f"{plan.size - limit:,} bytes over the RAM limit of {limit:,}; at the peak, step {step} "
        f"(node '{program.calls[step].node}'), live are {tensors}; shrink that layer or its input, or raise --ram-limit"
    )
