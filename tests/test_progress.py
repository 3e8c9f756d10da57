"""What a run says in a log (stderr not a terminal): a line per tenth of the estimated work, a heartbeat at least
every HEARTBEAT_S while workers run, a 100% line when every shard has ended, and skipped devices said once."""

from __future__ import annotations

import io

from conformance.app.progress import HEARTBEAT_S, Progress
from conformance.run.events import Done, Info, Lost, Plan, ShardProgress, Tick


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress():
    clock, stream = Clock(), io.StringIO()
    return Progress(stream, clock=clock), clock, stream


def test_a_silent_worker_still_gets_a_line_every_heartbeat():
    p, clock, stream = _progress()
    p(Plan((("torch/compiled", 500.0), ("numpy/eager", 10.0))))
    for second in range(0, 400, 1):  # the pool ticks twice a second; one a second is enough here
        clock.now = float(second)
        p(Tick(("torch/compiled",)))
    stamps = [float(line.split("s]")[0].strip("[ ")) for line in stream.getvalue().splitlines()]
    gaps = [b - a for a, b in zip([0.0, *stamps], stamps)]
    assert stamps and max(gaps) <= HEARTBEAT_S and all("still running torch/compiled" in line for line in stream.getvalue().splitlines())


def test_the_estimate_weighs_shards_by_their_planned_cost():
    p, clock, stream = _progress()
    p(Plan((("slow", 900.0), ("fast", 100.0))))
    clock.now = 10.0
    p(ShardProgress("fast", 10, 10))  # all of the cheap shard: a tenth of the work, not half of the shards
    p(Done("fast"))
    assert p.fraction() == 0.1
    clock.now = 100.0
    p(ShardProgress("slow", 5, 10))
    assert p.fraction() == 0.55 and "about 82 s left" in p.overall()


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
