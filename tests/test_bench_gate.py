"""The speed gate on real measurements (reports/bench-reruns/, see reports/README.md): unchanged
`conformance bench --quick --repeat 3` runs on the 2-core VMs this was built on, one folder per machine.

- epyc/ (AMD EPYC, one session): run0-run5; the baseline is run0-run2 combined (`conformance bench --combine`).
- xeon/ (Intel Xeon, a later session): run6-run8 combined are the baseline; run9-run13 are five later unchanged
  re-runs, each with the re-measurement `conformance gate --confirm` made of what tripped (confirm-runN.json),
  so the gate's verdict on them is replayed here without timing anything.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conformance.app.cli import main
from conformance.gate import records as gate
from conformance.gate import speed as speed_gate
from conformance.speed import bench

DATA = Path(__file__).resolve().parent.parent / "reports" / "bench-reruns"
EPYC = [DATA / "epyc" / f"run{i}.json" for i in range(6)]
XEON = [DATA / "xeon" / f"run{i}.json" for i in range(6, 14)]
needs_epyc = pytest.mark.skipif(not all(p.exists() for p in EPYC), reason="reports/bench-reruns/epyc/ is incomplete")
needs_xeon = pytest.mark.skipif(not all(p.exists() for p in XEON), reason="reports/bench-reruns/xeon/ is incomplete")
TIMES = ("min", "max", "mean", "median", "iqr", "stddev")


def _write(doc: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _baseline(tmp_path: Path, runs: list[Path]) -> Path:
    return _write(bench.combine(runs[:3]), tmp_path / "baseline" / "benchmarks.json")


def _compare(base: Path, current: Path, confirm=None) -> gate.GateReport:
    report = gate.GateReport()
    speed_gate.compare_benchmarks(base, current, report, confirm)
    return report


def _scaled(doc: dict, factor: float) -> dict:
    doc = copy.deepcopy(doc)
    for b in doc["benchmarks"]:
        b["stats"] = {k: (v * factor if k in TIMES else v) for k, v in b["stats"].items()}
        for key in ("process_mins", "run_mins"):
            if key in b["extra_info"]:
                b["extra_info"][key] = [m * factor for m in b["extra_info"][key]]
    return doc


def _stored_confirmation(current: Path):
    """The re-measurement `gate --confirm` made when this re-run was gated (there is none if nothing tripped)."""
    def confirm(tripped: list[dict], doc: dict) -> dict:
        path = current.with_name(f"confirm-{current.name}")
        assert path.exists(), f"{current.name} tripped {len(tripped)} benchmarks but no re-measurement of it was stored"
        stored = json.loads(path.read_text())
        assert {b["fullname"] for b in tripped} <= {b["fullname"] for b in stored["benchmarks"]}
        return stored
    return confirm


@needs_epyc
def test_combine_keeps_the_fastest_run_and_every_runs_min(tmp_path):
    doc = json.loads(_baseline(tmp_path, EPYC).read_text())
    runs = [{b["fullname"]: b for b in json.loads(p.read_text())["benchmarks"]} for p in EPYC[:3]]
    for b in doc["benchmarks"]:
        mins = [r[b["fullname"]]["stats"]["min"] for r in runs]
        assert b["extra_info"]["run_mins"] == sorted(mins) and b["stats"]["min"] == min(mins)
        assert len(b["extra_info"]["process_mins"]) == 9  # three runs of three processes
    assert speed_gate.between_run_noise(doc["benchmarks"][0]) == pytest.approx(
        max(doc["benchmarks"][0]["extra_info"]["run_mins"]) / doc["benchmarks"][0]["stats"]["min"] - 1)


def test_combine_refuses_runs_from_different_machines(tmp_path):
    def doc(cpu: str) -> dict:
        return {"machine_info": {"cpu": {"brand_raw": cpu, "count": 2}, "machine": "x86_64"}, "benchmarks": []}
    paths = [_write(doc("A"), tmp_path / "a.json"), _write(doc("B"), tmp_path / "b.json")]
    with pytest.raises(Exception, match="different machines"):
        bench.combine(paths)


@pytest.mark.parametrize("runs", [pytest.param(EPYC, marks=needs_epyc, id="epyc"), pytest.param(XEON, marks=needs_xeon, id="xeon")])
def test_every_benchmark_is_either_gated_or_named_too_noisy(tmp_path, runs):
    """Nothing is dropped silently: a benchmark the gate cannot judge at a 25% threshold is listed."""
    base = _baseline(tmp_path, runs)
    total = len(json.loads(base.read_text())["benchmarks"])
    for rerun in runs[3:]:
        report = _compare(base, rerun, _stored_confirmation(rerun))
        noisy = next((n for n in report.notes if "too noisy" in n), "0 ")
        assert report.benchmarks_compared + int(noisy.split()[0]) == total, rerun.name
        assert report.benchmarks_compared >= total // 2, rerun.name  # the gate still judges most of them


@needs_epyc
def test_unchanged_reruns_of_the_same_session_pass_a_three_run_baseline(tmp_path):
    base = _baseline(tmp_path, EPYC)
    for rerun in EPYC[3:]:
        assert _compare(base, rerun).regressions == [], rerun.name


@needs_xeon
def test_five_later_unchanged_reruns_do_not_trip_the_gate(tmp_path):
    """The issue's criterion, on the five re-runs and the re-measurements their gate made."""
    base = _baseline(tmp_path, XEON)
    for rerun in XEON[3:]:
        report = _compare(base, rerun, _stored_confirmation(rerun))
        assert report.regressions == [], (rerun.name, report.regressions)


