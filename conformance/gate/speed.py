"""The speed half of `conformance gate`: a benchmark whose minimum time grew beyond the noise of this machine.

A benchmark (pytest-benchmark JSON beside the results file, `benchmarks.json`) whose minimum
time grew by more than max(SPEED_MIN_SLOWDOWN, SPEED_NOISE_FACTOR x noise), and, with --confirm, is
still that slow when measured again. The minimum is the statistic least disturbed by other load.
Noise comes in three sizes (measured in reports/bench-reruns/README.md):
- within one process (IQR): too small to matter;
- between processes (allocator and thread-pool state differ per process): `conformance bench --repeat R`
  runs each framework in R processes and keeps each benchmark's fastest; noise = how far the runner-up
  process lies above the best;
- between runs, hours apart (slow spells of the machine, in every process of a run at once): a baseline
  combined from several runs (`conformance bench --combine`) records each run's min; noise = their range.
A benchmark whose threshold would exceed SPEED_MAX_THRESHOLD is not gated but listed as too noisy:
a gate that cannot tell a 30% slowdown from noise must say so rather than pass it or cry wolf.
A slow spell can still outlast a whole run, so a trip is only a suspect: --confirm measures the
tripped benchmarks again in fresh processes (on the same machine) and the current side keeps the
fastest of all its processes; a real slowdown survives that, a slow spell does not. What this rule made of
unchanged re-runs on two CPUs is in reports/bench-reruns/README.md (replayed by tests/test_bench_gate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..speed import documents
from .outcome import GateReport, RegressionKind

SPEED_MIN_SLOWDOWN = 0.15
SPEED_NOISE_FACTOR = 2.0
SPEED_MAX_THRESHOLD = 0.25


def _spread(bench: dict, key: str, rank: int) -> float | None:
    """How far the rank-th smallest of extra_info[key] (a list of minimums) lies above the smallest."""
    mins = sorted(bench.get("extra_info", {}).get(key) or [])
    return mins[rank] / mins[0] - 1.0 if len(mins) >= 2 and mins[0] > 0 else None


def between_process_noise(bench: dict) -> float | None:
    """How far the runner-up process's min lies above the best one (None with a single process)."""
    return _spread(bench, "process_mins", 1)


def between_run_noise(bench: dict) -> float | None:
    """How far the slowest run's min lies above the fastest (a baseline combined from several runs; else None).
    The whole range, not the runner-up: with three runs the range is the least it can be."""
    return _spread(bench, "run_mins", -1)


def _by_name(doc: dict) -> dict[str, dict]:
    return {b["fullname"]: b for b in doc.get("benchmarks", [])}


def speed_threshold(base: dict, cur: dict) -> float:
    """The slowdown of the min time that counts as a regression for this benchmark (see the module docstring)."""
    measured = [n for n in (between_process_noise(base), between_process_noise(cur), between_run_noise(base),
                            between_run_noise(cur)) if n is not None]
    if measured:
        noise = max(measured)
    else:  # one process each: only the spread within it is known
        noise = max(base["stats"]["iqr"] / base["stats"]["median"], cur["stats"]["iqr"] / cur["stats"]["median"])
    return max(SPEED_MIN_SLOWDOWN, SPEED_NOISE_FACTOR * noise)


# (benchmarks that tripped, the current document) -> the same benchmarks measured again in fresh processes
Confirm = Callable[[list[dict], dict], dict]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


def compare_benchmarks(base_path: Path, cur_path: Path, report: GateReport, confirm: Confirm | None = None) -> None:
    base_doc, cur_doc = documents.read(base_path), documents.read(cur_path)
    base_machine, cur_machine = documents.machine_fingerprint(base_doc), documents.machine_fingerprint(cur_doc)
    if base_machine and cur_machine and base_machine != cur_machine:
        report.notes.append(f"speed not compared: the baseline ran on {base_machine}, the current run on {cur_machine}")
        return
    base = _by_name(base_doc)
    too_noisy, tripped = [], []
    for c in cur_doc.get("benchmarks", []):
        b = base.get(c["fullname"])
        if b is None:
            continue
        limit = speed_threshold(b, c)
        if limit > SPEED_MAX_THRESHOLD:
            too_noisy.append(f"{c['fullname']} (noise allows +{limit:.0%})")
            continue
        report.benchmarks_compared += 1
        if c["stats"]["min"] / b["stats"]["min"] - 1.0 > limit:
            tripped.append((b, c, limit))
    if too_noisy:
        report.notes.append(f"{len(too_noisy)} benchmarks too noisy here to gate a {SPEED_MAX_THRESHOLD:.0%} slowdown, not compared: "
                            + "; ".join(too_noisy[:8]) + (" ..." if len(too_noisy) > 8 else ""))
    again = _remeasured(confirm, [c for _, c, _ in tripped], cur_doc, cur_machine, report) if tripped else None
    cleared = []
    for b, c, limit in tripped:
        base_min, cur_min = b["stats"]["min"], c["stats"]["min"]
        line = f"{c['fullname']}: min {_us(base_min)} -> {_us(cur_min)} (+{cur_min / base_min - 1:.0%}, limit +{limit:.0%})"
        if again is not None:
            r = again.get(c["fullname"])
            if r is None:
                line += "; not re-measured (see the confirmation logs)"
            else:  # the current side's min over all of its processes, the first ones and the re-measured ones
                best = min(cur_min, r["stats"]["min"])
                if best / base_min - 1.0 <= limit:
                    cleared.append(f"{c['fullname']} (+{cur_min / base_min - 1:.0%}, re-measured {_us(r['stats']['min'])})")
                    continue
                line += f"; confirmed, re-measured {_us(r['stats']['min'])} (+{best / base_min - 1:.0%})"
        report.fail(RegressionKind.SPEED, line)
    if cleared:
        report.notes.append(f"{len(cleared)} speed trip(s) not confirmed by a re-measurement in fresh processes (machine noise), "
                            "not regressions: " + "; ".join(cleared))


def _remeasured(confirm: Confirm | None, tripped: list[dict], cur_doc: dict, cur_machine: str | None,
                report) -> dict[str, dict] | None:
    """The tripped benchmarks measured again, by name; None when there is no confirmation to use."""
    if confirm is None:
        report.notes.append(f"{len(tripped)} speed trip(s) not re-measured (`--confirm` re-runs them in fresh processes to tell "
                            "a regression from a slow spell of the machine)")
        return None
    doc = confirm(tripped, cur_doc)
    machine = documents.machine_fingerprint(doc)
    if cur_machine and machine and machine != cur_machine:
        report.notes.append(f"re-measurement not used: it ran on {machine}, the current run on {cur_machine}")
        return None
    return _by_name(doc)
