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

from .cformat import printable
from .ir import CompileError
from .lower import Program, concats_in_place, in_place_concats
from .schedule import Task, best_order

ALIGNMENT = 4  # every buffer starts on a 4-byte boundary (int16/int32 scratch, word loads)
EXACT_MAX_BUFFERS = 24
EXACT_NODES = 20_000


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


Part = tuple[int, int, int, int]  # (offset in its buffer, bytes, first step, last step)


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int
    first: int  # first step (call index) that writes it
    last: int  # last step that reads it
    # An overlap group's members at fixed offsets, each live only over its own steps (empty: one plain buffer);
    # size, first and last then span them all.
    parts: tuple[Part, ...] = ()

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last

    def pieces(self) -> tuple[Part, ...]:
        return self.parts or ((0, self.size, self.first, self.last),)

    def bytes_at(self, step: int) -> int:
        """The span of its bytes live at `step` (a group: from its lowest to its highest live member)."""
        live = [(at, at + n) for at, n, f, la in self.pieces() if f <= step <= la]
        return max(e for _, e in live) - min(a for a, _ in live) if live else 0


def _clash(a: Buffer, at_a: int, b: Buffer, at_b: int) -> bool:
    """Whether a at offset at_a and b at offset at_b hold a byte at the same step."""
    if not (a.overlaps_in_time(b) and at_a < at_b + b.size and at_b < at_a + a.size):
        return False
    return any(
        fa <= lb and fb <= la and at_a + pa < at_b + pb + nb and at_b + pb < at_a + pa + na
        for pa, na, fa, la in a.pieces()
        for pb, nb, fb, lb in b.pieces()
    )


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
    given_bound: int = 0  # lower bound and arena of the program as lowered (its order, every concat a copy)
    given_size: int = 0
    within: dict[str, tuple[str, int]] = field(default_factory=dict)  # group member -> (group buffer, offset in it)

    @property
    def reordered(self) -> bool:
        return list(self.order) != sorted(self.order)  # (a concat written wholly in place leaves a gap)

    def locate(self, program: Program, tensor: str) -> tuple[str, int, int]:
        """("arena", offset of its buffer, 0), ("input", k, 0) or ("output", k, 0) for any tensor or scratch name
        the calls use; the last item is the byte offset in that buffer of a slice (Program.slices)."""
        root, offset = program.base(tensor)
        if root in self.external:
            return (*self.external[root], offset)
        group, at = self.within.get(root, (root, 0))
        return "arena", self.offsets[group] + at, offset


def scratch_name(step: int) -> str:
    return f"::scratch{step}"


def plan(program: Program) -> tuple[Program, ArenaPlan]:
    """The program with its calls in the order, and its concats written in place or copied, that needs the
    smallest arena, and that arena's plan (its order indexes `program`'s calls; a concat call written wholly in
    place has no step).

    Writing a concat's inputs in place (lower.concats_in_place) saves the copy and its bytes at the concat, but
    keeps the whole output live from its first producer on, which can cost more while another branch runs. So
    all concats go in place, then each one in turn is copied instead (kept if the arena shrinks), and all copied
    is tried last; ties keep the concats in place (fewer calls)."""
    given = plan_memory(program)
    concats = in_place_concats(program)
    if not concats:
        return _final(*_ordered(program, tuple(range(len(program.calls))), given))
    results: dict[frozenset[str], tuple[Program, ArenaPlan]] = {}

    def trial(nodes: frozenset[str]) -> tuple[Program, ArenaPlan]:
        if nodes not in results:
            results[nodes] = _ordered(*concats_in_place(program, nodes), given)
        return results[nodes]

    chosen = frozenset(concats)
    for node in (*concats, None) if len(concats) > 1 else (None,):
        fewer = chosen - {node} if node is not None else frozenset()
        if trial(fewer)[1].size < trial(chosen)[1].size:
            chosen = fewer
    return _final(*trial(chosen))


def _final(program: Program, chosen: ArenaPlan) -> tuple[Program, ArenaPlan]:
    """The chosen program placed once more with every strategy: the trials compare heuristic placements only,
    since the exact search is the costly one (it can only shrink the winner's arena)."""
    full = plan_memory(program)  # the same heuristics run again, so never larger
    return program, replace(full, order=chosen.order, given_bound=chosen.given_bound, given_size=chosen.given_size)


