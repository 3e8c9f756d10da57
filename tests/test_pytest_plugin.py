"""The pytest plugin in the wheel (conformance/app/pytest_plugin.py): `pytest --conformance` in any folder collects the
corpus as items that -k selects, pytest-xdist spreads and --junitxml reports; a failing item carries its re-run
commands; the records land in a results.json that `conformance gate` reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from results_factory import load as load_results

ROOT = Path(__file__).resolve().parent.parent


def _pytest(tmp_path: Path, *args: str, fault: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    if fault:
        env.update(CONFORMANCE_ADAPTERS="fault=fault_adapter", CONFORMANCE_FAULT=fault)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--conformance", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


def test_the_corpus_as_items_selected_by_k_spread_by_xdist_and_written_for_the_gate(tmp_path):
    res = _pytest(tmp_path, "--conformance-frameworks", "numpy", "-k", "published-values and float32", "-n", "2",
                  "--junitxml", str(tmp_path / "junit.xml"), "--conformance-results", str(tmp_path / "out" / "results.json"))
    assert res.returncode == 0, res.stdout[-2000:]
    assert "3 passed" in res.stdout
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] and {r["case"] for r in doc["records"]} == {"published-values/softmax-four-logits",
                                                                        "published-values/mean-cross-entropy-two-rows",
                                                                        "published-values/mean-sparse-cross-entropy-two-rows"}
    assert (tmp_path / "junit.xml").read_text().count("<testcase") == 3
    from conformance.app.cli import main

    assert main(["gate", "--baseline", str(tmp_path / "out" / "results.json"), "--current", str(tmp_path / "out" / "results.json")]) == 0


def test_a_planted_bug_fails_its_items_with_rerun_commands(tmp_path):
    res = _pytest(tmp_path, "--conformance-frameworks", "fault", "-k", "softmax and not cross and float32", fault="unshifted")
    assert res.returncode == 1
    assert "re-run: conformance run" in res.stdout and "scipy.special.softmax" in res.stdout


def test_an_unknown_framework_is_a_usage_error(tmp_path):
    res = _pytest(tmp_path, "--conformance-frameworks", "numpyy")
    assert res.returncode == 4 and "unknown framework 'numpyy'" in res.stderr + res.stdout
