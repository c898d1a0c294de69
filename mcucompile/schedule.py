"""Operator reordering: the execution order of tasks (kernel calls) with the smallest peak of live bytes.

The problem is abstract here; memory.py builds it from a Program. Tasks read and write buffers (ids); a buffer
holds its bytes from the step of its first writer to the step of its last reader or writer, and a task also
holds its scratch bytes during its own step. Task j must follow task i (i < j in the given order) when j reads
what i writes, or either overwrites what the other touches. Tasks that fill disjoint parts of one buffer (the
slices of a concat output) may run in any order among themselves.

The search (Liberis & Lane's operator reordering, as dynamic programming) runs over the sets of executed tasks:
the bytes live after a set ran depend only on the set, so the best order is a shortest "bottleneck" path
through a lattice whose layer k holds the sets of k tasks. A chain has one set per layer; parallel branches of
lengths a and b have at most min(a, b) + 1. When a layer holds more than `width` sets, only the `width` with
the lowest peak so far (then the fewest live bytes) go on: a beam search with bounded time instead of the exact
one. The given order is kept unless the search finds a strictly lower peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 256  # sets kept per layer; exact whenever no layer of the lattice is wider


@dataclass(frozen=True)
class Task:
    reads: tuple[int, ...]  # buffer ids
    writes: tuple[int, ...]
    scratch: int = 0  # bytes held during this task's step only
    fills: tuple[int, ...] = ()  # buffers it writes a part of, disjoint from the other fillers' parts


def dependencies(tasks: Sequence[Task]) -> list[int]:
    """Per task, the bitmask of the earlier tasks it must follow (read-after-write, write-after-read/write; fills
    follow whole writes and reads, not each other)."""
    writers: dict[int, int] = {}
    fillers: dict[int, int] = {}
    readers: dict[int, int] = {}
    deps = []
    for i, t in enumerate(tasks):
        d = 0
        for b in t.reads:
            d |= writers.get(b, 0) | fillers.get(b, 0)
        for b in t.writes:
            d |= writers.get(b, 0) | readers.get(b, 0) | fillers.get(b, 0)
        for b in t.fills:
            d |= writers.get(b, 0) | readers.get(b, 0)
        deps.append(d)
        for b in t.reads:
            readers[b] = readers.get(b, 0) | 1 << i
        for b in t.writes:
            writers[b] = writers.get(b, 0) | 1 << i
        for b in t.fills:
            fillers[b] = fillers.get(b, 0) | 1 << i
    return deps


class _Model:
    """Bytes live per set of executed tasks, and the bytes of one step, with sets as int bitmasks."""

    def __init__(self, tasks: Sequence[Task], sizes: Sequence[int]):
        self.tasks, self.sizes = tasks, sizes
        self.writers = [0] * len(sizes)
        self.users = [0] * len(sizes)
        for i, t in enumerate(tasks):
            for b in (*t.writes, *t.fills):
                self.writers[b] |= 1 << i
            for b in (*t.reads, *t.writes, *t.fills):
                self.users[b] |= 1 << i
        self.touched = [sorted(set(t.reads) | set(t.writes) | set(t.fills)) for t in tasks]
        self.written = [sorted(set(t.writes) | set(t.fills)) for t in tasks]

    def step(self, done: int, live: int, c: int) -> tuple[int, int]:
        """(bytes live during task c after the set `done` ran with `live` bytes, bytes live after c)."""
        new = sum(self.sizes[b] for b in self.written[c] if not self.writers[b] & done)
        after = done | 1 << c
        freed = sum(self.sizes[b] for b in self.touched[c] if self.writers[b] & after and not self.users[b] & ~after)
        return live + new + self.tasks[c].scratch, live + new - freed


def peak(order: Sequence[int], tasks: Sequence[Task], sizes: Sequence[int]) -> int:
    """The largest number of bytes live at one step when the tasks run in `order`."""
    model, done, live, top = _Model(tasks, sizes), 0, 0, 0
    for c in order:
        during, live = model.step(done, live, c)
        top = max(top, during)
        done |= 1 << c
    return top


def best_order(tasks: Sequence[Task], sizes: Sequence[int], width: int = WIDTH) -> tuple[int, ...]:
    """A valid order of the tasks whose peak is the lowest found, never above the given order's (0, 1, ...)."""
    n = len(tasks)
    given = tuple(range(n))
    deps = dependencies(tasks)
    followers: list[list[int]] = [[] for _ in range(n)]
    for j, d in enumerate(deps):
        for i in range(j):
            if d >> i & 1:
                followers[i].append(j)
    model = _Model(tasks, sizes)
    # layer: executed set -> (peak so far, live bytes, ready tasks); came_from: set -> (previous set, task)
    layer = {0: (0, 0, tuple(j for j in range(n) if not deps[j]))}
    came_from: dict[int, tuple[int, int]] = {}
    for _ in range(n):
        following: dict[int, tuple[int, int, tuple[int, ...]]] = {}
        for done, (top, live, ready) in layer.items():
            for c in ready:
                during, after = model.step(done, live, c)
                nxt = done | 1 << c
                best = following.get(nxt)
                if best is None or max(top, during) < best[0]:
                    newly = tuple(j for j in followers[c] if not deps[j] & ~nxt)
                    following[nxt] = (max(top, during), after, tuple(sorted((*(r for r in ready if r != c), *newly))))
                    came_from[nxt] = (done, c)
        if len(following) > width:  # stable sort: ties keep the (deterministic) order of discovery
            following = dict(sorted(following.items(), key=lambda kv: kv[1][:2])[:width])
        layer = following
    order, done = [], (1 << n) - 1
    while done:
        done, c = came_from[done]
        order.append(c)
    order.reverse()
    return tuple(order) if peak(order, tasks, sizes) < peak(given, tasks, sizes) else given
