"""What a run says in a log (stderr not a terminal): a line per tenth of the estimated work, a heartbeat at least
every HEARTBEAT_S while workers run, a 100% line when every shard has ended, and skipped devices said once."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

import pytest

from conformance.app.progress import HEARTBEAT_S, Progress, makespan
from conformance.run.events import Done, Finished, Imported, Info, Lost, Plan, Planned, ShardProgress, Tick


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress():
    clock, stream = Clock(), io.StringIO()
    return Progress(stream, clock=clock), clock, stream


def _one_shard(name: str, planned: float, units: list[tuple[float, int, int]]) -> Progress:
    """A run of one shard of `planned` seconds, started at 0 s, whose units done were (when, done, of total)."""
    p, clock, stream = _progress()
    p(Plan(((name, planned),)))
    p(Tick((name,)))
    for when, done, total in units:
        clock.now = when
        p(ShardProgress(name, done, total))
    return p


def test_a_silent_worker_still_gets_a_line_every_heartbeat():
    p, clock, stream = _progress()
    p(Plan((("torch/compiled", 500.0), ("numpy/eager", 10.0))))
    for second in range(0, 400, 1):  # the pool ticks twice a second; one a second is enough here
        clock.now = float(second)
        p(Tick(("torch/compiled",)))
    lines = stream.getvalue().splitlines()
    stamps = [float(line.split("s]")[0].strip("[ ")) for line in lines]
    gaps = [b - a for a, b in zip([0.0, *stamps], stamps)]
    # the share done moves with the clock, so a tenth passed is a line too; between them, the heartbeat
    assert stamps and max(gaps) <= HEARTBEAT_S
    assert all("still running torch/compiled" in line or "0% overall" in line for line in lines[1:]), lines
    assert any("still running torch/compiled" in line for line in lines)


def test_the_estimate_weighs_shards_by_their_planned_cost():
    """The cheap shard ended in 50 s of its planned 100: this machine runs at half the plan's seconds. The expensive
    one, 50 s into its 900 planned (450 at that pace), has 400 s left; done, of the plan's 1,000 s: 100 + 900 x 50/450."""
    p, clock, stream = _progress()
    p(Plan((("slow", 900.0), ("fast", 100.0)), workers=2))
    p(Tick(("slow", "fast")))
    clock.now = 50.0
    p(ShardProgress("fast", 10, 10))
    p(Done("fast"))
    assert p.pace() == 0.5 and p.seconds_left() == 400.0
    assert p.fraction() == 0.2 and "about 400 s left" in p.overall()


def test_cheap_first_units_do_not_make_a_shard_look_nearly_done():
    """A shard's first units can cost little against its later ones (its large cases come last): nine tenths of its
    units in 10 s of a planned 100 leave 90 s, not the 1 s that counting units would say."""
    p = _one_shard("tf/eager", 100.0, [(10.0, 9, 10)])
    assert p.seconds_left() == 90.0 and p.fraction() == 0.1


def test_a_shard_within_its_plan_weighs_its_own_units_by_the_square_of_their_share():
    """Within its plan (100 s at the plan's pace), a shard's own units count by the square of their share done: its
    first tenth ended at 10 s, eight tenths by 50 s, so its units say the last two tenths take 2/7 of 40 s; its plan says
    50 s; weighed 0.64 to the units, 0.36 to the plan."""
    p = _one_shard("jax/compiled", 100.0, [(10.0, 1, 10), (50.0, 8, 10)])
    assert p.seconds_left() == pytest.approx(0.36 * 50.0 + 0.64 * 40.0 * 2 / 7)


def test_a_shard_past_its_plan_goes_by_its_units():
    """Past its planned time, a shard's units say what is left: three quarters in 150 s, 50 s more."""
    p = _one_shard("tf/eager", 100.0, [(150.0, 3, 4)])
    assert p.seconds_left() == 50.0 and p.fraction() == 0.75


def test_past_its_plan_a_shard_goes_at_the_pace_of_its_units_after_the_first():
    """A compiled shard's first unit pays for the worker's start-up and the compiler's first use (PyTorch's first
    compiled call: 22 s of a 55 s quick shard). Its first of ten units ended at 100 s, five more by 150 s: the other
    four take 40 s at 10 s each, not the 100 s that the time so far over the share done would say."""
    p = _one_shard("torch/compiled", 100.0, [(100.0, 1, 10), (150.0, 6, 10)])
    assert p.seconds_left() == 40.0


