"""`conformance check` on the loss functions people have (tests/real_losses/losses.py, each in the style of a
well-known library): a function that returns the mean says so, or the tool infers it, and is judged on the mean cases
against the oracle's mean; an answer of the wrong shape is the call's contract error, never a pass on invalid input;
the framework's registered divergences are said as such. No record is caused by the tool's own assumptions, and
every failure reported is true (each is checked here against mathematics or the framework's own record)."""

from __future__ import annotations

import pytest
from results_factory import record

torch = pytest.importorskip("torch")

from real_losses import losses  # noqa: E402

from conformance.testing import check  # noqa: E402

NARROW = {"modes": ["eager"], "dtypes": ["float32", "float64"]}


def _tool_caused(result) -> list[dict]:
    """Records caused by the tool's own assumptions: a reduction composed around a function that already returns
    one, a shape error from a reduction the function did not compute, an autograd shape mismatch."""
    returned = (result.doc["environment"]["frameworks"]["user"].get("flags") or {}).get("returns", "none")
    return [r for r in result.mine if (r.get("composed") and returned != "none") or (r.get("error") or {}).get("type") == "ContractError"
            or "Mismatch in shape" in str((r.get("error") or {}).get("message"))]


def test_a_mean_returning_module_is_judged_on_the_mean_cases_and_its_one_failure_is_true():
    result = check(losses.smoothed_mean, op="sparse_softmax_cross_entropy", framework="torch", **NARROW)
    assert result.summary()[0].startswith("returns: mean (inferred")
    assert not _tool_caused(result)
    judged = [r for r in result.mine if r["status"] != "unsupported"]
    assert judged and {r["case"] for r in judged} and all("mean" in r["case"] or _case_reduction(r) == "mean" for r in judged)
    other = [r for r in result.mine if r["status"] == "unsupported" and "returns the mean" in (r.get("reason") or "")]
    assert other  # the per-example and sum cases: unsupported, with the reason
    failing = {(r["case"], r["quantity"]) for r in result.failures}
    # every target ignored: the mean is 0/0, which no logit enters: the gradient is 0 (the oracle, and torch's own
    # cross_entropy); the module divides 0 by 0 and returns NaN gradients. A true finding, and the only one.
    assert failing == {("sparse-labels/every-label-ignored-mean", "grad_logits")}, failing
    assert all(result._theirs[id(r)]["status"] == "pass" for r in result.failures)


def _case_reduction(r: dict) -> str:
    from conformance.corpus import bundled
    from conformance.corpus.cases import load

    case = next(c for c in load([bundled.cases_dir()]) if c.full_id == r["case"])
    return case.options.reduction


def test_a_causal_lm_loss_with_its_label_shift_needs_three_lines_of_glue_and_is_judged_as_a_mean():
    result = check(losses.causal_lm_glue, op="sparse_softmax_cross_entropy", framework="torch", **NARROW)
    assert "returns: mean" in result.summary()[0] and not _tool_caused(result)
    assert [r for r in result.mine if r["status"] == "pass"]
    # true: the loss upcasts with .float(), so float64 logits are computed in float32 (its value says so in out_dtype,
    # and its gradients carry float32's error); every other failure is a call torch's own function answers otherwise
    computed_in_float32 = {(r["case"]) for r in result.mine if r.get("out_dtype") == "float32" and r["dtype"] == "float64"}
    assert computed_in_float32
    for r in result.failures:
        theirs = result._theirs[id(r)]
        assert (r["dtype"] == "float64" and r["case"] in computed_in_float32) or theirs["status"] != "pass" \
            or r["case"] == "sparse-labels/every-label-ignored-mean", (r["case"], r["dtype"], r.get("detail"), theirs["status"])


def test_a_function_written_for_flattened_input_is_judged_on_every_shape():
    result = check(losses.flat_cross_entropy, op="sparse_softmax_cross_entropy", framework="torch", **NARROW)
    assert "returns: none" in result.summary()[0] and not _tool_caused(result)
    assert any(r["case"] == "reductions/mean-over-3d" and r["status"] == "pass" for r in result.mine)  # [4, 3] losses given flat
    for r in result.failures:  # F.cross_entropy's own behaviours, registered for torch: said as such
        assert result._theirs[id(r)]["status"] == "known", r
    assert "yours matches a registered divergence of theirs" in result.comparison()


def test_declaring_per_example_losses_for_a_mean_is_a_contract_error_not_a_pass_on_invalid_input():
    result = check(losses.smoothed_mean, op="sparse_softmax_cross_entropy", framework="torch", returns="none", **NARROW)
    contract = [r for r in result.mine if (r.get("error") or {}).get("type") == "ContractError"]
    assert contract and all(r["status"] == "error" for r in contract)
    assert not [r for r in contract if r.get("invalid") and r["status"] == "pass"]
    assert "returned shape [] where per-example losses" in contract[0]["error"]["message"]


def test_a_masked_softmax_that_adds_1e_13_fails_only_where_it_is_wrong():
    result = check(losses.masked_softmax, op="masked_softmax", framework="torch", **NARROW)
    assert not _tool_caused(result)
    for r in result.failures:
        # true, each: float64 cannot absorb the 1e-13 (a relative error of 1e-13 against a tolerance near 1e-15); a fully
        # masked row is a silent row of zeros; a NaN or inf under the mask poisons its row through vector * mask; and
        # vector * mask turns a masked logit into 0, which outweighs kept logits below 0 (kept-logits-below-...)
        assert (r["dtype"] == "float64" or r.get("silent") or "holds-" in r["case"] or r["case"].endswith("kept-logits-below-the-mask-constant")), \
            (r["case"], r["dtype"], r.get("detail"))
        assert result._theirs[id(r)]["status"] == "pass"  # torch's own masked softmax gets each of them right


def test_a_numpy_mean_is_inferred_too():
    result = check(losses.numpy_mean_cross_entropy, op="softmax_cross_entropy", framework="numpy", **NARROW)
    assert "returns: mean" in result.summary()[0] and not _tool_caused(result) and not result.failures


def test_a_lambda_gets_no_rerun_command_that_cannot_work():
    from conformance.run.check import command

    said = command(record(impl="__main__:<lambda>", impl_id="user/numpy/softmax", framework="user"))
    assert said.startswith("# none:") and "importable" in said
    local = command(record(impl="tests.test_x:test_f.<locals>.mine", impl_id="user/numpy/softmax", framework="user"))
    assert local.startswith("# none:")
