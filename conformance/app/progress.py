"""The live display of a run: one status line on a terminal; in a log (CI), a line per tenth of the work, a heartbeat
at least every minute, a 100% line and the devices that were skipped, said once."""

from __future__ import annotations

import sys
import time

from ..model.record import unexplained
from ..model.status import Status
from ..run.events import Done, Event, Finished, Imported, Info, Lost, Plan, Planned, RecordMade, ShardProgress, Tick, planned_shard

# A CI log that stays silent for minutes looks hung: no silence over 60 s while workers run. The parent looks at the
# clock between workers' messages, which can keep it busy for a second or two (a cold CI run went 61.9 s with the
# heartbeat at 60 s), so the heartbeat aims 10 s early.
HEARTBEAT_S = 50.0


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
    results.json.

    The share done and the time left come from the plan's estimated seconds per shard (what the planner measured on
    this machine last time, else the adapters' declared costs) and the clock, not from records or units: a record of
    a compiled gradient costs a hundred of an eager softmax, and a shard's units do not cost alike either (its first
    programs compile, its large cases come last), so counting them promises an end that never comes. What this
    machine's pace is comes from the shards that ended (their seconds against their plan), and before any has, from
    the workers' imports (their seconds against the plan's expected ones: a slow day slows both); a running shard is
    expected to take its plan at that pace, and only once it has run past that do its units say how much of it is
    left (at the pace of its units after the first, which pays for the start-up and the compiler's first use)."""

    def __init__(self, stream=None, total: int = 0, clock=time.monotonic):
        stream = stream or sys.stderr  # looked up now, not at import: stderr may have been redirected since
        self.stream, self.tty, self.clock = stream, stream.isatty(), clock
        self.state: dict[str, str] = {}
        self.fraction_of: dict[str, float] = {}  # shard -> share of its units done
        self.cost: dict[str, float] = {}  # shard -> estimated seconds (the plan), in the order the pool starts them
        self.workers = 1
        self.started_at: dict[str, float] = {}  # shard -> when a worker first ran it (the pool's Tick, else its first unit)
        self.ended_at: dict[str, float] = {}  # shard -> when it ended (done or lost; not a death that goes on)
        self.resumed_at: dict[str, float] = {}  # shard -> its share done when its worker died and a new one went on
        self.first_unit: dict[str, tuple[float, float]] = {}  # shard -> (when, share done) at its first unit's end
        self.last_unit: dict[str, float] = {}  # shard -> when its latest unit ended
        self.import_plan: dict[str, float] = {}  # shard -> the seconds its worker is expected to take to import
        self.imported: dict[str, float] = {}  # shard -> the seconds its (first) worker took to import
        self.total = total  # (case, op, dtype, mode) units over every shard, where no plan is given (one process)
        self.done_units: dict[str, int] = {}
        self.records = self.bad = self.known = 0
        self.started = self.last_line = clock()
        self.last_tenth = -1
        self.said: set[str] = set()
        self.skipped: dict[str, list[str]] = {}  # "no gpu visible" -> frameworks
        self.finished = False

    def fraction(self) -> float | None:
        """The planned seconds of the ended shards and of the running ones' elapsed share, over the plan's."""
        if self.cost and sum(self.cost.values()) > 0:
            pace = self.pace()
            done = sum(self.cost[n] for n in self.ended_at if n in self.cost)
            for n in self._running():
                elapsed, left = self.clock() - self.started_at[n], self._left(n, pace)
                done += self.cost[n] * (elapsed / (elapsed + left) if elapsed + left > 0 else 0.0)
            return min(1.0, done / sum(self.cost.values()))
        if self.total:
            return min(1.0, sum(self.done_units.values()) / self.total)
        return None

    def pace(self) -> float:
        """This machine's seconds per planned second: the shards that ended whole, their seconds against their plan;
        before any has, the imports so far against theirs (a quick run's first shard ends at a fifth of it, and on a
        slow day the plan's own pace said 30% too little there); with neither, 1: the plan's own pace."""
        ended = [n for n in self.ended_at if n in self.cost and n in self.started_at and self.state.get(n) == "done"]
        planned = sum(self.cost[n] for n in ended)
        if planned > 0:
            return sum(self.ended_at[n] - self.started_at[n] for n in ended) / planned
        expected = sum(self.import_plan[n] for n in self.imported)
        return sum(self.imported.values()) / expected if expected > 0 else 1.0

    def _running(self) -> list[str]:
        return [n for n in self.cost if n in self.started_at and n not in self.ended_at]

    def _left(self, name: str, pace: float) -> float:
        """A running shard's seconds left: its plan at this machine's pace, less what it has run, weighed against what
        its units say (_units_left) by the square of its share of them done (the shards of one run keep no common
        pace: from 1.1 to 1.7 times their plan in one cold quick run, so a long shard's own units are the better word
        on it once most are done, while its first units, cheap or compiling, say little); past its plan at that pace,
        what its units say alone; with no unit done yet, as long again."""
        elapsed = self.clock() - self.started_at[name]
        expected = self.cost[name] * pace
        by_units = self._units_left(name)
        if elapsed < expected:
            if by_units is None:
                return expected - elapsed
            weight = self.fraction_of.get(name, 0.0) ** 2
            return (1 - weight) * (expected - elapsed) + weight * by_units
        if by_units is not None:
            return by_units
        share = self.fraction_of.get(name, 0.0)
        return elapsed * (1 - share) / share if share > 0 else elapsed

    def _units_left(self, name: str) -> float | None:
        """The rest of a shard's units at the pace of those that ended after its first, less what the unit under way
        has run since the latest ended (a shard on its last unit is not a whole unit from its end: a cold quick run
        that ended on its longest shard's last unit said 16 s for 12). The first unit pays for the worker's start-up and the
        compiler's first use (a compiled shard's first unit can take 40% of it), so the time so far over the share
        done says several times what is left; None until a second unit has ended."""
        first = self.first_unit.get(name)
        share = self.fraction_of.get(name, 0.0)
        if first is None or share <= first[1]:
            return None
        when, at = first
        latest = self.last_unit[name]  # set with the first unit, so there whenever `first` is
        return max(0.0, (latest - when) / (share - at) * (1 - share) - (self.clock() - latest))

    def seconds_left(self) -> float | None:
        """The remaining time: what is left of each running shard (_left), then each shard not started at this
        machine's pace, scheduled over the workers as the pool does (so the last long shard alone is not spread over
        idle cores). Before any shard has ended, the plan's pace: an estimate from the start."""
        if not self.cost:
            fraction = self.fraction()
            elapsed = self.clock() - self.started
            return elapsed * (1 - fraction) / fraction if fraction and 0.02 < fraction < 1 else None
        pace = self.pace()
        left = [self._left(n, pace) for n in self._running()]  # the running ones, first
        left += [c * pace for n, c in self.cost.items() if n not in self.started_at and n not in self.ended_at]
        return makespan(left, self.workers)

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
            self.import_plan = dict(msg.imports)
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
            for name in msg.running:
                self.started_at.setdefault(planned_shard(name), self.clock())
            self._tenth(first=False)  # the first line waits for the first unit done: the run has answers then
            self._heartbeat(msg.running)
            return
        if isinstance(msg, Imported):
            if planned_shard(msg.shard) in self.import_plan:
                self.imported.setdefault(planned_shard(msg.shard), msg.seconds)  # a resumed worker's says nothing new
            return
        if isinstance(msg, Finished):
            self._maybe_finished(ended=True)
            return
        if isinstance(msg, ShardProgress):
            self._units_done(msg)
            self._tenth()
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
                self.ended_at.setdefault(origin, self.clock())
            self._line(f"{msg.shard}: LOST ({msg.why}); the records it sent are kept, the run will be incomplete" if lost else
                       f"{msg.shard}: worker {msg.why}" if isinstance(msg, Lost) else f"{msg.shard}: done")
            self._maybe_finished()
        if self.tty:
            status = " | ".join(f"{k} {v}" for k, v in self.state.items())
            self.stream.write(f"\r\x1b[K{self.overall()} | {status} | {self.counts()}, {self.clock() - self.started:.0f}s")
            self.stream.flush()

    def _units_done(self, msg: ShardProgress) -> None:
        """A shard's share of units done; that of the rest of a shard whose worker died counts as the shard's."""
        name, done, total = msg.shard, msg.done, msg.total
        self.state[name], self.done_units[name] = f"{done}/{total}", done
        origin = planned_shard(name)
        before = self.resumed_at.get(origin, 0.0) if origin != name else 0.0
        self.fraction_of[origin] = before + (1 - before) * (done / total if total else 1.0)
        self.started_at.setdefault(origin, self.clock())  # where no Tick said so (a run in one process)
        if done:
            self.first_unit.setdefault(origin, (self.clock(), self.fraction_of[origin]))
            self.last_unit[origin] = self.clock()

    def _maybe_finished(self, ended: bool = False) -> None:
        """The 100% line and the skipped devices, once every planned shard has ended (or the run says it has)."""
        if self.finished or (not ended and (not self.cost or any(self.state.get(n) not in ("done", "LOST") for n in self.cost))):
            return
        self.finished = True
        lost = sum(v == "LOST" for v in self.state.values())
        self._line(f"100% overall: every shard ended{f' ({lost} lost)' if lost else ''} ({self.counts()})")
        for what, names in self.skipped.items():
            self._line(f"{what} to {', '.join(names)}: skipped" if names else f"{what}: skipped")

    def _tenth(self, first: bool = True) -> None:
        """In a log, a line each time the share done passes another tenth (the share moves with the clock too);
        `first`: the 0% line too."""
        fraction = self.fraction()
        tenth = int(10 * fraction) if fraction is not None else -1
        if not self.tty and self.last_tenth < tenth < 10 and (first or tenth > 0):
            self.last_tenth = tenth
            self._line(f"{self.overall()} ({self.counts()})")

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