def _ordered(program: Program, index: tuple[int, ...], given: ArenaPlan) -> tuple[Program, ArenaPlan]:
    """The program in the order that needs the smallest arena, and its plan. Two orders are tried besides the
    given one: the search's with overlapping outputs modelled, and with only plain in-place calls (an order built
    around non-overlapping buffers can still be the smaller one). `index`: per call, its index in the lowered
    program, which the plan's order refers to; `given`: the plan of the lowered program as lowered."""
    first = plan_memory(program, exact_search=False)
    best = program, first
    tried = {first.order}
    for overlap in (True, False):
        order = best_order(*_schedule_problem(program, overlap))
        if order in tried:
            continue
        tried.add(order)
        moved = replace(program, calls=tuple(program.calls[i] for i in order))
        better = plan_memory(moved, exact_search=False)
        if better.size < best[1].size:  # the search sees only lifetimes; the placement decides
            best = moved, replace(better, order=order)
    moved, chosen = best
    order = tuple(index[i] for i in chosen.order)
    return moved, replace(chosen, order=order, given_bound=given.lower_bound, given_size=given.size)


def plan_memory(program: Program, exact_search: bool = True) -> ArenaPlan:
    """Place the buffers of the program's calls, in their given order: every heuristic, then (with
    `exact_search`) the exact search seeded with the best of them.

    Overlapping an output with its input never adds bytes at that step, but ties the two buffers' offsets, and a
    chain of such ties drifts (each pointwise expansion sits its gap below its input). So merges are chosen
    greedily, the steps with the most live bytes first: one is kept if the arena of the heuristic placements does
    not grow. That choice, every merge, or none: the smallest arena wins (ties to the earlier).
    """
    external = _external(program)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for step, call in enumerate(program.calls):
        for t in call.inputs:
            last[program.root(t)] = step
        for t in call.outputs:
            r = program.root(t)
            first.setdefault(r, step)  # a concat output is live from the first producer of one of its slices
            last[r] = max(last.get(r, step), step)
            sizes[r] = program.sizes[r]
        if call.scratch_bytes:
            name = scratch_name(step)
            first[name], last[name], sizes[name] = step, step, call.scratch_bytes
    lifetimes = external, first, last, sizes

    def layout(steps) -> tuple[tuple[Buffer, ...], dict[str, tuple[str, str, int]]]:
        members = _merge_in_place(program, lifetimes, steps)
        groups: dict[str, list[Part]] = {}
        for name, (_, head, at) in members.items():
            groups.setdefault(head, []).append((at, _align(sizes[name]), first[name], last[name]))
        buffers = []
        for name in first:
            if name in external or name in members and members[name][1] != name:
                continue
            parts = tuple(sorted(groups.get(name, ())))
            if parts:
                end = max(at + n for at, n, _, _ in parts)
                buffers.append(Buffer(name, end, min(p[2] for p in parts), max(p[3] for p in parts), parts))
            else:
                buffers.append(Buffer(name, _align(sizes[name]), first[name], last[name]))
        return tuple(buffers), members

    candidates = _merge_steps(program, lifetimes)
    options: list[frozenset[int]] = [frozenset()]
    if candidates:
        plain = layout(set())[0]
        pressure = {s: sum(b.bytes_at(s) for b in plain) for s in candidates}
        chosen: set[int] = set()
        arena = arena_size(plain, place(plain, HEURISTICS)[0])
        for step in sorted(candidates, key=lambda s: (-pressure[s], s)):
            trial = layout(chosen | {step})[0]
            size = arena_size(trial, place(trial, HEURISTICS)[0])
            if size <= arena:
                chosen.add(step)
                arena = size
        options = list(dict.fromkeys([frozenset(chosen), frozenset(candidates), frozenset()]))
    results = []
    for steps in options:  # compared by the heuristics; the exact search then refines the winner only
        buffers, members = layout(steps)
        placed = place(buffers, HEURISTICS)
        results.append((arena_size(buffers, placed[0]), buffers, members, placed))
    size, buffers, members, (offsets, strategy, strategy_sizes) = min(results, key=lambda r: r[0])
    refined = exact(buffers, offsets) if exact_search else None
    if refined is not None:
        strategy_sizes = {**strategy_sizes, "exact": arena_size(buffers, refined)}
        if strategy_sizes["exact"] < size:
            offsets, strategy, size = refined, "exact", strategy_sizes["exact"]
    bound = lower_bound(buffers)
    order = tuple(range(len(program.calls)))
    merged = {name: src for name, (src, _, _) in members.items() if src}
    within = {name: (head, at) for name, (_, head, at) in members.items()}
    return ArenaPlan(
        size, bound, offsets, buffers, merged, external, strategy, strategy_sizes, order, bound, size, within
    )


def _external(program: Program) -> dict[str, tuple[str, int]]:
    external = {r: ("input", k) for k, r in enumerate(program.root(t) for t in program.user_inputs)}
    external.update({program.root(t): ("output", k) for k, t in enumerate(program.user_outputs)})
    return external