def test_the_unit_under_way_is_not_counted_whole():
    """Past its plan, a shard's units after the first ended at 100 s and 190 s: eight in 90 s, 11.25 s each. On its
    last unit, 5 s after the ninth ended, 6.25 s are left, not a whole unit; a last unit slower than the others says
    nothing is left of the shard rather than more than a unit (a cold quick run that ended on PyTorch's last unit
    said 16 s for 12, replayed)."""
    p = _one_shard("torch/compiled", 100.0, [(100.0, 1, 10), (190.0, 9, 10)])
    p.clock.now = 195.0
    assert abs(p.seconds_left() - 6.25) < 1e-9  # exact but for binary rounding
    p.clock.now = 210.0
    assert p.seconds_left() == 0.0


def test_a_slower_machine_stretches_the_shards_not_started():
    """The first shard took 150 s of its planned 100: the two not started are expected to take 150 s each."""
    p, clock, stream = _progress()
    p(Plan((("a", 100.0), ("b", 100.0), ("c", 100.0)), workers=1))
    p(Tick(("a",)))
    clock.now = 150.0
    p(Done("a"))
    assert p.pace() == 1.5 and p.seconds_left() == 300.0


def test_before_any_shard_ends_the_imports_say_the_pace():
    """No shard has ended, but both workers imported their frameworks: in 6 s of an expected 4 and 3 s of an
    expected 2 (9 of 6: a pace of 1.5). Each shard is expected to take its plan at that pace (150 and 60 s, of which 10
    have run); the one not started, 30 s. A shard with no expected import says nothing; a resumed worker's import
    counts nothing; and once a shard has ended, its seconds say the pace."""
    p, clock, stream = _progress()
    p(Plan((("a", 100.0), ("b", 40.0), ("c", 20.0), ("d", 20.0)), workers=2, imports=(("a", 4.0), ("b", 2.0), ("d", 1.0))))
    p(Tick(("a", "b")))
    assert p.pace() == 1.0  # nothing measured yet: the plan's own pace
    clock.now = 10.0
    p(Imported("a", 6.0))
    p(Imported("b", 3.0))
    p(Imported("c", 1.0))  # not expected: nothing to compare
    p(Imported("a/resumed-1", 60.0))  # the shard's first worker's import is the one compared
    assert p.pace() == 1.5
    assert p.seconds_left() == makespan([140.0, 50.0, 30.0, 30.0], 2)
    clock.now = 50.0
    p(Done("b"))
    assert p.pace() == 50.0 / 40.0  # an ended shard's seconds are the better measure


def test_a_100_percent_line_and_skipped_devices_once_at_the_end():
    p, clock, stream = _progress()
    p(Plan((("a", 5.0), ("b", 5.0))))
    for name in ("a", "b"):
        p(Info(name, {"skipped_devices": {"gpu": f"no gpu visible to {name}"}}))
    p(Done("a"))
    assert "100%" not in stream.getvalue()
    p(Lost("b", "crashed"))
    lines = stream.getvalue().splitlines()
    assert "100% overall: every shard ended (1 lost)" in lines[-2] and lines[-1].endswith("no gpu visible to a, b: skipped")
    assert sum("no gpu visible" in line for line in lines) == 1


def test_an_estimate_from_the_start_by_the_plan():
    """Before any record, the plan's own estimate: its shards taken in order by the first free worker (100 s on
    one, 60 + 50 s on the other: 110 s)."""
    p, clock, stream = _progress()
    p(Plan((("a", 100.0), ("b", 60.0), ("c", 50.0)), workers=2))
    assert stream.getvalue().splitlines()[0] == "[  0.0s] planned: about 110 s (3 shards on 2 workers)"
    assert makespan([100.0, 60.0, 50.0], 2) == 110.0 and makespan([100.0, 60.0, 50.0], 1) == 210.0


def test_the_last_long_shard_is_not_spread_over_idle_workers():
    """Two workers; the short shards are done and the long one is half done, all at the plan's pace: 200 s are left
    (one worker on the long shard), not the 100 s that the share of work left over the elapsed pace would say."""
    p, clock, stream = _progress()
    p(Plan((("long", 400.0), ("s1", 100.0), ("s2", 100.0)), workers=2))
    p(Tick(("long", "s1")))
    clock.now = 100.0
    p(Done("s1"))
    p(Tick(("long", "s2")))
    clock.now = 200.0
    p(Done("s2"))
    p(ShardProgress("long", 5, 10))
    assert p.seconds_left() == 200.0 and "about 200 s left" in p.overall()


