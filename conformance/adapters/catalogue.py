"""What each registered framework offers, for `conformance list`: its version, devices and every implementation,
grouped by op. Each framework is described by a process of its own (spawned): a framework fixes things per process
(a backend chosen at import, thread pools), so describing one in the process of another could describe the wrong
thing."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..model.names import OPS
from . import FrameworkAbsent, absent_message, declared, load_adapter, missing_packages, registered


@dataclass(frozen=True)
class Description:
    name: str
    absent: str | None = None  # why the framework cannot be described here (not installed)
    version: str = ""
    devices: tuple[str, ...] = ()
    # op -> (id, label, option names) for every implementation, the op's fused ones before its naive formulas
    implementations: dict[str, list[tuple[str, str, tuple[str, ...]]]] = field(default_factory=dict)


def describe(name: str) -> Description:
    """One framework, in this process."""
    for var, value in declared(name, "QUIET_ENV").items():
        os.environ.setdefault(var, value)
    missing = missing_packages(name)
    if missing:
        return Description(name, absent=absent_message(name, missing))
    try:
        adapter = load_adapter(name)
    except FrameworkAbsent as exc:
        return Description(name, absent=str(exc))
    impls = adapter.implementations()
    by_op = {op: [(i.id, i.name + (f"  [{', '.join(i.devices)} only]" if i.devices else ""), tuple(sorted(i.options)))
                  for i in sorted((i for i in impls if i.op == op), key=lambda i: i.naive)]
             for op in OPS if any(i.op == op for i in impls)}
    return Description(name, version=adapter.version(), devices=tuple(adapter.devices()), implementations=by_op)


def _quiet() -> None:
    """A describing process keeps the frameworks' own log lines (absl, oneDNN, CUDA probes) out of the terminal: what
    it has to say it returns."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def describe_all() -> Iterator[Description]:
    """Every registered framework, each in a fresh process of its own (as many at once as there are cores: most of
    the time is each framework's import), in registration order."""
    names = list(registered())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with mp.get_context("spawn").Pool(max(1, min(len(names), cores)), initializer=_quiet, maxtasksperchild=1) as pool:
        yield from pool.imap(describe, names)
