"""Batch invariance and determinism as record fields (run/properties.py): functions whose properties are known by
construction are measured as having them or not, a case that cannot be probed is refused at load, the gate fails a
record that loses a property, and a run of the bundled suite carries both on its records and in its report."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from results_factory import load as load_results
from results_factory import record, write

from conformance.app.cli import main
from conformance.corpus.cases import CaseFileError, load
from conformance.corpus.inputs import build
from conformance.gate import records as gate
from conformance.gate.outcome import RegressionKind
from conformance.report.diff import Attribution, MoveKind, record_moves
from conformance.run import properties
from conformance.run.runner import references

CASE = textwrap.dedent("""\
    suite: props
    description: a batch to probe
    cases:
      - id: rows
        description: 40 rows of 16 classes
        ops: [log_softmax]
        dtypes: [float32]
        quantities: [value, grad_logits]
        properties: [batch_invariance, determinism]
        logits: {generate: normal, shape: [40, 16], scale: 3.0, seed: 11}
    """)


def _inputs(tmp_path):
    path = tmp_path / "props.yaml"
    path.write_text(CASE)
    (case,) = load([path])
    inputs = build(case, "log_softmax", "float32")
    return inputs, references(case, inputs, ("value", "grad_logits"))


def _log_softmax(x: np.ndarray, nudge: float = 0.0) -> dict:
    """Row-wise in float64, rounded to float32 once: each row's answer depends on that row alone. `nudge` moves every
    entry by that many float32 ulps of itself (a stand-in for a kernel that sums in another order)."""
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=-1, keepdims=True)
    value = (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(np.float32)
    value = value + nudge * np.spacing(value)
    grad = (1.0 - np.exp(value.astype(np.float64)) * x.shape[-1]).astype(np.float32)  # d/dx of sum(log_softmax(x)), cotangent ones
    return {"value": value, "grad_logits": grad}


def test_a_row_wise_function_is_batch_invariant_and_deterministic_bitwise(tmp_path):
    inputs, refs = _inputs(tmp_path)
    outs = _log_softmax(inputs.logits)
    found = properties.probe(lambda derived: _log_softmax(derived.logits), inputs, outs, refs, ("value",),
                             ("batch_invariance", "determinism"), None)
    assert found["value"]["batch_invariance"] == {"bitwise": True, "within_tolerance": True, "max_ulp": 0.0}
    assert found["value"]["determinism"]["bitwise"] is True


def test_a_function_that_answers_a_batch_of_one_otherwise_is_not_bitwise_batch_invariant(tmp_path):
    """One ulp away for a batch of one: not bitwise, within tolerance (the tolerance allows 20 roundings at 16
    classes); a hundred thousand ulps away: neither."""
    inputs, refs = _inputs(tmp_path)
    outs = _log_softmax(inputs.logits)
    for nudge, within in ((1.0, True), (1e5, False)):
        def call(derived, nudge=nudge):
            return _log_softmax(derived.logits, nudge if derived.logits.shape[0] == 1 else 0.0)
        found = properties.probe(call, inputs, outs, refs, ("value",), ("batch_invariance",), None)["value"]["batch_invariance"]
        assert found["bitwise"] is False and found["within_tolerance"] is within and found["differs"] == ["alone"], nudge
        assert found["max_ulp"] >= nudge * 0.99


def test_a_function_that_answers_differently_the_second_time_is_not_deterministic(tmp_path):
    inputs, refs = _inputs(tmp_path)
    outs = _log_softmax(inputs.logits)
    calls = []

    def call(derived):
        calls.append(derived.logits.shape)
        return _log_softmax(derived.logits, 2.0)  # every call after the first: two ulps off

    found = properties.probe(call, inputs, outs, refs, ("value", "grad_logits"), ("determinism",), None)
    assert calls == [inputs.logits.shape]  # the whole batch, once more
    assert found["value"]["determinism"]["bitwise"] is False and found["value"]["determinism"]["within_tolerance"] is True


def test_a_variant_that_raises_holds_neither_and_says_why(tmp_path):
    inputs, refs = _inputs(tmp_path)
    outs = _log_softmax(inputs.logits)

    def call(derived):
        if derived.logits.shape[0] == 1:
            raise ValueError("a batch of one is refused")
        return _log_softmax(derived.logits)

    found = properties.probe(call, inputs, outs, refs, ("value",), ("batch_invariance",), None)["value"]["batch_invariance"]
    assert found["bitwise"] is False and found["within_tolerance"] is False and "a batch of one is refused" in found["error"]


def test_the_derived_batches_hold_the_probed_row_where_they_say(tmp_path):
    inputs, _ = _inputs(tmp_path)
    first = inputs.logits[properties.PROBED_ROW]
    for name, (derived, at) in properties.variants(inputs).items():
        assert np.array_equal(derived.logits[at], first), name
    alone, position, padding = (properties.variants(inputs)[n][0] for n in ("alone", "position", "padding"))
    assert alone.logits.shape[0] == 1 and position.logits.shape == inputs.logits.shape
    assert padding.logits.shape[0] == 1 + properties.PADDING_ROWS and not padding.logits[1:].any()


@pytest.mark.parametrize("change, why", [("options: {reduction: mean}", "reduction"), ("axis: 0", "batch axis"),
                                         ("invalid: true", "invalid")])
def test_a_case_that_cannot_be_probed_is_refused_at_load(tmp_path, change, why):
    text = CASE.replace("ops: [log_softmax]", "ops: [softmax_cross_entropy]\n    labels: {generate: dirichlet, shape: [40, 16], seed: 3}") \
        if "reduction" in change else CASE
    path = tmp_path / "bad.yaml"
    path.write_text(text + f"    {change}\n")
    with pytest.raises(CaseFileError, match="properties") as caught:
        load([path])
    assert why in str(caught.value)


def _with(level: str) -> dict:
    return {"bitwise": level == "bitwise", "within_tolerance": level != "neither", "max_ulp": 0.0 if level == "bitwise" else 3.0}


def test_losing_a_property_is_a_gate_regression_and_gaining_one_an_improvement(tmp_path):
    base = write(tmp_path, "b", [record(batch_invariance=_with("bitwise"), determinism=_with("bitwise"))])
    worse = write(tmp_path, "c", [record(batch_invariance=_with("within tolerance"), determinism=_with("bitwise"))])
    report = gate.gate(base, worse)
    assert [r.kind for r in report.regressions] == [RegressionKind.PROPERTY] and "batch invariance: bitwise" in report.regressions[0].text
    assert not gate.gate(worse, base).regressions and gate.gate(worse, base).improvements


def test_a_property_only_one_run_measured_is_not_a_move():
    before, after = record(), record(determinism=_with("neither"))
    assert not [m for m in record_moves(before, after, Attribution()) if m.kind is MoveKind.PROPERTY]


def test_the_bundled_suite_records_both_properties_and_the_report_shows_them(tmp_path):
    out = tmp_path / "out"
    code = main(["run", "--frameworks", "numpy", "--case", "batch-invariance/rows-*", "--dtypes", "float32", "--out", str(out)])
    assert code == 0
    ran = [r for r in load_results(out / "results.json")["records"] if r["status"] != "unsupported"]
    assert ran and all("batch_invariance" in r and "determinism" in r for r in ran)
    assert main(["report", str(out / "results.json"), "--out", str(tmp_path / "rep")]) == 0
    details = (tmp_path / "rep" / "details.md").read_text()
    assert "## Batch invariance and determinism" in details and "| numpy |" in details.split("## Batch invariance")[1]
    assert 'id="properties"' in (tmp_path / "rep" / "index.html").read_text()
    assert "batch-invariant / deterministic" in (tmp_path / "rep" / "which-function.md").read_text()
