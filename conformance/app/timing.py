"""`conformance timing --measure`: the three runs that show where a run's time goes on this machine. A cold run (a
fresh compile cache, so nothing is compiled yet and the planner has no measured costs), then two warm runs (the second
planned from the first's measured costs, as every later run on this machine is), each in a fresh process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..run.folder import RunRequest
from . import fresh
from .run_command import run_as_command

RUNS = ("cold", "warm", "warm-planned")


class MeasureRefused(Exception):
    """The measurement cannot be made (its cache exists, or a run failed): str() says why in one line (exit 2)."""


def measure(request: RunRequest, out: Path, say: Callable[[str], None] = print) -> list[Path]:
    """The three runs of `request` into out/cold, out/warm and out/warm-planned, sharing the compile cache out/cache;
    returns their results files."""
    cache = out / "cache"
    if cache.exists():
        raise MeasureRefused(f"{cache} exists: --measure needs a fresh compile cache for its cold run (remove it, or choose another --out)")
    paths = []
    for name in RUNS:
        one = replace(request, out=out / name, selection=replace(request.selection, compile_cache=str(cache)))
        say(f"timing: {name}: into {one.out}, compile cache {cache}")
        ended = fresh.call(run_as_command, (one,), quiet=True)
        if ended.interrupted:
            raise KeyboardInterrupt
        if ended.exit is None or ended.exit > 1:
            raise MeasureRefused(f"the {name} run ended with exit {ended.exit}; see {one.out}")
        paths.append(one.out / "results.json")
    return paths
