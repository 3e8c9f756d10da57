"""A command body in a fresh process: what a framework fixes per process (its backend, thread pools, compiled
programs in memory) never carries from one run to the next. The process is spawned (nothing inherited but the
arguments), runs a library function with typed arguments, and is stopped like Ctrl-C (SIGTERM) when it outlives its
time, so that it writes what it has."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..run.spawned import to_log

GRACE_S = 60  # after SIGTERM, the time a stopped run has to write its partial results


@dataclass(frozen=True)
class Ended:
    exit: int | None  # the function's exit code (None: it never ended, even when killed)
    stopped: bool = False  # stopped at its time limit, or because this process was interrupted
    interrupted: bool = False  # this process was interrupted (Ctrl-C, SIGTERM) while it waited


def call(target: Callable[..., int], args: tuple, log: Path | None = None, quiet: bool = False, timeout: float | None = None) -> Ended:
    """target(*args) in a spawned process, its exit code its return value. `log`: its stdout and stderr go to that
    file (the frameworks' native output too); `quiet`: its stdout is dropped (progress on stderr still shows)."""
    proc = mp.get_context("spawn").Process(target=_main, args=(target, args, str(log) if log else None, quiet))
    proc.start()
    try:
        proc.join(timeout)
    except KeyboardInterrupt:
        _stop(proc)
        return Ended(proc.exitcode, stopped=True, interrupted=True)
    if proc.is_alive():
        _stop(proc)
        return Ended(proc.exitcode, stopped=True)
    return Ended(proc.exitcode)


def _stop(proc: mp.process.BaseProcess) -> None:
    proc.terminate()  # SIGTERM: the run inside ends like Ctrl-C and writes what finished
    proc.join(GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _main(target: Callable[..., int], args: tuple, log: str | None, quiet: bool) -> None:
    if log:
        to_log(log, truncate=True)
    elif quiet:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (the process ends with it)
    sys.exit(target(*args))
