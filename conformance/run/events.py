"""What a run tells whoever watches it: small typed messages, from the workers (through their pipes) and from the
pool and the api, to the pool, the registry and the progress display. A new kind of news is a new class here."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.record import Record


@dataclass(frozen=True)
class Started:
    """A worker is up: the wall clock when it began (the spawn before it is process start-up)."""
    at: float


@dataclass(frozen=True)
class Info:
    """What a framework said about itself (version, packages, devices, flags), or why it is absent."""
    framework: str
    info: dict


@dataclass(frozen=True)
class Imported:
    """A shard's worker has imported its framework, `seconds` after the pool spawned it: the first measure of this
    machine's pace, long before a shard ends (the pool sends it when the worker's Info arrives)."""
    shard: str
    seconds: float


@dataclass(frozen=True)
class CaseBegun:
    """A worker has started a case: where a crash is attributed, and what a resumed worker skips."""
    framework: str
    case: str


@dataclass(frozen=True)
class CallBegun:
    """A worker is about to call a framework: if the process dies before the call's records arrive (a segfault, an
    abort, os._exit), the parent makes this call's `error` records, naming the signal, and the rest goes on."""
    call: tuple[str, str, str, str, str]  # (case, impl_id, dtype, mode, device): what a resumed worker skips
    record: dict  # the identity and context every record of this call carries (Record fields)
    quantities: tuple[str, ...]


@dataclass(frozen=True)
class RecordMade:
    """One record, as the runner built it."""
    record: Record


@dataclass(frozen=True)
class ShardProgress:
    """How far a shard is: (case, op, dtype, mode) units done of its total. A worker names its framework; the pool
    passes it on under the shard's name."""
    shard: str
    done: int
    total: int


@dataclass(frozen=True)
class TimingOf:
    """Where a worker's time went (runner.Timing.to_json)."""
    framework: str
    timing: dict


@dataclass(frozen=True)
class Done:
    """A shard finished (a worker sends it without a name: its pipe says whose it is)."""
    shard: str = ""


@dataclass(frozen=True)
class Crash:
    """A worker's unexpected exception, with its traceback: the pool loses the shard and resumes the rest."""
    traceback: str


@dataclass(frozen=True)
class EnvironmentFault:
    """The machine failed a framework's write or read (a full disk, a quota, a read-only or forbidden cache): not a
    finding about the framework. The run stops, keeps what it has, and exits 4."""
    why: str


@dataclass(frozen=True)
class Fatal:
    """A named framework cannot be loaded: the whole run stops (bad input)."""
    why: str


@dataclass(frozen=True)
class Lost:
    """A shard that will not finish, and why; the records it sent are kept. `resumed`: its worker died inside a
    framework call, which was recorded as that call's error, and a new worker goes on with the rest (nothing lost)."""
    shard: str
    why: str
    resumed: bool = False


# A worker that took on the rest of a shard whose worker died is named "<shard>/resumed-<n>".
RESUMED = "/resumed"


def planned_shard(name: str) -> str:
    """The shard of the plan that a worker of this name runs (all or, resumed after a crash, the rest of)."""
    return name.split(RESUMED)[0]


def resumed_name(name: str, times: int) -> str:
    """The name of the worker that takes on the rest of a shard the `times`th time one of its workers died."""
    return f"{planned_shard(name)}{RESUMED}-{times}"


@dataclass(frozen=True)
class Planned:
    """The run's size in units, where no plan of shards is made (one process)."""
    units: int


@dataclass(frozen=True)
class Plan:
    """The shards of the run with their estimated seconds, in the order the pool starts them, and how many workers
    run at once; `imports`: the seconds each shard's worker is expected to take from its spawn to its framework
    imported, where known (the same source as its cost)."""
    costs: tuple[tuple[str, float], ...]
    workers: int = 1
    imports: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Tick:
    """The display's clock: the shards running now, at least every half second."""
    running: tuple[str, ...]


@dataclass(frozen=True)
class Finished:
    """Every shard has ended."""


Event = Started | Info | Imported | CaseBegun | RecordMade | ShardProgress | TimingOf | Done | Crash | Fatal | Lost | Planned | Plan | Tick | Finished
