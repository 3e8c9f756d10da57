"""The speed gate on real measurements: unchanged `conformance bench --quick --repeat 3` runs made on the build
machine (reports/bench-reruns/, see reports/README.md). The first is the baseline. Slowed by 30%, it must trip
every benchmark the gate judges. (Whether unchanged re-runs trip the gate is a measurement, not a property to
assert: on this shared VM one of them did; see conformance/gate.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import gate

RERUNS = sorted((Path(__file__).resolve().parent.parent / "reports" / "bench-reruns").glob("run*.json"))


def _compare(base: Path, current: Path) -> gate.GateReport:
    report = gate.GateReport()
    gate.compare_benchmarks(base, current, report)
    return report


@pytest.mark.skipif(len(RERUNS) < 2, reason="reports/bench-reruns/ holds fewer than two runs")
def test_every_benchmark_of_a_rerun_is_either_gated_or_named_too_noisy():
    """Nothing is dropped silently: a benchmark the gate cannot judge at a 25% threshold is listed."""
    base, *reruns = RERUNS
    total = len(json.loads(base.read_text())["benchmarks"])
    for rerun in reruns:
        report = _compare(base, rerun)
        noisy = next((n for n in report.notes if "too noisy" in n), "0 ")
        assert report.benchmarks_compared + int(noisy.split()[0]) == total, rerun.name


@pytest.mark.skipif(len(RERUNS) < 1, reason="reports/bench-reruns/ is empty")
def test_thirty_percent_slowdown_of_a_real_run_trips_every_gated_benchmark(tmp_path):
    doc = json.loads(RERUNS[0].read_text())
    for b in doc["benchmarks"]:
        b["stats"] = {k: (v * 1.3 if k in ("min", "max", "mean", "median", "iqr", "stddev") else v) for k, v in b["stats"].items()}
        b["extra_info"]["process_mins"] = [m * 1.3 for m in b["extra_info"]["process_mins"]]
    slow = tmp_path / "benchmarks.json"
    slow.write_text(json.dumps(doc))
    report = _compare(RERUNS[0], slow)
    assert report.benchmarks_compared > 0 and len(report.regressions) == report.benchmarks_compared
