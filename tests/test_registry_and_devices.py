"""The known-divergence registry decides the exit code; the GPU axis skips cleanly where there is no GPU."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from conformance import known
from conformance.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "cases" / "extreme-logits.yaml"


def test_registry_entries_are_well_formed():
    entries = known.load()
    assert entries and all(e.link.startswith("http") and e.kind in known.KINDS and e.reason for e in entries)


def test_removing_an_entry_makes_the_run_exit_1_and_name_the_records(tmp_path, capsys):
    args = ["run", "--cases", str(CASE), "--frameworks", "numpy", "--modes", "eager", "--jobs", "1"]
    assert main([*args, "--out", str(tmp_path / "with")]) == 0
    doc = yaml.safe_load(known.DEFAULT_REGISTRY.read_text())
    doc["divergences"] = [e for e in doc["divergences"] if e["id"] != "naive-formula-on-extreme-logits"]
    reduced = tmp_path / "reduced.yaml"
    reduced.write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "without"), "--known", str(reduced)]) == 1
    out = capsys.readouterr().out
    assert "FAIL extreme-logits/huge-positive-row numpy naive: np.exp(x) / np.exp(x).sum()" in out


def test_stale_entry_is_reported(tmp_path, capsys):
    doc = {"divergences": [{"id": "pretend-scipy-softmax-is-wrong", "match": {"framework": "numpy", "impl": "scipy.special.softmax"},
                            "kind": "bug", "reason": "a test entry", "link": "https://example.org/stale"}]}
    reg = tmp_path / "stale.yaml"
    reg.write_text(yaml.safe_dump(doc))
    main(["run", "--cases", str(CASE), "--frameworks", "numpy", "--modes", "eager", "--jobs", "1", "--out", str(tmp_path), "--known", str(reg)])
    assert "stale known divergence: pretend-scipy-softmax-is-wrong" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["stale_known"][0]["id"] == "pretend-scipy-softmax-is-wrong"


def test_gpu_axis_skips_cleanly_without_a_gpu(tmp_path, capsys):
    code = main(["run", "--cases", str(CASE), "--frameworks", "numpy", "--devices", "gpu", "--jobs", "1", "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "results.json").read_text())
    assert code == 0 and doc["records"] == []
    assert doc["environment"]["frameworks"]["numpy"]["skipped_devices"] == {"gpu": "no gpu visible to numpy"}
    assert "no gpu visible to numpy: skipped" in capsys.readouterr().err
