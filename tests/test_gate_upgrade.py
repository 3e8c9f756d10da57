"""The gate's decision table on real runs: JAX 0.9.2/optax 0.2.6 against JAX 0.10.2/optax 0.2.8, the bundled corpus in
eager mode on one machine (tests/data/upgrade/, made with `conformance run --frameworks jax --modes eager` in two
virtual environments). A benign upgrade passes both ways and names both versions; an incomplete run, a lost framework,
a record going pass -> unsupported and a fused record 40x less accurate each fail with one line that says why.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conformance.app.cli import main
from conformance.gate import records as gate
from conformance.run import results as results_io

DATA = Path(__file__).resolve().parent / "data" / "upgrade"
OLD, NEW = DATA / "jax-0.9.2.json", DATA / "jax-0.10.2.json"


def _swap(doc: dict, victim, **changes):
    """The document with one record replaced by a copy with these changes (records are not changed in place)."""
    new = victim.but(**changes)
    doc["records"] = [new if r is victim else r for r in doc["records"]]
    return new


def _write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name / "results.json"
    results_io.write(doc, path)
    return path


def _gate(capsys, base: Path, cur: Path) -> tuple[int, str]:
    code = main(["gate", "--baseline", str(base), "--current", str(cur)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("base, cur", [(OLD, NEW), (NEW, OLD)], ids=["upgrade", "downgrade"])
def test_benign_upgrade_passes_both_ways_and_names_both_versions(capsys, base, cur):
    code, out = _gate(capsys, base, cur)
    assert code == 0, out
    assert "jax 0.9.2 -> 0.10.2" in out or "jax 0.10.2 -> 0.9.2" in out
    assert "optax" in out and "gate: PASS" in out


def _regressions(tmp_path, capsys, doc: dict, base: Path = NEW) -> list[str]:
    code, out = _gate(capsys, base, _write(tmp_path, "cur", doc))
    assert code == 1 and "gate: FAIL" in out, out
    return [line for line in out.splitlines() if line.startswith("  - ")]


def test_an_interrupted_run_fails(tmp_path, capsys):
    doc = results_io.read(NEW)
    doc.update(complete=False, interrupted=True, records=doc["records"][:10],
               incomplete={"interrupted": True, "lost": [{"shard": "jax/eager/float32", "why": "interrupted"}]})
    lines = _regressions(tmp_path, capsys, doc)
    assert lines[0].startswith("  - incomplete: the current run did not finish (jax/eager/float32: interrupted)")


def test_a_run_without_a_framework_the_baseline_has_fails_unless_its_selection_says_so(tmp_path, capsys):
    doc = results_io.read(NEW)
    doc["records"], doc["environment"]["frameworks"] = [], {"jax": {"absent": "jax is not installed (missing jax)"}}
    lines = _regressions(tmp_path, capsys, copy.deepcopy(doc))
    assert any("1548 baseline record(s) of jax missing" in line and "absent" in line for line in lines), lines
    doc["selection"] = {"frameworks": ["numpy"]}  # `--frameworks numpy`: compared on numpy alone, and said so
    code, out = _gate(capsys, NEW, _write(tmp_path, "narrowed", doc))
    assert code == 0 and "narrowed run" in out and "--frameworks numpy: 1548 baseline records not compared" in out, out


def test_a_lost_implementation_fails(tmp_path, capsys):
    doc = results_io.read(NEW)
    doc["records"] = [r for r in doc["records"] if r["impl"] != "optax.softmax_cross_entropy"]
    assert any("missing from the current run" in line for line in _regressions(tmp_path, capsys, doc))


def test_pass_to_unsupported_fails(tmp_path, capsys):
    doc = results_io.read(NEW)
    victim = next(r for r in doc["records"] if r["status"] == "pass" and not r["naive"])
    _swap(doc, victim, status="unsupported", behaviour=None, tol_ratio=None, reason="pretend the option went away")
    lines = _regressions(tmp_path, capsys, doc)
    assert len(lines) == 1 and lines[0].startswith("  - status:") and "pass -> unsupported" in lines[0]


@pytest.mark.parametrize("base", [NEW, OLD], ids=["same-environment", "version-change"])
def test_a_fused_record_40x_less_accurate_fails(tmp_path, capsys, base):
    doc = results_io.read(NEW)
    victim = max((r for r in doc["records"] if r["status"] == "pass" and not r["naive"] and r.get("tol_ratio")
                  and r["tol_ratio"] < 0.025), key=lambda r: r["tol_ratio"])
    victim = _swap(doc, victim, tol_ratio=victim.tol_ratio * 40)  # still inside its tolerance
    assert victim.tol_ratio < 1
    lines = _regressions(tmp_path, capsys, doc, base)
    assert len(lines) == 1 and lines[0].startswith("  - accuracy:") and victim["case"] in lines[0]


def test_naive_formulas_are_reported_not_gated_unless_asked(tmp_path, capsys):
    doc = results_io.read(NEW)
    victim = max((r for r in doc["records"] if r["status"] == "pass" and r["naive"] and r.get("tol_ratio") and r["tol_ratio"] < 0.025),
                 key=lambda r: r["tol_ratio"])
    _swap(doc, victim, tol_ratio=victim.tol_ratio * 40)
    cur = _write(tmp_path, "cur", doc)
    assert gate.gate(NEW, cur).ok
    assert not gate.gate(NEW, cur, include_naive=True).ok


def test_two_versions_merged_into_one_file_cannot_be_gated(tmp_path, capsys):
    doc = results_io.read(NEW)
    doc["records"] = doc["records"] + [r.but(framework_version="0.9.2") for r in results_io.read(OLD)["records"]]
    code = main(["gate", "--baseline", str(NEW), "--current", str(_write(tmp_path, "both", doc))])
    err = capsys.readouterr().err
    assert code == 2 and "two records for" in err and len(err.strip().splitlines()) == 1


def test_diff_lists_every_moved_record(tmp_path, capsys):
    assert main(["diff", str(OLD), str(NEW), "--out", str(tmp_path)]) == 0
    moves = json.loads((tmp_path / "diff.json").read_text())["moves"]
    old = {results_io.key(r): r for r in results_io.read(OLD)["records"]}
    changed = [r for r in results_io.read(NEW)["records"] if r["status"] != old[results_io.key(r)]["status"]]
    assert len([m for m in moves if m["kind"] == "status"]) == len(changed)
    assert moves and all(m["attribution"].startswith("version change (jax 0.9.2 -> 0.10.2") for m in moves)
    md = (tmp_path / "diff.md").read_text()
    assert "jax 0.9.2 -&gt; 0.10.2" in md and md.count("\n| ") >= len(moves)


ANSWERS = Path(__file__).resolve().parent / "data" / "upgrade-answers"


@pytest.mark.parametrize("kind", ["", "-digests-only"], ids=["with-unanswered", "digests-only"])
@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
def test_the_benign_jax_pair_passes_both_ways_with_answers_recorded(capsys, kind, direction):
    """The same pair, run again with answers recorded (`conformance history --framework jax`, this machine, one day):
    with digests only (before `unanswered`) and with the entries without an answer. Last-bit changes in the rows that
    have an answer, inside a case flagged invalid, once failed the gate 10 times; they are no answer change."""
    old, new = ANSWERS / f"jax-0.9.2{kind}.json.gz", ANSWERS / f"jax-0.10.2{kind}.json.gz"
    base, cur = (old, new) if direction == "upgrade" else (new, old)
    before, after = results_io.read(old), results_io.read(new)
    key = ("masked-softmax/fully-masked-row", "masked_softmax", "value", "float32", "jax/where")
    pick = {d: next(r for r in doc["records"] if (r["case"], r["op"], r["quantity"], r["dtype"]) == key[:4] and r["impl"] == "jax.nn.softmax(x, where=mask)")
            for d, doc in (("old", before), ("new", after))}
    assert pick["old"]["answer"] != pick["new"]["answer"]  # the digests differ: one float32 ulp in the valid row
    code, out = _gate(capsys, base, cur)
    assert code == 0 and "gate: PASS" in out, out
