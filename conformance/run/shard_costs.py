"""What each worker's share of a run cost on this machine last time, kept beside the compile cache.

The planner (pool.plan) splits a framework's mode into one worker per dtype only when a dtype's work outweighs
starting another worker (importing the framework again). The adapters' COLD_SECONDS say what a cold run costs;
once the compile cache is warm the same work costs a fraction of that, and splitting it only adds imports. So each
run records, per (framework, mode, dtype), the seconds its workers spent on inputs, oracle and framework calls (a
worker running both modes splits its inputs and oracle between them) and
how many (case, op, dtype) units that was; the next run on this machine (same CPU, same cache folder) plans from
those seconds per unit instead of the constants. A run on another CPU, or with no cache folder, uses the constants.

Units differ in cost (a gradients case with HVPs costs far more than a softmax of four numbers), so a run of a
few cases would misstate a whole corpus's rate: a part's figure is replaced only by a run of at least as many
units of it (the same selection, or a larger one), never by a smaller one.

A figure also says whether it was measured warm: whether an earlier run in this cache had measured that part, so
that its programs were compiled before the run began. A part measured cold is warm for the next run of no more of
its units in this cache (the same selection or a narrower one), which then costs a fraction of that figure (the
adapters' WARM_FRACTION: a compiler's quick run took a seventh of its cold seconds warm); a larger run meets
programs it has not compiled, and plans from the cold figure.

And it says whether the run had the naive formulas: a run without them (`--no-naive`, `--quick`) costs a share of
a figure measured with them, the adapters' OWN_FRACTION, and one with them more than a figure measured without.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..adapters.base import is_figure
from . import results as results_io

FILE = "shard-seconds.json"


def _path(cache: str | Path | None) -> Path | None:
    return Path(cache) / FILE if cache else None


def _section(cache: str | Path | None, cpu: str, key: str) -> dict:
    """One mapping of the file ("entries", "starts", "imports") where it was measured on this CPU; empty otherwise."""
    path = _path(cache)
    try:
        doc = json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else {}
    except (OSError, ValueError):
        return {}  # a damaged file only costs the planner its memory, never the run
    found = doc.get(key) if isinstance(doc, dict) and doc.get("cpu") == cpu else None
    return found if isinstance(found, dict) else {}


def load(cache: str | Path | None, cpu: str) -> dict[str, dict]:
    """"framework/mode/dtype" -> {"seconds", "units"} measured on this CPU; empty when there is nothing usable."""
    entries = _section(cache, cpu, "entries")
    return {k: v for k, v in entries.items() if isinstance(v, dict) and is_figure(v.get("seconds")) and is_figure(v.get("units")) and v["units"] > 0}


def _planned(e: dict) -> float:
    """The part's units as the planner counts them (every op of the selection's cases; a worker counts only those its
    framework offers), where the run recorded them."""
    planned = e.get("planned")
    return planned if is_figure(planned) and planned > 0 else e["units"]


def per_unit(entries: dict[str, dict], framework: str, mode: str, dtype: str) -> float | None:
    """Seconds per unit as the planner counts units."""
    e = entries.get(f"{framework}/{mode}/{dtype}")
    return e["seconds"] / _planned(e) if e else None


def with_naive(entries: dict[str, dict], framework: str, mode: str, dtype: str) -> bool | None:
    """Whether the part's figure was measured by a run with the naive formulas (None where the file does not say): a
    run without them takes a share of it (the adapters' OWN_FRACTION), one with them more than a figure without."""
    e = entries.get(f"{framework}/{mode}/{dtype}")
    naive = e.get("naive") if e else None
    return naive if isinstance(naive, bool) else None


def warmed_since(entries: dict[str, dict], framework: str, mode: str, dtype: str, units: int) -> bool:
    """Whether the part's figure was measured cold by a run of at least `units` of it (as the planner counts them): a
    run of that many is warm now, and costs less than the figure says. A figure from before this was recorded counts
    as warm (it was used so)."""
    e = entries.get(f"{framework}/{mode}/{dtype}")
    return bool(e) and e.get("warm") is False and units <= _planned(e)


def starts(cache: str | Path | None, cpu: str) -> dict[str, float]:
    """framework -> what its slowest worker took beyond its cases' seconds on this CPU last time (overhead), where a
    run here measured it: the display expects that of a worker, not the adapter's START_SECONDS, measured cold on
    another machine (a warm worker imports in a third)."""
    return _figures(cache, cpu, "starts")


def imports(cache: str | Path | None, cpu: str) -> dict[str, float]:
    """framework -> the seconds its slowest worker took from its spawn to the framework imported on this CPU last
    time, where a run here measured it: what the display compares this run's imports with (as the plan's costs, these
    are this machine's own, not the adapter's IMPORT_SECONDS)."""
    return _figures(cache, cpu, "imports")


def _figures(cache: str | Path | None, cpu: str, key: str) -> dict[str, float]:
    """framework -> seconds, one per-framework section of the file ("starts", "imports"), its usable figures only."""
    return {k: float(v) for k, v in _section(cache, cpu, key).items() if is_figure(v)}


def overhead(shard: dict) -> float | None:
    """A finished worker's seconds beyond its modes' (by_mode): the interpreter, the import, reading the cases,
    judging and sending; None where its `timing` lacks a figure. What a plan adds to a shard's cost for its worker
    (START_SECONDS): in a cold quick run on a 2-core Xeon, the import alone left 0.5-1.6 s per worker out, and the
    small shards that end a run took twice to four times their plan."""
    took = shard.get("start_s"), shard.get("wall_s"), *(shard.get("by_mode") or {}).values()
    if shard.get("devices") == ["gpu"] or not all(is_figure(t) for t in took):
        return None
    return max(0.0, took[0] + took[1] - sum(took[2:]))


def imported(shard: dict) -> float | None:
    """A finished CPU worker's seconds from its spawn to its framework imported; None where its `timing` lacks one."""
    took = shard.get("start_s"), (shard.get("phases") or {}).get("import")
    if shard.get("devices") == ["gpu"] or "wall_s" not in shard or not all(is_figure(t) for t in took):
        return None
    return took[0] + took[1]


def slowest_from(timing: dict[str, dict], measure: Callable[[dict], float | None]) -> dict[str, float]:
    """framework -> its slowest finished CPU worker's `measure` (overhead, imported) in a run's `timing`."""
    out: dict[str, float] = {}
    for shard in timing.values():
        if (took := measure(shard)) is not None:
            out[shard["framework"]] = round(max(out.get(shard["framework"], 0.0), took), 2)
    return out


def remember(cache: str | Path | None, cpu: str, timing: dict[str, dict], planned: Callable[[str], int] | None = None,
             naive: bool | None = None) -> None:
    """Merge this run's finished CPU shards (Outcome.timing) into the file; shards that did not finish say nothing.
    `planned`: dtype -> the run's units of it as the planner counts them; `naive`: whether the run had the naive
    formulas."""
    path = _path(cache)
    if path is None:
        return
    fresh = entries_from(timing)
    try:
        kept = load(cache, cpu)
        fresh = {k: {**e, "warm": k in kept, **({"planned": planned(k.rpartition("/")[2])} if planned else {}),
                     **({"naive": naive} if naive is not None else {})}
                 for k, e in fresh.items() if e["units"] >= kept.get(k, {}).get("units", 0)}
        # each worker's start-up and import, the latest run's where it measured them: the cache is as warm as it will be
        per_worker = {key: {**_figures(cache, cpu, key), **slowest_from(timing, measure)}
                      for key, measure in (("starts", overhead), ("imports", imported))}
        results_io.write({"cpu": cpu, "entries": {**kept, **fresh}, **per_worker}, path)  # atomic, like a results file
    except OSError:
        pass  # a read-only cache folder: the next run plans from the constants


def entries_from(timing: dict[str, dict]) -> dict[str, dict]:
    """"framework/mode/dtype" -> {"seconds", "units"} from a run's finished CPU shards (a results file's `timing`)."""
    fresh: dict[str, dict] = {}
    for shard in timing.values():
        if "wall_s" not in shard or shard.get("devices") == ["gpu"]:
            continue
        for part, seconds in (shard.get("by_mode") or {}).items():  # "mode/dtype": a worker may run both modes
            units = (shard.get("units_by_dtype") or {}).get(part.partition("/")[2])
            if units:  # a mode's dtype may be spread over several shards (cases given a worker of their own): add up
                e = fresh.setdefault(f"{shard['framework']}/{part}", {"seconds": 0.0, "units": 0})
                e["seconds"] += seconds
                e["units"] += units
    return fresh
