"""Answers, not only verdicts: every record carries a digest of what the framework returned, and `conformance diff`
and the gate see an answer that changed under an unchanged verdict (an invalid input's answer, a registered
divergence's, an error's type), while an accurate answer moves only by a share of its tolerance."""

from __future__ import annotations

import numpy as np

from conformance.app.cli import main
from conformance.judge.compare import digest
from conformance.model.record import Record
from conformance.report import diff as diff_mod
from conformance.run import results as results_io
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
    results_io.write(result.doc, path)
    return path


def test_another_finite_answer_to_an_invalid_input_is_listed_and_fails_the_gate(tmp_path, capsys):
    before = _save(check(wraps, op="sparse_softmax_cross_entropy", framework="numpy", **SELECTION), tmp_path / "before" / "results.json")
    after = _save(check(clamps, op="sparse_softmax_cross_entropy", framework="numpy", **SELECTION), tmp_path / "after" / "results.json")
    moves = diff_mod.diff(results_io.read(before), results_io.read(after))
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
    return Record.from_json(base), Record.from_json({**base, **over})


def _move(b: Record, c: Record) -> tuple[bool, bool] | None:
    """answer_move's (changed, gated), without its words."""
    move = diff_mod.answer_move(b, c)
    return None if move is None else move[:2]


def test_an_accurate_answer_changes_only_by_a_share_of_its_tolerance():
    assert _move(*_pair(answer="b" * 16, tol_ratio=0.2)) == (False, False)  # an ulp's jitter: not a change
    assert _move(*_pair(answer="b" * 16, tol_ratio=0.6)) == (True, False)  # listed, gated by the accuracy rule
    assert _move(*_pair(answer="b" * 16, status="known", tol_ratio=0.6)) is None  # status moved: that move says it
    _, known = _pair(status="known", known_id="k")
    assert _move(known, known.but(answer="c" * 16, tol_ratio=0.9)) == (True, True)  # inside a bound: gated
    worse = known.but(tol_ratio=4e13)
    assert _move(worse, worse.but(answer="c" * 16, tol_ratio=3e6)) == (True, False)  # toward the oracle: listed


def test_an_errors_type_is_its_answer_and_old_files_compare_as_before():
    _, raised = _pair(behaviour="error", answer=None, error={"type": "IndexError", "message": "m"}, invalid=True)
    assert _move(raised, raised.but(error={"type": "RuntimeError", "message": "m"})) == (True, True)
    assert _move(raised, raised.but(error={"type": "IndexError", "message": "other words"})) is None
    old, new = _pair(answer="b" * 16)
    assert _move(old.but(answer=None), new) is None  # written before answers were fingerprinted: nothing to compare


def test_nan_becoming_a_measured_answer_is_listed_not_gated_and_the_reverse_is():
    _, nan = _pair(status="known", known_id="k", behaviour="all_nan", tol_ratio=None, answer="n" * 16)  # both sides known
    measured = nan.but(behaviour="finite", tol_ratio=3.0, answer="f" * 16)
    assert _move(nan, measured) == (True, False)  # the oracle measures the new answer: the accuracy rule gates it
    assert _move(measured, nan) == (True, True)  # a measured answer became NaN inside the same entry


def _entry_doc(record: Record, entries: list[dict]) -> dict:
    return {"environment": {}, "records": [record], "known_divergences": entries}


def test_only_an_entry_scoped_from_a_release_on_accepts_a_changed_answer():
    """An entry written for a change (`>=3.10`) accepts the new answer on the upgrade; on the downgrade the old
    release's entry (`<3.10`) describes the past and accepts nothing; an unscoped entry accepts nothing either."""
    _, old = _pair(status="known", known_id="before-3.10", invalid=True, answer="o" * 16, output=[0.5, 0.5])
    new = old.but(known_id="from-3.10", answer="z" * 16, output=[0.0, 0.0])  # a masked row zeroed, not uniform
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
    for cpu, answer, output, status in (("CPU A", "a" * 16, [0.25, 1.0], "pass"), ("CPU B", "b" * 16, [0.0, 1.0], "known")):
        env = {"cpu": cpu, "cpu_features": ["avx2"], "cpu_count": 2}
        docs.append({"environment": env, "records": [known.but(answer=answer, output=output), passing.but(status=status)]})
    report = gate.GateReport()
    gate.compare_records(docs[0], docs[1], report)
    assert report.ok, report.regressions
    assert any("differs on this CPU" in n for n in report.notes) and any("explained by the registry on this CPU" in n for n in report.notes)
    docs[1]["records"][1] = docs[1]["records"][1].but(status="fail")
    report = gate.GateReport()
    gate.compare_records(docs[0], docs[1], report)
    assert [r.kind for r in report.regressions] == ["status"]
    docs[1]["environment"]["cpu"] = "CPU A"  # the same CPU: the answer is gated again
    docs[1]["records"][1] = docs[1]["records"][1].but(status="pass")
    report = gate.GateReport()
    gate.compare_records(docs[0], docs[1], report)
    assert [r.kind for r in report.regressions] == ["answer"]


def softmax_rows(logits, axis=-1):
    shifted = np.exp(logits - np.nanmax(logits, axis, keepdims=True))
    return shifted / shifted.sum(axis, keepdims=True)  # a NaN row stays NaN; the other rows are exact to rounding


def softmax_off_in_valid_rows(logits, axis=-1):
    return softmax_rows(logits, axis) * np.float32(1.001)  # the NaN row still NaN; the valid row 0.1% off


INVALID = {"case": ["invalid-input/nan-logit"], "modes": ["eager"], "dtypes": ["float32"], "quantities": ["value"]}


