"""Balancing a run's shards over workers and machines, on their estimated seconds.

The pool starts shards longest first, each on the worker that frees first (list scheduling in LPT order), so a
plan's wall time on N workers is what `makespan` computes. A shard much longer than the others' share bounds the
run however many cores there are: `spread` splits the longest shard (by its cases, through a caller's `split`)
while that shortens the planned makespan, paying a worker's start-up for each new piece. `partition` deals shards
into machines for `conformance run --shard K/N` the same way, deterministically.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# Splitting stops after this many pieces: a plan is made in well under a second, and more workers than this would
# spend more on imports than they save.
MAX_SPLITS = 256


def makespan(costs: Sequence[float], workers: int) -> float:
    """The wall time of running these costs longest first, each on the worker that frees first."""
    ends = [0.0] * max(1, workers)
    for cost in sorted(costs, reverse=True):
        heapq.heapreplace(ends, ends[0] + cost)
    return max(ends)


def spread(items: list[T], cost: Callable[[T], float], split: Callable[[T], list[T] | None], workers: int) -> list[T]:
    """Split the longest item again and again (split returns its pieces, or None where it cannot be split) and keep
    the plan with the shortest makespan on `workers`, the fewest pieces among equals. Each piece's cost carries its
    own start-up, so a split that only adds imports never wins; splitting goes on past a step that gains nothing
    (two equal longest items need both split before the makespan moves) until the longest item is a small share
    of a worker's load."""
    items = sorted(items, key=lambda i: -cost(i))
    best, best_span = items, makespan([cost(i) for i in items], workers)
    for _ in range(MAX_SPLITS):
        if not items or cost(items[0]) * 8 < sum(cost(i) for i in items) / max(1, workers):
            break
        pieces = split(items[0])
        if not pieces:
            break
        items = sorted(pieces + items[1:], key=lambda i: -cost(i))
        span = makespan([cost(i) for i in items], workers)
        if span < best_span - 1e-9:
            best, best_span = items, span
    return best


def partition(items: Sequence[T], cost: Callable[[T], float], key: Callable[[T], str], parts: int) -> list[list[T]]:
    """Items dealt into `parts` bins of nearly equal cost: longest first, each to the lightest bin (ties: the lowest
    bin, and items of equal cost in `key` order), so every machine that plans the same selection deals the same."""
    bins: list[list[T]] = [[] for _ in range(parts)]
    loads = [(0.0, i) for i in range(parts)]
    for item in sorted(items, key=lambda i: (-cost(i), key(i))):
        load, index = heapq.heappop(loads)
        bins[index].append(item)
        heapq.heappush(loads, (load + cost(item), index))
    return bins
