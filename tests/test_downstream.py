"""A downstream project's own cases and registry entries on top of the bundled ones (examples/downstream/): they run
together, its entries are checked and judged stale like the bundled ones, and the naive formulas' fails are counted
but leave the exit status alone unless asked. `.ci/package` runs the same example from the built wheel."""

from __future__ import annotations

from pathlib import Path

import yaml
from results_factory import load as load_results

from conformance.app.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "downstream"
OURS = "our-model/masked-vocabulary-soft-labels"


def _registry(tmp_path: Path, *extra: dict) -> Path:
    doc = yaml.safe_load((EXAMPLE / "known" / "ours.yaml").read_text())
    doc["divergences"].extend(extra)
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(tmp_path: Path, registry: Path, *more: str) -> int:
    return main(["run", "--frameworks", "numpy", "--cases", "bundled", "--cases", str(EXAMPLE / "cases"), "--known", "bundled",
                 "--known", str(registry), "--case", "our-model/*", "--out", str(tmp_path / "out"), "--jobs", "1", *more])


def test_own_cases_and_entries_run_with_the_bundled_ones(tmp_path, capsys):
    stale = {"id": "ours-softmax-never-fails", "match": {"framework": "numpy", "impl": "numpy/softmax", "case": "our-model/*"},
             "kind": "bug", "explains": "accuracy", "reason": "an entry for a divergence that the run does not show", "link": "https://example.org/ours"}
    code = _run(tmp_path, _registry(tmp_path, stale))
    out = capsys.readouterr().out
    records = load_results(tmp_path / "out" / "results.json")["records"]
    ours = [r for r in records if r["case"] == OURS and r["impl_id"] == "numpy/scipy/cross_entropy" and r["status"] != "unsupported"]
    assert ours and all(r["status"] == "known" and r["known_id"] == "ours-composed-cross-entropy-nan-on-masked-vocabulary" for r in ours)
    # the bundled entry for the same finding names only the bundled case: ours is explained by our entry alone
    assert f"stale known divergence: ours-softmax-never-fails ({tmp_path / 'ours.yaml'})" in out
    naive_fails = [r for r in records if r["naive"] and r["status"] == "fail"]
    assert naive_fails and not [r for r in records if not r["naive"] and r["status"] in ("fail", "error")]
    assert code == 0 and f"{len(naive_fails)} naive-formula record(s) failed" in out and "not counted in the exit status" in out


def test_include_naive_counts_the_naive_formulas(tmp_path, capsys):
    assert _run(tmp_path, _registry(tmp_path), "--include-naive") == 1
    assert "counted in the exit status (--include-naive)" in capsys.readouterr().out


def test_an_entry_id_of_the_bundled_registry_is_refused_in_one_line(tmp_path, capsys):
    again = {"id": "naive-formula-on-extreme-logits", "match": {"framework": "numpy"}, "kind": "bug", "explains": "error", "reason": "x", "link": "https://x"}
    assert _run(tmp_path, _registry(tmp_path, again)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "naive-formula-on-extreme-logits: duplicate id (also in " in err[0] and "divergences.yaml" in err[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_own_cases_alone(tmp_path, capsys):
    code = main(["run", "--frameworks", "numpy", "--cases", str(EXAMPLE / "cases"), "--known", str(_registry(tmp_path)),
                 "--out", str(tmp_path / "out"), "--jobs", "1"])
    doc = load_results(tmp_path / "out" / "results.json")
    assert code == 0 and {r["case"].split("/")[0] for r in doc["records"]} == {"our-model"}
    assert doc["selection"]["suites"] == ["our-model"]
