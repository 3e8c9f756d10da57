"""The live display of a run: one status line on a terminal; in a log (CI), a line per tenth of the work, a heartbeat
at least every minute, a 100% line and the devices that were skipped, said once."""

from __future__ import annotations

import sys
import time

from ..model.record import unexplained
from ..model.status import Status
from ..run.events import Done, Event, Finished, Info, Lost, Plan, Planned, RecordMade, ShardProgress, Tick, planned_shard

# A CI log that stays silent for minutes looks hung: no silence over 60 s while workers run. The parent looks at the
# clock between workers' messages, which can keep it busy for a second or two (a cold CI run went 61.9 s with the
# heartbeat at 60 s), so the heartbeat aims 10 s early.
HEARTBEAT_S = 50.0


# Below this share of the planned work done, the pace seen so far says more about start-up (imports, first compiles)
# than about the run: the estimate is the plan's own.
PACE_FROM = 0.05


def makespan(left: list[float], workers: int) -> float:
    """When the last of these pieces of work ends, each taken in order by the first free of `workers` (the pool's own
    rule): the run's remaining time, where the pieces are what is left of each shard in seconds, running ones first."""
    free = [0.0] * max(1, workers)
    for seconds in left:
        i = free.index(min(free))
        free[i] += seconds
    return max(free)


