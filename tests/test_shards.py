"""A run split across machines (`--shard K/N`) and merged again is the same run: the same records and statuses as
one unsplit run, a gate that passes it against that run and fails it with one share missing (naming the share), a
share alone refused by the gate, and stale registry entries judged on the whole run only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from results_factory import load as load_results

from conformance.app.cli import main
from conformance.corpus import bundled
from conformance.gate import records as gate_mod
from conformance.model.record import key
from conformance.report import html
from conformance.run import results as results_io

SELECTION = ["--frameworks", "numpy", "--case", "extreme-logits/*", "--case", "shapes/*", "--case", "sparse-labels/*"]


def _run(out: Path, *more: str) -> dict:
    assert main(["run", *SELECTION, "--out", str(out), "--jobs", "2", *more]) == 0
    return results_io.read(out / "results.json")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    whole = _run(root / "whole")
    shares = [_run(root / f"share{k}", "--shard", f"{k}/3") for k in (1, 2, 3)]
    return root, whole, shares


def test_the_shares_are_disjoint_and_cover_the_run(runs):
    _, whole, shares = runs
    keys = [key(r) for doc in shares for r in doc["records"]]
    assert len(keys) == len(set(keys)) and set(keys) == {key(r) for r in whole["records"]}
    assert {d["selection"]["machine"]["plan"] for d in shares} == {shares[0]["selection"]["machine"]["plan"]}
    assert all(d["stale_known"] == [] for d in shares)  # judged on the merged run, not on a share


def test_merged_shares_are_the_unsplit_run_and_pass_its_gate(runs, tmp_path):
    root, whole, _ = runs
    merged = html.merge([root / f"share{k}" / "results.json" for k in (1, 2, 3)])
    assert merged["complete"] and "machine" not in merged["selection"]
    assert {key(r): r.status for r in merged["records"]} == {key(r): r.status for r in whole["records"]}
    path = tmp_path / "merged.json"
    results_io.write(merged, path)
    report = gate_mod.gate(root / "whole" / "results.json", path)
    assert report.ok, report.regressions


def test_a_missing_share_is_named_and_fails_the_gate(runs, tmp_path):
    root, _, _ = runs
    merged = html.merge([root / f"share{k}" / "results.json" for k in (1, 3)])
    assert merged["complete"] is False
    path = tmp_path / "merged.json"
    results_io.write(merged, path)
    report = gate_mod.gate(root / "whole" / "results.json", path)
    assert not report.ok and any("share 2/3" in r and "--shard 2/3" in r for r in map(str, report.regressions)), report.regressions


def test_a_share_alone_is_not_a_run(runs):
    root, _, _ = runs
    report = gate_mod.gate(root / "whole" / "results.json", root / "share1" / "results.json")
    assert not report.ok and any("share 1/3 of a run split across machines" in r for r in map(str, report.regressions))


def test_a_stale_entry_is_found_on_the_merged_run(runs, tmp_path):
    entry = {"id": "pretend-scipy-softmax-fails-on-shapes", "match": {"framework": "numpy", "impl": "numpy/scipy/softmax", "case": "shapes/*"},
             "kind": "bug", "explains": "accuracy", "reason": "a test entry for a divergence that is not there", "link": "https://example.org/stale"}
    reg = tmp_path / "ours.yaml"
    reg.write_text(yaml.safe_dump({"divergences": [entry]}))
    known = ["--known", str(bundled.registry_file()), "--known", str(reg)]
    paths = []
    for k in (1, 2, 3):
        main(["run", *SELECTION, "--out", str(tmp_path / f"s{k}"), "--shard", f"{k}/3", *known])
        paths.append(tmp_path / f"s{k}" / "results.json")
    assert not any(load_results(p)["stale_known"] for p in paths)
    merged = html.merge(paths)
    assert [e["id"] for e in merged["stale_known"]] == [entry["id"]]
    assert main(["report", *map(str, paths), "--out", str(tmp_path / "rep")]) == 0
    report = gate_mod.gate(paths[0].parent.parent / "s1" / "results.json", tmp_path / "rep" / "merged.json")
    assert any(entry["id"] in r for r in map(str, report.regressions))
