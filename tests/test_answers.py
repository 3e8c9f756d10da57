"""Answers, not only verdicts: every record carries a digest of what the framework returned, and `conformance diff`
and the gate see an answer that changed under an unchanged verdict (an invalid input's answer, a registered
divergence's, an error's type), while an accurate answer moves only by a share of its tolerance."""

from __future__ import annotations

import json

import numpy as np

from conformance.app.cli import main
from conformance.judge.compare import digest
from conformance.report import diff as diff_mod
from conformance.testing import check

SELECTION = {"case": ["invalid-input/negative-label", "published-values/*"], "modes": ["eager"], "dtypes": ["float32"]}


def wraps(logits, labels, axis=-1):  # NumPy indexing: label -1 is the last class
    logp = logits - np.log(np.exp(logits - logits.max(axis, keepdims=True)).sum(axis, keepdims=True)) - logits.max(axis, keepdims=True)
    return -np.take_along_axis(logp, labels[..., None], axis).squeeze(axis)


def clamps(logits, labels, axis=-1):  # a gather that clamps: label -1 is the first class
    return wraps(logits, np.clip(labels, 0, logits.shape[axis] - 1), axis)


def test_the_digest_sees_values_and_nan_patterns_and_nothing_else():
    a = np.array([[0.25, np.nan], [-0.0, np.inf]], np.float32)
    assert digest(a) == digest(np.array([[0.25, -np.nan], [0.0, np.inf]], np.float32))  # NaN payloads, -0.0: the same answer
    assert digest(a) != digest(np.array([[0.25, np.nan], [0.0, -np.inf]], np.float32))
    assert digest(a) != digest(a.reshape(4))  # the shape is part of the answer
    assert digest(np.float32(1) + np.spacing(np.float32(1))) != digest(np.float32(1))  # one ulp is another answer


def _save(result, path):
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(result.doc))
    return path


def test_another_finite_answer_to_an_invalid_input_is_listed_and_fails_the_gate(tmp_path, capsys):
    before = _save(check(wraps, op="sparse_softmax_cross_entropy", framework="numpy", **SELECTION), tmp_path / "before" / "results.json")
    after = _save(check(clamps, op="sparse_softmax_cross_entropy", framework="numpy", **SELECTION), tmp_path / "after" / "results.json")
    moves = diff_mod.diff(json.loads(before.read_text()), json.loads(after.read_text()))
    changed = [m for m in moves if m.kind == "answer"]
    assert [m.record.split()[0] for m in changed] == ["invalid-input/negative-label"] and changed[0].worse
    assert changed[0].before != changed[0].after and "[" in changed[0].before  # small outputs shown as values
    assert not [m for m in moves if m.kind == "status"]  # both silent: the verdict alone saw nothing
    assert main(["diff", str(before), str(after), "--out", str(tmp_path / "diff")]) in (0, 1)
    assert "invalid-input/negative-label" in (tmp_path / "diff" / "diff.md").read_text()
    capsys.readouterr()
    assert main(["gate", "--baseline", str(before), "--current", str(after)]) == 1
    out = capsys.readouterr().out
    assert "answer: invalid-input/negative-label" in out and "1 answer" in out
    assert main(["gate", "--baseline", str(before), "--current", str(before.parent.parent / "before" / "results.json")]) == 0


def _pair(**over):
    base = {"case": "s/c", "op": "softmax", "quantity": "value", "dtype": "float32", "framework": "torch", "impl": "torch.softmax",
            "mode": "eager", "device": "cpu", "status": "pass", "behaviour": "finite", "tol_ratio": 0.1, "answer": "a" * 16,
            "size": 4, "nan_count": 0, "inf_count": 0, "error": None, "known": None}
    return base, {**base, **over}


def test_an_accurate_answer_changes_only_by_a_share_of_its_tolerance():
    assert diff_mod.answer_move(*_pair(answer="b" * 16, tol_ratio=0.2)) == (False, False)  # an ulp's jitter: not a change
    assert diff_mod.answer_move(*_pair(answer="b" * 16, tol_ratio=0.6)) == (True, False)  # listed, gated by the accuracy rule
    assert diff_mod.answer_move(*_pair(answer="b" * 16, status="known", tol_ratio=0.6)) is None  # status moved: that move says it
    _, known = _pair(status="known", known_id="k")
    assert diff_mod.answer_move(known, {**known, "answer": "c" * 16, "tol_ratio": 0.9}) == (True, True)  # inside a bound: gated
    worse = {**known, "tol_ratio": 4e13}
    assert diff_mod.answer_move(worse, {**worse, "answer": "c" * 16, "tol_ratio": 3e6}) == (True, False)  # toward the oracle: listed