@pytest.mark.parametrize("runs", [pytest.param(EPYC, marks=needs_epyc, id="epyc"), pytest.param(XEON, marks=needs_xeon, id="xeon")])
def test_thirty_percent_slowdown_trips_every_gated_benchmark_and_survives_confirmation(tmp_path, runs):
    """A baseline 30% faster than the machine is the same as code 30% slower: the re-measurement (another real
    run, not slowed) must confirm every trip."""
    fast = _write(_scaled(bench.combine(runs[:3]), 1 / 1.3), tmp_path / "fast" / "benchmarks.json")
    other = json.loads(runs[4].read_text())
    report = _compare(fast, runs[3], lambda tripped, doc: other)
    assert report.benchmarks_compared > 0 and len(report.regressions) == report.benchmarks_compared
    assert all("confirmed" in r for r in map(str, report.regressions))


def _one(min_s: float, fullname: str = "b[x]", processes: tuple = ()) -> dict:
    return {"fullname": fullname, "name": fullname, "stats": {"min": min_s, "median": min_s, "iqr": 0.0},
            "extra_info": {"framework": "numpy", "process_mins": list(processes or (min_s, min_s * 1.01))}}


def _doc(*benchmarks: dict, cpu: str = "A") -> dict:
    return {"machine_info": {"cpu": {"brand_raw": cpu, "count": 2}, "machine": "x86_64"}, "benchmarks": list(benchmarks)}


@pytest.mark.parametrize("again,cpu,regressed,note", [
    (1.02e-6, "A", False, "not confirmed by a re-measurement"),  # a slow spell: the re-run is at baseline speed
    (1.40e-6, "A", True, "confirmed, re-measured"),  # a regression: the re-run is as slow
    (1.02e-6, "B", True, "re-measurement not used"),  # measured on another machine: says nothing
    (None, "A", True, "not re-measured"),  # the re-run lost the benchmark (a crash): the trip stands
])
def test_confirmation_clears_only_what_a_same_machine_remeasurement_clears(tmp_path, again, cpu, regressed, note):
    base = _write(_doc(_one(1.0e-6)), tmp_path / "b.json")
    cur = _write(_doc(_one(1.5e-6)), tmp_path / "c.json")
    redo = _doc(*([_one(again)] if again else []), cpu=cpu)
    report = _compare(base, cur, lambda tripped, doc: redo)
    assert bool(report.regressions) == regressed
    assert note in " ".join([*map(str, report.regressions), *report.notes])


def test_without_confirmation_a_trip_is_a_regression_and_the_gate_says_confirm_exists(tmp_path):
    base = _write(_doc(_one(1.0e-6)), tmp_path / "b.json")
    cur = _write(_doc(_one(1.5e-6)), tmp_path / "c.json")
    report = _compare(base, cur)
    assert len(report.regressions) == 1 and any("--confirm" in n for n in report.notes)


def test_remeasure_runs_exactly_the_tripped_benchmarks(tmp_path):
    """The confirmation path end to end with numpy (the quickest framework): two named benchmarks, nothing else."""
    first = tmp_path / "first"
    assert main(["bench", "--quick", "--frameworks", "numpy", "--shapes", "32x10", "--max-time", "0.01", "--out", str(first)]) == 0
    doc = json.loads((first / "benchmarks.json").read_text())
    tripped = [b for b in doc["benchmarks"] if b["extra_info"]["kind"] == "speed"][:2]
    again = bench.remeasure(tripped, doc, tmp_path / "confirm", log=lambda line: None)
    assert sorted(b["fullname"] for b in again["benchmarks"]) == sorted(b["fullname"] for b in tripped)
    assert (tmp_path / "confirm" / "benchmarks.json").exists()
