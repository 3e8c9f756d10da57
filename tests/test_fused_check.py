"""A fused linear cross-entropy judged by `conformance.testing.check` and `conformance check`: a kernel that computes
in float32 for half inputs passes the linear-cross-entropy suite (with `accumulates_in="float32"`), and each bug that
LLM-kernel projects reported, planted in the same kernel (tests/fused_kernels.py), fails where it should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
import fused_kernels  # noqa: E402

from conformance.testing import check  # noqa: E402

HERE = Path(__file__).resolve().parent
SUITE = "linear-cross-entropy/*"
FAST = ("tokens-with-bias", "batch-smaller-than-a-chunk", "sequence-padding-mean", "per-token-cotangent", "confident-true-class-p099",
        "confident-true-class-p0999", "every-target-ignored-mean", "ignored-targets-with-class-weights")


def _check(fn, cases, dtypes=("float32", "bfloat16")):
    return check(fn, op="linear_cross_entropy", framework="torch", case=[f"linear-cross-entropy/{c}" for c in cases],
                 dtypes=dtypes, modes=("eager",), accumulates_in="float32")


def _failing(result) -> set[tuple[str, str, str]]:
    return {(r["case"].split("/", 1)[1], r["dtype"], r["quantity"]) for r in result.failures}


def test_a_right_fused_kernel_passes_beside_torchs_reference():
    result = _check(fused_kernels.fused_linear_cross_entropy, FAST)
    result.assert_ok()
    statuses = {r["status"] for r in result.mine}
    assert "pass" in statuses and statuses <= {"pass", "unsupported"}
    # what the kernel does not offer, said: no double backward (@once_differentiable), no class weights, no smoothing
    reasons = {r["reason"] for r in result.mine if r["status"] == "unsupported"}
    assert reasons and all("no double backward" in why or "differentiate twice" in why or "has no weight option" in why or "has no label_smoothing" in why
                           for why in reasons), reasons


def test_the_true_class_gradient_from_a_rounded_p_y_fails_in_bfloat16_only():
    failing = _failing(_check(fused_kernels.rounded_p_y, ["confident-true-class-p099", "confident-true-class-p0999", "tokens-with-bias"]))
    assert ("confident-true-class-p0999", "bfloat16", "grad_weight") in failing
    assert all(dtype == "bfloat16" for _, dtype, _ in failing)


def test_a_backward_that_reads_only_the_first_cotangent_fails_on_per_token_losses():
    failing = _failing(_check(fused_kernels.first_cotangent, ["per-token-cotangent", "tokens-with-bias"], dtypes=("float32",)))
    assert {q for c, _, q in failing if c == "per-token-cotangent"} >= {"grad_hidden", "grad_weight", "grad_bias"}
    assert not {c for c, _, _ in failing} - {"per-token-cotangent"}  # the mean's single cotangent hides it elsewhere


def test_a_gradient_written_into_the_hidden_states_fails_every_record():
    result = _check(fused_kernels.writes_hidden, ["tokens-with-bias"], dtypes=("float32",))
    answered = [r for r in result.mine if r["status"] != "unsupported"]
    assert answered and all(r["status"] == "fail" and r["overwritten"].startswith("hidden (") for r in answered)


def test_a_missing_bias_gradient_fails():
    failing = _failing(_check(fused_kernels.no_bias_gradient, ["tokens-with-bias"], dtypes=("float32",)))
    assert {q for _, _, q in failing} == {"grad_bias"}


def test_a_weight_gradient_divided_by_the_token_count_fails_where_targets_are_ignored():
    failing = _failing(_check(fused_kernels.weight_by_rows, ["sequence-padding-mean", "tokens-with-bias"], dtypes=("float32",)))
    assert failing == {("sequence-padding-mean", "float32", "grad_weight")}


def test_conformance_check_names_the_bug_from_the_command_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "check", f"{HERE / 'fused_kernels.py'}:first_cotangent",
                          "--op", "linear_cross_entropy", "--framework", "torch", "--case", "linear-cross-entropy/per-token-cotangent",
                          "--dtypes", "bfloat16", "--modes", "eager", "--accumulates-in", "float32", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "yours fails where the framework's passes" in res.stdout and "per-token-cotangent" in res.stdout
    assert "--accumulates-in float32" in res.stdout  # the re-run command judges it the same way


def test_a_gpu_only_kernel_makes_no_records_on_the_cpu_and_says_so_in_the_list():
    from conformance.adapters import load_adapter
    from conformance.adapters.catalogue import describe
    from conformance.corpus import bundled, cases
    from conformance.run.runner import Selection, judge_case

    torch_adapter = load_adapter("torch")
    gpu_only = [i for i in torch_adapter.implementations() if i.devices == ("gpu",)]
    assert {i.id for i in gpu_only} == {"torch/cce/cce", "torch/liger/fused_linear_cross_entropy"}
    assert all(not i.runs("linear-cross-entropy/tokens-with-bias", "eager", "float32", "cpu") for i in gpu_only)
    assert all(i.runs("linear-cross-entropy/tokens-with-bias", "eager", "float32", "gpu") for i in gpu_only)
    case = next(c for c in cases.load([bundled.cases_dir() / "linear-cross-entropy.yaml"]) if c.id == "batch-smaller-than-a-chunk")
    sel = Selection(("torch",), ("float32",), ("cpu",), ("eager",), impls=("torch/cce/*", "torch/liger/*"))
    records = judge_case(torch_adapter, case, sel)
    assert records and {r["impl_id"] for r in records} == {"torch/cce/torch_compile"}  # the CPU-capable path alone
    listed = {key: label for key, label, _ in describe("torch").implementations["linear_cross_entropy"]}
    assert listed["torch/liger/fused_linear_cross_entropy"].endswith("[gpu only]")
