"""The gate's rules over one move (conformance/gate/records.py, RULES), each shown deciding the move it speaks for and
leaving the others to the next rule. Expected decisions come from the rules' documented meaning (the gate's
docstring), not from running them."""

from __future__ import annotations

from conformance.gate import records as gate
from conformance.gate.outcome import RegressionKind
from conformance.model.status import Status
from conformance.report.diff import Attribution, Move, MoveKind

SAME = Attribution()
NEW_CPU = Attribution(cpu=("Intel Xeon avx512", "AMD EPYC avx2"))
UPGRADE = Attribution(versions=("numpy 2.3.0 -> 2.4.6",))


def move(kind: MoveKind, worse: bool = True, naive: bool = False, why: Attribution = SAME, **over) -> Move:
    return Move(kind, "s/c softmax value float32 numpy scipy eager cpu", "numpy", over.pop("before", "a"), over.pop("after", "b"),
                worse, naive, why, **over)


def status_move(before: Status, after: Status, why: Attribution = SAME, naive: bool = False) -> Move:
    return move(MoveKind.STATUS, after.worse_than(before), naive, why, before=before.value, after=after.value, statuses=(before, after))


def test_a_status_move_for_the_worse_is_a_status_regression_even_for_a_naive_formula():
    for before, after in ((Status.PASS, Status.FAIL), (Status.PASS, Status.UNSUPPORTED), (Status.KNOWN, Status.ERROR)):
        decided = gate.decide(status_move(before, after, naive=True))
        assert decided.regression and decided.regression.kind is RegressionKind.STATUS, (before, after)
    assert gate.decide(move(MoveKind.NEW, worse=True)).regression.kind is RegressionKind.STATUS


def test_a_status_move_for_the_better_is_an_improvement():
    decided = gate.decide(status_move(Status.FAIL, Status.PASS))
    assert decided.regression is None and decided.improvement.startswith("status:")


def test_pass_to_known_on_another_cpu_is_a_note_and_on_the_same_cpu_a_regression():
    assert gate.decide(status_move(Status.PASS, Status.KNOWN, NEW_CPU)).note and not gate.decide(status_move(Status.PASS, Status.KNOWN, NEW_CPU)).regression
    assert gate.decide(status_move(Status.PASS, Status.KNOWN, UPGRADE)).regression.kind is RegressionKind.STATUS


def test_accuracy_within_and_beyond_each_envelope():
    def acc(before: float, after: float, why: Attribution = SAME, naive: bool = False) -> Move:
        return move(MoveKind.ACCURACY, after > before, naive, why, before_ratio=before, after_ratio=after)

    assert gate.decide(acc(0.02, 0.80)).regression.kind is RegressionKind.ACCURACY  # 40x fails everywhere
    assert gate.decide(acc(0.02, 0.80, NEW_CPU)).regression
    assert not gate.decide(acc(0.10, 0.30, NEW_CPU)).regression  # +20% of the tolerance: inside the CPU envelope (+50%)
    assert gate.decide(acc(0.10, 0.30)).regression  # ... beyond the same environment's (+5%)
    assert not gate.decide(acc(0.02, 0.80, naive=True)).regression  # a naive formula's: reported, not gated
    assert gate.decide(acc(0.02, 0.80, naive=True), include_naive=True).regression
    assert gate.decide(acc(0.80, 0.02)).improvement


def test_an_answer_move_is_gated_unless_the_cpu_changed_or_a_release_entry_accepts_it():
    assert gate.decide(move(MoveKind.ANSWER)).regression.kind is RegressionKind.ANSWER
    assert gate.decide(move(MoveKind.ANSWER, why=NEW_CPU)).note and not gate.decide(move(MoveKind.ANSWER, why=NEW_CPU)).regression
    accepted = gate.decide(move(MoveKind.ANSWER, accepted_by="jax-0.10-changed-it"))
    assert accepted.regression is None and "jax-0.10-changed-it" in accepted.note
    assert gate.decide(move(MoveKind.ANSWER, worse=False)) == gate.NOTHING


def test_a_missing_record_is_left_to_the_completeness_check():
    assert gate.decide(move(MoveKind.MISSING)) == gate.NOTHING


def test_behaviour_and_nonfinite_moves_are_behaviour_regressions():
    for kind in (MoveKind.BEHAVIOUR, MoveKind.NONFINITE):
        assert gate.decide(move(kind)).regression.kind is RegressionKind.BEHAVIOUR
        assert not gate.decide(move(kind, naive=True)).regression


def test_every_rule_speaks_for_some_move():
    """No rule in RULES is dead: each is the first to decide one of the moves above."""
    moves = [status_move(Status.PASS, Status.FAIL), status_move(Status.FAIL, Status.PASS), status_move(Status.PASS, Status.KNOWN, NEW_CPU),
             move(MoveKind.ACCURACY, before_ratio=0.02, after_ratio=0.8), move(MoveKind.ANSWER), move(MoveKind.ANSWER, why=NEW_CPU),
             move(MoveKind.ANSWER, accepted_by="e"), move(MoveKind.MISSING), move(MoveKind.ANSWER, varies="e"),
             move(MoveKind.PROPERTY, why=NEW_CPU)]
    first = {next(rule.__name__ for rule in gate.RULES if rule(m, False) is not None) for m in moves}
    assert first == {rule.__name__ for rule in gate.RULES}


def test_a_record_whose_entry_varies_is_a_note_until_it_is_unexplained():
    """MLX's unchecked index: NaN (a pass) one run, a finite answer the entry explains the next, a killed process the
    one after. Listed, not gated, while neither run is unexplained (diff.record_moves marks such moves)."""
    varying = dict(varies="mlx-take-along-axis-reads-out-of-range-labels")
    assert gate.decide(move(MoveKind.STATUS, **varying, statuses=(Status.PASS, Status.KNOWN))).note
    for kind in (MoveKind.ANSWER, MoveKind.BEHAVIOUR, MoveKind.NONFINITE):
        decided = gate.decide(move(kind, **varying))
        assert decided.regression is None and "varies from run to run" in decided.note, kind
    assert gate.decide(status_move(Status.PASS, Status.FAIL)).regression  # diff never marks a move to an unexplained status


def test_diff_marks_a_move_varying_only_where_neither_run_is_unexplained():
    from results_factory import record

    from conformance.report.diff import record_moves

    entry = frozenset({"varying-entry"})
    nan = record(invalid=True, behaviour="all_nan", answer="n" * 16, error=None)
    explained = nan.but(status="known", known_id="varying-entry", known="https://x", behaviour="finite", answer="f" * 16)
    moves = record_moves(nan, explained, SAME, varying=entry)
    assert moves and all(m.varies == "varying-entry" for m in moves) and not any(gate.decide(m).regression for m in moves)
    failing = explained.but(status="fail", known_id=None, known=None)
    assert not any(m.varies for m in record_moves(explained, failing, SAME, varying=entry))
    assert any(gate.decide(m).regression for m in record_moves(explained, failing, SAME, varying=entry))


def test_a_lost_property_is_a_regression_on_the_same_cpu_and_a_note_on_another():
    assert gate.decide(move(MoveKind.PROPERTY)).regression.kind is RegressionKind.PROPERTY
    assert gate.decide(move(MoveKind.PROPERTY, why=UPGRADE)).regression.kind is RegressionKind.PROPERTY
    across = gate.decide(move(MoveKind.PROPERTY, why=NEW_CPU))
    assert across.regression is None and "not gated across CPUs" in across.note