def test_an_errors_type_is_its_answer_and_old_files_compare_as_before():
    _, raised = _pair(behaviour="error", answer=None, error={"type": "IndexError", "message": "m"}, invalid=True)
    assert diff_mod.answer_move(raised, {**raised, "error": {"type": "RuntimeError", "message": "m"}}) == (True, True)
    assert diff_mod.answer_move(raised, {**raised, "error": {"type": "IndexError", "message": "other words"}}) is None
    old, new = _pair(answer="b" * 16)
    del old["answer"]
    assert diff_mod.answer_move(old, new) is None  # written before answers were fingerprinted: nothing to compare


def test_nan_becoming_a_measured_answer_is_listed_not_gated_and_the_reverse_is():
    _, nan = _pair(status="known", known_id="k", behaviour="all_nan", tol_ratio=None, answer="n" * 16)  # both sides known
    measured = {**nan, "behaviour": "finite", "tol_ratio": 3.0, "answer": "f" * 16}
    assert diff_mod.answer_move(nan, measured) == (True, False)  # the oracle measures the new answer: the accuracy rule gates it
    assert diff_mod.answer_move(measured, nan) == (True, True)  # a measured answer became NaN inside the same entry


def _entry_doc(record: dict, entries: list[dict]) -> dict:
    return {"environment": {}, "records": [record], "known_divergences": entries}


def test_only_an_entry_scoped_from_a_release_on_accepts_a_changed_answer():
    """An entry written for a change (`>=3.10`) accepts the new answer on the upgrade; on the downgrade the old
    release's entry (`<3.10`) describes the past and accepts nothing; an unscoped entry accepts nothing either."""
    _, old = _pair(status="known", known_id="before-3.10", invalid=True, answer="o" * 16)
    new = {**old, "known_id": "from-3.10", "answer": "z" * 16}
    entries = [{"id": "from-3.10", "link": "l", "versions": {"keras": ">=3.10"}}, {"id": "before-3.10", "link": "l", "versions": {"keras": "<3.10"}}]
    up = [m for m in diff_mod.diff(_entry_doc(old, entries), _entry_doc(new, entries)) if m.kind == "answer"]
    down = [m for m in diff_mod.diff(_entry_doc(new, entries), _entry_doc(old, entries)) if m.kind == "answer"]
    assert up[0].accepted_by == "from-3.10" and down[0].accepted_by == "" and down[0].worse
    unscoped = [{"id": "from-3.10", "link": "l"}, {"id": "before-3.10", "link": "l"}]
    assert [m.accepted_by for m in diff_mod.diff(_entry_doc(old, unscoped), _entry_doc(new, unscoped)) if m.kind == "answer"] == [""]


def test_between_two_cpus_answers_and_pass_to_known_are_notes_and_a_fail_still_gates():
    """Another CPU sums in another order and flushes subnormals on other paths: the answer of a registered divergence
    and a pass that becomes known there are listed, not gated; a record that fails is still a regression."""
    from conformance.gate import records as gate

    _, known = _pair(status="known", known_id="k", invalid=True)
    _, passing = _pair(case="s/p")
    docs = []
    for cpu, answer, status in (("CPU A", "a" * 16, "pass"), ("CPU B", "b" * 16, "known")):
        env = {"cpu": cpu, "cpu_features": ["avx2"], "cpu_count": 2}
        docs.append({"environment": env, "records": [{**known, "answer": answer}, {**passing, "status": status}]})
    report = gate.GateReport()
    gate.compare_records(docs[0], docs[1], report)
    assert report.ok, report.regressions
    assert any("differs on this CPU" in n for n in report.notes) and any("explained by the registry on this CPU" in n for n in report.notes)
    docs[1]["records"][1]["status"] = "fail"
    report = gate.GateReport()
    gate.compare_records(docs[0], docs[1], report)
    assert [r.split(":")[0] for r in report.regressions] == ["status"]
    docs[1]["environment"]["cpu"] = "CPU A"  # the same CPU: the answer is gated again
    docs[1]["records"][1]["status"] = "pass"
    report = gate.GateReport()
    gate.compare_records(docs[0], docs[1], report)
    assert [r.split(":")[0] for r in report.regressions] == ["answer"]