def test_a_shard_resumed_after_a_crash_keeps_its_progress_and_ends_once():
    """A worker dies in a call (recorded as that call's error) at 40 s of its planned 100; the new worker goes on with
    the shard's clock (60 s left at 40 s, not a fresh 100), and the run's 100% line comes when the resumed worker is
    done, not when the first one died."""
    p, clock, stream = _progress()
    p(Plan((("paddle/eager", 100.0),), workers=1))
    p(Tick(("paddle/eager",)))
    clock.now = 40.0
    p(ShardProgress("paddle/eager", 4, 10))
    p(Lost("paddle/eager", "killed by signal SIGABRT", resumed=True))
    p(Tick(("paddle/eager/resumed-1",)))
    assert p.fraction() == 0.4 and p.seconds_left() == 60.0 and "100%" not in stream.getvalue()
    clock.now = 100.0
    p(ShardProgress("paddle/eager/resumed-1", 6, 6))
    p(Done("paddle/eager/resumed-1"))
    assert p.fraction() == 1.0 and "100% overall: every shard ended" in stream.getvalue().splitlines()[-1]


def test_a_plan_of_no_shard_says_nothing_and_breaks_nothing():
    """A machine's share of a run split across machines may hold no shard: no estimate, no error."""
    p, clock, stream = _progress()
    p(Plan((), workers=1))
    assert stream.getvalue() == "" and p.seconds_left() is None


# Six cold quick runs' progress events as the display got them, recorded live on the 2-core Xeon VM on a day it ran
# 1.3-1.4 times slower than the costs its class declares (94-102 s against their median 71 s).
RECORDED = Path(__file__).resolve().parent / "data" / "progress" / "quick-run-events-intel-avx512.json.gz"
KINDS = {kind.__name__: kind for kind in (Planned, Plan, Tick, ShardProgress, Done, Lost, Imported, Finished)}


def _event(kind: str, fields: dict):
    """A recorded event as the display gets it (JSON has lists where the events have tuples)."""
    return KINDS[kind](**{k: tuple(map(tuple, v)) if k in ("costs", "imports") else tuple(v) if isinstance(v, list) else v
                          for k, v in fields.items()})


def _log_errors(events: list) -> tuple[list[tuple[float, int, float]], float]:
    """Replay a run's events through the display: each log line's (time, percent, error of the time left against the
    time the run's last shard ended), and when the first estimate was said."""
    p, clock, stream = _progress()
    for when, kind, fields in events:
        clock.now = when
        p(_event(kind, fields))
    end = max(when for when, kind, _ in events if kind in ("Done", "Lost"))
    lines = [re.match(r"\[\s*([\d.]+)s\] (?:planned: about (\d+) s|(\d+)% overall, about (\d+) s left)", line)
             for line in stream.getvalue().splitlines()]
    said = [(float(m[1]), int(m[3]), int(m[4])) for m in lines if m and m[3]]
    first = min(float(m[1]) for m in lines if m and (m[2] or m[3]))
    return [(at, percent, (left - (end - at)) / (end - at)) for at, percent, left in said], first


def test_recorded_cold_quick_runs_on_a_slower_day_are_estimated_within_a_quarter_from_a_fifth_on():
    """The progress a newcomer's first run shows, replayed from six live runs (the same lines their logs had): a first
    estimate at the start, and from 20% on every line's time left within 25% of the truth (they were within 6-18%).
    Before any shard ends, the workers' imports say the pace (1.1-1.6 times the declared in these runs); without
    them, the plan's own pace put their 20% lines 24-30% short, five of the six beyond 25%."""
    runs = json.loads(gzip.decompress(RECORDED.read_bytes()))["runs"]
    worst = {}
    for name, run in runs.items():
        errors, first = _log_errors(run["events"])
        assert first <= 60.0 and len([e for e in errors if e[1] >= 20]) >= 7, name
        worst[name] = max(abs(e) for _, percent, e in errors if percent >= 20)
    assert all(w <= 0.25 for w in worst.values()), worst
    unpaced = [_log_errors([[when, kind, {**fields, "imports": []} if kind == "Plan" else fields] for when, kind, fields in run["events"]])[0]
               for run in runs.values()]
    assert sum(next(e for _, percent, e in errors if percent >= 20) < -0.25 for errors in unpaced) == 5
