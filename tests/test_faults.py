"""A broken framework costs only its own records: a worker that hangs (at import or in a kernel), exits, segfaults
or is killed outright is stopped or noticed, the other frameworks' records are written, and the run exits 3 (incomplete)
saying what was lost. A framework named with --frameworks that cannot be imported is bad input: exit 2, one line.
Every run here is bounded by a short --timeout and the subprocess time-out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import bundled

ROOT = Path(__file__).resolve().parent.parent
CASES = bundled.cases_dir() / "published-values.yaml"


def _env(fault: str) -> dict:
    return {**os.environ, "CONFORMANCE_ADAPTERS": "fault=fault_adapter", "CONFORMANCE_FAULT": fault,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}


def _run(tmp_path: Path, fault: str, *extra: str, frameworks: str = "numpy,fault") -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--cases", str(CASES), "--frameworks", frameworks,
                          "--modes", "eager", "--out", str(tmp_path / "out"), "--timeout", "8", *extra],
                         capture_output=True, text=True, cwd=ROOT, env=_env(fault), timeout=180)
    return res, time.monotonic() - started


@pytest.mark.parametrize("fault, why", [
    ("hang-import", "no progress for 8 s"),
    ("hang", "no progress for 8 s"),
    ("exit", "exited with code 7"),
    ("segv", f"exited with code -{int(signal.SIGSEGV)}"),
    ("sigkill", f"exited with code -{int(signal.SIGKILL)}"),
])
def test_a_broken_worker_costs_only_its_own_records(tmp_path, fault, why):
    res, seconds = _run(tmp_path, fault)
    assert res.returncode == 3, res.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["complete"] is False and [x["framework"] for x in doc["incomplete"]["lost"]] == ["fault"]
    assert why in doc["incomplete"]["lost"][0]["why"] and "INCOMPLETE" in res.stderr and why in res.stderr
    frameworks = {r["framework"] for r in doc["records"]}
    assert "numpy" in frameworks  # everybody else's records are there
    if fault not in ("hang-import",):
        assert "fault" in frameworks  # and the records the broken worker sent before it broke
    assert "Traceback" not in res.stderr and seconds < 120


def test_a_named_framework_that_fails_to_import_is_exit_2(tmp_path):
    res, _ = _run(tmp_path, "raise-import")
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "fault failed to import: RuntimeError: the framework's import raised (injected)" in lines[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_an_unnamed_framework_that_fails_to_import_is_lost_not_absent(tmp_path, monkeypatch):
    """Only a framework whose package is missing is 'absent'; one that is installed and raises is a lost shard."""
    from conformance import pool, runner

    for key, value in _env("raise-import").items():
        monkeypatch.setenv(key, value)
    sel = runner.Selection(("fault",), ("float32",), ("cpu",), ("eager",))
    outcome = pool.run([CASES], sel, jobs=1, on_event=lambda msg: None, timeout=30)
    assert not outcome.complete and "failed to import: RuntimeError" in outcome.lost[0]["why"]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_jobs_1_keeps_what_finished_on_sigterm(tmp_path):
    (tmp_path / "slow.yaml").write_text(SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--cases", str(tmp_path / "slow.yaml"), "--frameworks", "numpy",
                             "--jobs", "1", "--out", str(tmp_path / "out")], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        if "% overall" in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert proc.returncode == 3 and doc["interrupted"] is True and doc["complete"] is False and doc["records"]


SLOW = """suite: slow
description: Large enough that the run is still busy when it is stopped.
cases:
""" + "".join(f"""  - id: big-{i}
    description: A wide batch, to keep the run busy.
    ops: [softmax, log_softmax]
    dtypes: [float32, float64]
    logits: {{generate: normal, shape: [64, 65536], seed: {i}}}
""" for i in range(8))


def test_a_memory_error_in_one_case_costs_that_case_only(tmp_path, monkeypatch, capsys):
    """The harness's own reference computation runs out of memory on one case among 50 healthy ones: that case's
    records are `error`s that name it and say the harness raised, the 50 others are kept and judged, exit 1."""
    from conformance.cli import main
    from conformance.judge import oracle

    healthy = [{"id": f"row-{i}", "description": "a healthy softmax", "ops": ["softmax"], "logits": [[float(i), 0.5, -1.0]]}
               for i in range(50)]
    doomed = {"id": "too-big-for-the-oracle", "description": "pretends to exhaust memory", "ops": ["softmax"],
              "logits": [[0.0] * 7]}
    (tmp_path / "cases.yaml").write_text(json.dumps({"suite": "many", "description": "x", "cases": [*healthy[:25], doomed, *healthy[25:]]}))
    real = oracle.compute

    def compute(inputs, quantity):
        if inputs.logits.shape[-1] == 7:
            raise MemoryError("Unable to allocate 12.0 GiB")
        return real(inputs, quantity)

    monkeypatch.setattr(oracle, "compute", compute)
    code = main(["run", "--cases", str(tmp_path / "cases.yaml"), "--frameworks", "numpy", "--modes", "eager", "--jobs", "1",
                 "--out", str(tmp_path / "out")])
    records = json.loads((tmp_path / "out" / "results.json").read_text())["records"]
    doomed_records = [r for r in records if r["case"] == "many/too-big-for-the-oracle"]
    others = [r for r in records if r["case"] != "many/too-big-for-the-oracle"]
    assert code == 1
    assert {r["case"] for r in others if r["status"] == "pass"} == {f"many/row-{i}" for i in range(50)}
    assert all(r["status"] in ("pass", "unsupported") for r in others)  # NumPy has no autodiff: grad_logits unsupported
    assert doomed_records and all(r["status"] == "error" and r["error"]["where"] == "harness/oracle" for r in doomed_records)
    assert "MemoryError in the harness (oracle of many/too-big-for-the-oracle" in capsys.readouterr().out
