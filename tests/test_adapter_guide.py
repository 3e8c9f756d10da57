"""docs/adapters.md's example adapter is code that works: taken from the guide as it stands, registered through
$CONFORMANCE_ADAPTERS and run on the published values, it passes the contract check and every record passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from results_factory import load as load_results

from conformance.adapters.base import contract_problems

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- example-adapter -->"


def example_source() -> str:
    text = (ROOT / "docs" / "adapters.md").read_text()
    after = text.split(MARKER, 1)[1]
    return after.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


def test_the_guide_example_keeps_the_contract(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "guide_example_adapter.py").write_text(example_source())
    monkeypatch.syspath_prepend(str(tmp_path))
    assert contract_problems(importlib.import_module("guide_example_adapter")) == []


def test_the_guide_example_runs_the_published_values(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "guide_example_adapter.py").write_text(example_source())
    env = {**os.environ, "CONFORMANCE_ADAPTERS": "example=guide_example_adapter",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--frameworks", "example", "--modes", "eager",
                          "--case", "published-values/*", "--out", str(out)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    records = load_results(out / "results.json")["records"]
    doors = {r["impl_id"] for r in records if r["status"] == "pass"}
    assert doors == {"example/softmax", "example/cross_entropy"}, doors
    assert all(r["status"] in ("pass", "unsupported") for r in records)