def test_the_entries_of_an_invalid_input_that_have_an_answer_are_judged_by_the_oracle():
    """nan-logit: row 0 holds a NaN (no answer), row 1 is an ordinary softmax (the oracle answers it). NaN in row 0 is
    the signal; a 0.1% error in row 1 is a wrong answer, whatever row 0 did."""
    right, wrong = ([r for r in check(fn, op="softmax", framework="numpy", **INVALID).doc["records"] if r["framework"] == "user"]
                    for fn in (softmax_rows, softmax_off_in_valid_rows))
    assert [r["status"] for r in right] == ["pass"] and right[0]["tol_ratio"] < 1
    assert right[0]["unanswered"]["entries"] == 3 and right[0]["unanswered"]["nan"] == 3
    assert right[0]["expected"][1] == [0.09003057317038046, 0.24472847105479764, 0.6652409557748219]  # softmax([0, 1, 2])
    assert [r["status"] for r in wrong] == ["fail"] and "an entry that has an answer is wrong" in wrong[0]["detail"]


def _invalid_record(output, **over) -> Record:
    _, record = _pair(invalid=True, status="known", known_id="k", behaviour="nonfinite", tol_ratio=None, size=6, output=output,
                      answer=digest(np.array(output, np.float64)), **over)
    return record


def test_a_last_bit_change_in_an_answered_row_is_no_answer_change_and_a_changed_masked_row_is():
    """The jax 0.9.2 -> 0.10.2 pair: softmax(x, where=mask) on a fully masked row moved the valid row's first entry by
    one float32 ulp. The answer is the same within the record's tolerance; a masked row that became uniform is not."""
    before = _invalid_record([[0.11920291930437088, 0.0, 0.8807970285415649], [0.0, 0.0, 0.0]])
    ulp = _invalid_record([[0.11920291185379028, 0.0, 0.8807970285415649], [0.0, 0.0, 0.0]])
    uniform = _invalid_record([[0.11920291930437088, 0.0, 0.8807970285415649], [1 / 3, 1 / 3, 1 / 3]])
    nan = _invalid_record([[0.11920291930437088, 0.0, 0.8807970285415649], ["nan", "nan", "nan"]])
    assert before.answer != ulp.answer  # the digest sees the ulp ...
    assert _move(before, ulp) is None and _move(ulp, before) is None  # ... the comparison by value does not
    assert _move(before, uniform) == (True, True) and _move(uniform, before) == (True, True)
    assert _move(before, nan) == (True, True)  # zeros -> NaN: another behaviour
    summary = {"entries": 3, "nan": 0, "posinf": 0, "neginf": 0, "rtol": 2.4e-6, "atol": 1e-38}
    with_summary = before.but(unanswered={**summary, "values": [0.0, 0.0, 0.0]})
    assert _move(with_summary, uniform.but(unanswered={**summary, "values": [1 / 3] * 3})) == (True, True)
    # the valid row moved by 1% but only the entries without an answer are compared here: its status judges the rest
    assert _move(with_summary, uniform.but(output=[[0.12, 0.0, 0.88], [0.0, 0.0, 0.0]], unanswered=with_summary.unanswered)) is None


def test_large_unanswered_parts_are_compared_by_their_statistics_and_a_bare_digest_is_not_gated():
    stats = {"entries": 40, "nan": 0, "posinf": 0, "neginf": 0, "rtol": 2.4e-6, "atol": 1e-38, "min": 0.0, "max": 0.25, "sum": 2.5, "abs_sum": 2.5}
    base = _invalid_record(None, unanswered=stats)  # no stored output
    assert _move(base, base.but(answer="x" * 16, unanswered={**stats, "sum": 2.5 * (1 + 1e-7)})) is None  # rounding
    assert _move(base, base.but(answer="x" * 16, unanswered={**stats, "sum": 2.0})) == (True, True)
    assert _move(base, base.but(answer="x" * 16, unanswered={**stats, "nan": 1})) == (True, True)
    bare = base.but(unanswered=None)
    assert _move(bare, bare.but(answer="x" * 16)) == (True, False)  # listed as uncertain, not gated
    assert _move(bare, bare.but(answer="x" * 16, nan_count=3)) == (True, True)  # but a new NaN is a behaviour


def test_a_wrong_answered_entry_of_an_invalid_input_is_an_accuracy_fail_for_the_registry():
    from conformance.judge.known import Entry, record_kinds

    _, r = _pair(invalid=True, answered_wrong=True, behaviour="nonfinite", status="fail", tol_ratio=2e7)
    assert record_kinds(r) == ("accuracy",) and record_kinds(r.but(answered_wrong=None)) == ("invalid-input",)
    floatx = Entry("floatx", {"framework": ["keras-jax"]}, "design", "r", "https://x", explains=("accuracy",), behaviours=("finite",))
    assert floatx.exceeded_by(r) is None  # the wrong entries are finite values, whatever NaN the row beside them holds


def test_a_door_asked_to_answer_in_float32_is_judged_in_float32s_range():
    """log_softmax of [65504, -65504] in float16: the true -131008 is past float16's range (so -inf is right there),
    but a door asked for a float32 answer (torch's dtype=) must give the finite value."""
    from conformance.judge.compare import compare_values

    ref = np.array([0.0, -131008.0], dtype=np.longdouble)
    tol = np.full(2, 1e-3)
    finite = np.array([0.0, -131008.0], np.float32)
    assert compare_values(finite, ref, tol, "float16", "float32").status == "pass"
    assert compare_values(np.array([0.0, -np.inf], np.float32), ref, tol, "float16", "float32").status == "fail"
    assert compare_values(np.array([0.0, -np.inf], np.float16), ref, tol, "float16").status == "pass"