class Progress:
    """Counts are after the known-divergence registry (records are marked as they arrive), so a fail here is a fail in
    results.json. The share done is weighted by the plan's estimated seconds per shard (what the planner measured on
    this machine last time, else the adapters' declared costs), not by records: a record of a compiled gradient costs
    a hundred of an eager softmax, so counting records would promise an end that never comes."""

    def __init__(self, stream=None, total: int = 0, clock=time.monotonic):
        stream = stream or sys.stderr  # looked up now, not at import: stderr may have been redirected since
        self.stream, self.tty, self.clock = stream, stream.isatty(), clock
        self.state: dict[str, str] = {}
        self.fraction_of: dict[str, float] = {}  # shard -> share of its own work done
        self.cost: dict[str, float] = {}  # shard -> estimated seconds (the plan), in the order the pool starts them
        self.workers = 1
        self.first_progress: tuple[float, float] | None = None  # (when, planned seconds done) at the first unit done
        self.resumed_at: dict[str, float] = {}  # shard -> its share done when its worker died and a new one went on
        self.total = total  # (case, op, dtype, mode) units over every shard, where no plan is given (one process)
        self.done_units: dict[str, int] = {}
        self.records = self.bad = self.known = 0
        self.started = self.last_line = clock()
        self.last_tenth = -1
        self.said: set[str] = set()
        self.skipped: dict[str, list[str]] = {}  # "no gpu visible" -> frameworks
        self.finished = False

    def fraction(self) -> float | None:
        if self.cost and sum(self.cost.values()) > 0:
            return min(1.0, self._planned_done() / sum(self.cost.values()))
        if self.total:
            return min(1.0, sum(self.done_units.values()) / self.total)
        return None

    def seconds_left(self) -> float | None:
        """The remaining time: what is left of each shard (its planned seconds times the share not done), scheduled
        over the workers as the pool does (so the last long shard alone is not spread over idle cores), at the pace
        seen since the first unit was done (wall time against the planned seconds done per worker). Before PACE_FROM
        of the work is done, the plan's pace: an estimate from the start."""
        if not self.cost:
            fraction = self.fraction()
            elapsed = self.clock() - self.started
            return elapsed * (1 - fraction) / fraction if fraction and 0.02 < fraction < 1 else None
        done = {n: self.fraction_of.get(n, 0.0) for n in self.cost}
        left = [c * (1 - done[n]) for n, c in self.cost.items() if 0 < done[n] < 1]  # the running ones, first
        left += [c for n, c in self.cost.items() if done[n] == 0]
        remaining = makespan(left, self.workers)
        planned_done = self._planned_done()
        if planned_done < PACE_FROM * sum(self.cost.values()) or self.first_progress is None:
            return remaining
        # The pace since the first unit of work was done: the workers' start (the frameworks' imports, seconds the
        # plan does not spread over the units) is behind, not ahead. The plan's seconds are one worker's: done at
        # this pace, the run's workers took the window's wall time for them together.
        at, before = self.first_progress
        window, work = self.clock() - at, planned_done - before
        return remaining * (window * self.workers / work) if window > 0 and work > 0 else remaining

    def _planned_done(self) -> float:
        """The planned seconds of the work done: each shard's estimate times its share done."""
        return sum(c * self.fraction_of.get(n, 0.0) for n, c in self.cost.items())

    def overall(self) -> str:
        fraction = self.fraction()
        if fraction is None:
            return ""
        left = self.seconds_left() if fraction < 1 else None
        eta = f", about {left:.0f} s left" if left is not None else ""
        return f"{fraction:.0%} overall{eta}"

    def counts(self) -> str:
        return f"{self.records} records: {self.bad} fail/error, {self.known} known"

    def __call__(self, msg: Event) -> None:
        if isinstance(msg, Planned):
            self.total = msg.units
            return
        if isinstance(msg, Plan):  # [(shard, estimated seconds)] from the pool
            self.cost = {name: max(float(cost), 1.0) for name, cost in msg.costs}  # a shard of no estimate still counts
            self.workers = msg.workers
            planned = self.seconds_left()
            if not self.tty and planned is not None:  # a machine's share of a split run may hold no shard at all
                self._line(f"planned: about {planned:.0f} s ({len(self.cost)} shards on {self.workers} workers)")
            return
        if isinstance(msg, RecordMade):
            self.records += 1
            self.bad += unexplained(msg.record)
            self.known += msg.record.status is Status.KNOWN
            return
        if isinstance(msg, Tick):
            self._heartbeat(msg.running)
            return
        if isinstance(msg, Finished):
            self._maybe_finished(ended=True)
            return
        if isinstance(msg, ShardProgress):
            name, done, total = msg.shard, msg.done, msg.total
            self.state[name], self.done_units[name] = f"{done}/{total}", done
            origin = planned_shard(name)  # the rest of a shard whose worker died: its progress is the shard's
            before = self.resumed_at.get(origin, 0.0) if origin != name else 0.0
            self.fraction_of[origin] = before + (1 - before) * (done / total if total else 1.0)
            if self.first_progress is None:
                self.first_progress = (self.clock(), self._planned_done())
            fraction = self.fraction()
            tenth = int(10 * fraction) if fraction is not None else -1
            if not self.tty and tenth > self.last_tenth and tenth < 10:
                self.last_tenth = tenth
                self._line(f"{self.overall()} ({self.counts()})")
        elif isinstance(msg, Info) and "absent" in msg.info:
            self._once(f"{msg.framework}: absent, skipped ({msg.info['absent']})")
        elif isinstance(msg, Info) and msg.info.get("skipped_devices"):
            for why in msg.info["skipped_devices"].values():  # "no gpu visible to <framework>": one line at the end
                what, _, who = why.rpartition(" to ")
                names = self.skipped.setdefault(what or why, [])
                if who and who not in names:
                    names.append(who)
        elif isinstance(msg, Done | Lost):
            resumed = isinstance(msg, Lost) and msg.resumed  # a crash recorded as its call's error, the shard goes on
            lost = isinstance(msg, Lost) and not resumed
            origin = planned_shard(msg.shard)
            self.state.pop(msg.shard, None)
            self.state[origin] = "LOST" if lost else "resumed" if resumed else "done"
            if resumed:  # a new worker goes on from here: the shard is not done
                self.resumed_at[origin] = self.fraction_of.get(origin, 0.0)
            else:
                self.fraction_of[origin] = 1.0
            self._line(f"{msg.shard}: LOST ({msg.why}); the records it sent are kept, the run will be incomplete" if lost else
                       f"{msg.shard}: worker {msg.why}" if isinstance(msg, Lost) else f"{msg.shard}: done")
            self._maybe_finished()
        if self.tty:
            status = " | ".join(f"{k} {v}" for k, v in self.state.items())
            self.stream.write(f"\r\x1b[K{self.overall()} | {status} | {self.counts()}, {self.clock() - self.started:.0f}s")
            self.stream.flush()

    def _maybe_finished(self, ended: bool = False) -> None:
        """The 100% line and the skipped devices, once every planned shard has ended (or the run says it has)."""
        if self.finished or (not ended and (not self.cost or any(self.state.get(n) not in ("done", "LOST") for n in self.cost))):
            return
        self.finished = True
        lost = sum(v == "LOST" for v in self.state.values())
        self._line(f"100% overall: every shard ended{f' ({lost} lost)' if lost else ''} ({self.counts()})")
        for what, names in self.skipped.items():
            self._line(f"{what} to {', '.join(names)}: skipped" if names else f"{what}: skipped")

    def _heartbeat(self, running: tuple[str, ...]) -> None:
        if self.tty or self.clock() - self.last_line < HEARTBEAT_S or not running:
            return
        self._line(f"still running {', '.join(running)}; {self.overall() or 'started'} ({self.counts()})")

    def _once(self, text: str) -> None:
        """A framework's news, said once however many of its shards report it."""
        if text not in self.said:
            self.said.add(text)
            self._line(text)

    def _line(self, text: str) -> None:
        prefix = "\r\x1b[K" if self.tty else ""
        self.last_line = self.clock()
        self.stream.write(f"{prefix}[{self.last_line - self.started:5.1f}s] {text}\n")
        self.stream.flush()
