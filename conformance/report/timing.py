"""Where a run's time goes: per shard (one worker) and per phase, from the `timing` a results file records.

Phases: start (spawning the worker process), import (the framework and its adapter), cases, inputs, oracle,
framework (the adapter's evaluate: tracing, compiling or loading compiled programs, computing), judge, send. The
framework's own cost is import + framework: no harness change removes it, only a warm compile cache shrinks it
(compare a cold and a warm run: `conformance timing --measure`). The rest is the harness's.
"""

from __future__ import annotations

from collections import Counter

from .markdown import table

PHASES = ("start", "import", "cases", "inputs", "oracle", "framework", "judge", "send")
FRAMEWORK_OWN = ("import", "framework")


def _phases(shard: dict) -> Counter:
    out = Counter({k: float(v) for k, v in (shard.get("phases") or {}).items()})
    out["start"] = float(shard.get("start_s") or 0.0)
    return out


def breakdown(doc: dict) -> dict:
    """Totals of a results document: wall seconds, worker-seconds per phase, and per shard rows."""
    timing = doc.get("timing") or {}
    total: Counter = Counter()
    shards = []
    for name, shard in sorted(timing.items(), key=lambda kv: -float(kv[1].get("wall_s") or 0)):
        phases = _phases(shard)
        total.update(phases)
        wall = float(shard.get("wall_s") or 0.0)
        shards.append({"name": name, "wall_s": wall, "phases": phases, "other": max(0.0, wall - sum(phases.values()))})
    return {"wall_s": float(doc.get("wall_seconds") or 0.0), "worker_s": sum(s["wall_s"] for s in shards), "phases": total,
            "shards": shards}


def render(doc: dict, title: str = "") -> list[str]:
    b = breakdown(doc)
    if not b["shards"]:
        return [f"{title}: no timing recorded (a results file from before timing was kept, or an empty run)"]
    own = sum(b["phases"][p] for p in FRAMEWORK_OWN)
    lines = [f"{title}{': ' if title else ''}{b['wall_s']:.1f} s wall, {b['worker_s']:.1f} worker-seconds in {len(b['shards'])} workers; "
             f"the frameworks' own (import + framework calls) {own:.1f} s = {own / max(b['worker_s'], 1e-9):.0%}", ""]
    rows = [[p, f"{b['phases'][p]:.1f}", f"{b['phases'][p] / max(b['worker_s'], 1e-9):.0%}",
             "framework" if p in FRAMEWORK_OWN else "harness"] for p in PHASES]
    lines += table(["phase", "worker-seconds", "share", "whose"], rows) + [""]
    rows = [[s["name"], f"{s['wall_s']:.1f}", *(f"{s['phases'][p]:.1f}" for p in PHASES), f"{s['other']:.1f}"] for s in b["shards"]]
    lines += table(["shard", "wall", *PHASES, "other"], rows)
    return lines
