"""The planner scales with cores: for the measured and the declared costs of the whole corpus, its planned makespan
on N workers is within 1.15x of the work over N (the unsplit plan's worker-seconds, start-ups included: what a split
adds counts against it), for N = 2, 4, 8 and 16. And a run split across machines is dealt the same way on each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.corpus import bundled
from conformance.corpus.cases import load
from conformance.model.names import DTYPES, MODES
from conformance.run import pool, shard_costs
from conformance.run.balance import makespan, partition, spread
from conformance.run.runner import Selection

CASES = load([bundled.cases_dir()])
FRAMEWORKS = ("numpy", "torch", "tensorflow", "jax", "keras-jax", "keras-torch")
COSTS = Path(__file__).resolve().parent / "data" / "costs"


def _measured() -> dict[str, dict]:
    """What a cold run of the whole corpus on the CI machine measured (its results file's `timing`)."""
    timing = json.loads((COSTS / "cold-run-timing.json").read_text())
    return shard_costs.entries_from({k: v for k, v in timing.items() if isinstance(v, dict)})


@pytest.mark.parametrize("costs", ["declared", "measured"])
@pytest.mark.parametrize("workers", [2, 4, 8, 16])
def test_the_planned_makespan_is_within_15_percent_of_the_work_over_n(costs, workers):
    measured = {} if costs == "declared" else _measured()
    assert costs == "declared" or measured
    sel = Selection(FRAMEWORKS, DTYPES, ("cpu",), MODES)
    work = sum(s.cost + pool.START_S for s in pool.plan(sel, CASES, None, measured))
    shards = pool.plan(sel, CASES, workers, measured)
    span = makespan([s.cost + pool.START_S for s in shards], workers)
    assert span <= 1.15 * work / workers, (span, work / workers, [(s.name, round(s.cost)) for s in shards[:5]])
    # every (framework, mode, dtype) and case is in exactly one shard: splitting lost and doubled nothing
    cover = [(s.framework, m, d, c.full_id) for s in shards for m in s.modes for d in s.dtypes for c in CASES
             if s.selection(sel).wants_case(c.full_id) and c.dtypes and d in c.dtypes]
    assert len(cover) == len(set(cover))


def test_a_split_that_only_adds_start_ups_is_not_taken():
    items = [10.0, 10.0]
    assert spread(items, lambda c: c + 6.0, lambda c: [c / 2, c / 2], 2) == items


def test_makespan_is_list_scheduling_longest_first():
    assert makespan([3, 3, 2, 2, 2], 2) == 7  # 3+2+2 | 3+2
    assert makespan([5], 4) == 5


def test_partition_is_deterministic_and_balanced():
    items = [("a", 5.0), ("b", 5.0), ("c", 4.0), ("d", 3.0), ("e", 3.0)]
    bins = partition(items, lambda i: i[1], lambda i: i[0], 2)
    assert bins == partition(list(reversed(items)), lambda i: i[1], lambda i: i[0], 2)
    # longest first, each to the lightest bin (ties: the lowest): a|b, c to the first (both 5: the lowest), d and e to the second
    assert [[n for n, _ in b] for b in bins] == [["a", "c"], ["b", "d", "e"]]