def _in_place_pair(program: Program, call, external, owner: dict[str, str], sizes) -> tuple[str, str, int] | None:
    """(buffer overwritten, output, gap) if the call may write its output over its input 0's bytes in the arena,
    starting `gap` bytes before them (KernelCall.overlap_gap)."""
    if call.overlap_gap is None or program.is_slice(call.outputs[0]):  # other writers share a slice's buffer
        return None
    src = program.root(call.inputs[0])
    src = owner.get(src, src)
    dst = program.root(call.outputs[0])
    if src in external or dst in external or dst == src:
        return None
    return src, dst, call.overlap_gap


def _member_at(at_in: int, gap: int, size_out: int, lo: int, hi: int) -> int:
    """Where an output goes relative to its group, which spans [lo, hi) and holds its input at `at_in`: at most
    `at_in - gap` (any larger gap is safe too), as little outside [lo, hi) as possible, on the alignment."""
    return min((at_in - gap) // ALIGNMENT * ALIGNMENT, max(hi - size_out, lo))


def _merge_pair(program: Program, step: int, lifetimes) -> tuple[str, str, int] | None:
    """(input, output, gap) if the call at `step` may overlap its output with its input: the input dies there, the
    output is first written there, and both live in the arena."""
    external, first, last, sizes = lifetimes
    pair = _in_place_pair(program, program.calls[step], external, {}, sizes)
    if pair is None or last[pair[0]] != step or first[pair[1]] != step:
        return None
    return pair


def _merge_steps(program: Program, lifetimes) -> list[int]:
    return [step for step in range(len(program.calls)) if _merge_pair(program, step, lifetimes) is not None]


def _merge_in_place(program: Program, lifetimes, steps) -> dict[str, tuple[str, str, int]]:
    """The calls at `steps` write their output over their input (see _merge_pair). Merged buffers form one group
    (one Buffer under its first member's name, one part per member) with fixed relative offsets. A group has one
    live member at a time (each merge ends its input), so its members share bytes only at a merge step, within
    the kernel's gap. Returns member -> (the buffer it overwrites or "", group, offset in the group).
    """
    sizes = lifetimes[3]
    at: dict[str, int] = {}  # member -> offset relative to its group's first member
    group: dict[str, str] = {}
    span: dict[str, tuple[int, int]] = {}  # group -> [lo, hi) relative to its first member
    overwrites: dict[str, str] = {}
    for step in sorted(steps):
        src, dst, gap = _merge_pair(program, step, lifetimes)
        head = group.setdefault(src, src)
        at.setdefault(src, 0)
        lo, hi = span.get(head, (0, _align(sizes[src])))
        at[dst] = _member_at(at[src], gap, _align(sizes[dst]), lo, hi)
        span[head] = (min(lo, at[dst]), max(hi, at[dst] + _align(sizes[dst])))
        group[dst], overwrites[dst] = head, src
    return {name: (overwrites.get(name, ""), head, at[name] - span[head][0]) for name, head in group.items()}


def _schedule_problem(program: Program, overlap: bool = True) -> tuple[list[Task], list[int]]:
    """The calls as schedule.Tasks over buffer ids, with the caller's buffers at 0 bytes.

    An overlapping call whose input has no other reader overwrites it in every order, so its output costs only
    the bytes the pair needs beyond its input (0 in place) and its readers keep the overwritten buffer alive;
    other merges depend on the order and are left out, and a chain's drift is not modelled (the search then
    misjudges, and plan() compares the real arenas). overlap=False models only plain in-place calls (gap 0).
    """
    external = _external(program)
    ids: dict[str, int] = {}
    sizes: dict[str, int] = {}
    writers: dict[str, int] = {}
    for call in program.calls:
        for t in (*call.inputs, *call.outputs):
            r = program.root(t)
            ids.setdefault(r, len(ids))
            sizes.setdefault(r, program.sizes[r])
        for r in {program.root(t) for t in call.outputs}:
            writers[r] = writers.get(r, 0) + 1
    readers: dict[str, int] = {}
    for call in program.calls:
        for r in {program.root(t) for t in call.inputs}:
            readers[r] = readers.get(r, 0) + 1
    owner: dict[str, str] = {}  # output -> the buffer whose bytes it reuses
    extra: dict[str, int] = {}  # output -> bytes its pair spans beyond the input
    for call in program.calls:
        pair = _in_place_pair(program, call, external, owner, sizes)
        if pair is not None and readers.get(program.root(call.inputs[0])) == 1:
            src, dst, gap = pair
            size_in, size_out = _align(sizes[program.root(call.inputs[0])]), _align(sizes[dst])
            if not overlap and (gap != 0 or size_out > size_in):
                continue
            at = _member_at(0, gap, size_out, 0, size_in)
            owner[dst], extra[dst] = src, max(size_in, at + size_out) - min(0, at) - size_in
    byte_sizes = [0 if r in external else extra[r] if r in owner else _align(sizes[r]) for r in ids]
    tasks = []
    for call in program.calls:
        reads = [ids[program.root(t)] for t in call.inputs]
        reads += [ids[owner[program.root(t)]] for t in call.inputs if program.root(t) in owner]
        outs = [program.root(t) for t in call.outputs]
        writes = tuple(ids[r] for r in outs if writers[r] == 1)
        fills = tuple(ids[r] for r in outs if writers[r] > 1)  # the slices of a concat output and its copy
        tasks.append(Task(tuple(reads), writes, _align(call.scratch_bytes), fills))
    return tasks, byte_sizes


# --- placement -------------------------------------------------------------------------------------------------


def arena_size(buffers, offsets: dict[str, int]) -> int:
    return max((offsets[b.name] + b.size for b in buffers), default=0)


def _starts(buffers) -> set[int]:
    return {f for b in buffers for _, _, f, _ in b.pieces()}  # the live bytes only rise where a part starts


def lower_bound(buffers) -> int:
    """The largest total of bytes live at one step."""
    return max((sum(b.bytes_at(s) for b in buffers) for s in _starts(buffers)), default=0)


def _fits(b: Buffer, at: int, live, offsets: dict[str, int]) -> bool:
    return at >= 0 and not any(_clash(b, at, o, offsets[o.name]) for o in live)


def _touching(b: Buffer, live, offsets: dict[str, int], above: bool) -> set[int]:
    """Offsets of b that put one of its parts right above (or below) a part of `live` it meets in time."""
    return {
        offsets[o.name] + (q + m - p if above else q - p - n)
        for o in live
        for q, m, fq, lq in o.pieces()
        for p, n, fp, lp in b.pieces()
        if fp <= lq and fq <= lp
    }


def _lowest_fit(b: Buffer, live, offsets: dict[str, int]) -> int:
    """The lowest offset where b overlaps none of `live` (placed buffers whose lifetimes overlap b's)."""
    if b.parts or any(o.parts for o in live):  # the lowest fit is 0 or right above some part
        return min(c for c in {0} | _touching(b, live, offsets, True) if _fits(b, c, live, offsets))
    candidate = 0
    for other in sorted(live, key=lambda p: offsets[p.name]):
        if candidate + b.size <= offsets[other.name]:
            break
        candidate = max(candidate, offsets[other.name] + other.size)
    return candidate


def _highest_fit(b: Buffer, live, offsets: dict[str, int], top: int) -> int | None:
    """The highest offset at most top - b.size where b overlaps none of `live`, or None."""
    if b.parts or any(o.parts for o in live):  # the highest fit is top - b.size or right below some part
        fit = [c for c in {top - b.size} | _touching(b, live, offsets, False) if c <= top - b.size]
        return max((c for c in fit if _fits(b, c, live, offsets)), default=None)
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
    breadth = {s: sum(b.bytes_at(s) for b in buffers) for s in steps}
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


HEURISTICS = ("greedy_by_size", "greedy_by_conflicts", "greedy_by_breadth", "two_ended")


def place(buffers, strategies=tuple(STRATEGIES)) -> tuple[dict[str, int], str, dict[str, int]]:
    """(offsets, winning strategy, arena per strategy that ran): the smallest arena, ties to the earlier one."""
    results: dict[str, dict[str, int] | None] = {}
    sizes: dict[str, int] = {}
    for name in strategies:
        strategy = STRATEGIES[name]
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
            if a.overlaps_in_time(b) and _clash(a, plan.offsets[a.name], b, plan.offsets[b.name]):
                pairs.append((a.name, b.name))
    return pairs


def peak_step(plan: ArenaPlan) -> tuple[int, list[Buffer]]:
    """The first step with the most live bytes, and its live buffers (largest first)."""
    if not plan.buffers:
        return 0, []
    steps = sorted(_starts(plan.buffers))
    step = max(steps, key=lambda s: (sum(b.bytes_at(s) for b in plan.buffers), -s))
    live = [b for b in plan.buffers if b.bytes_at(step)]
    return step, sorted(live, key=lambda b: (-b.size, b.name))


def buffer_label(program: Program, name: str) -> str:
    """A buffer's name for people: the tensor, or 'scratch of NODE'."""
    if name.startswith("::scratch"):
        return f"scratch of {printable(program.calls[int(name[len('::scratch'):])].node)}"
    return printable(name)


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
        f"(node '{printable(program.calls[step].node)}'), live are {tensors}; shrink that layer or its input, or raise --ram-limit"
    )
