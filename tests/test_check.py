"""`conformance check` and `conformance.testing.check`: a user's own function judged as a built-in implementation is,
beside the framework's own function, from the command line and from pytest; its failures named, with re-run
commands that work as printed; an error in its own code never a pass."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conformance.testing import check

MINE = textwrap.dedent('''
    import numpy as np

    def softmax(x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def unshifted(x, axis=-1):  # the textbook formula: exp overflows on large logits
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    def broken(x, axis=-1):
        return None.exp(x)
''')


def _check(tmp_path, name, *more):
    (tmp_path / "mine.py").write_text(MINE)
    return subprocess.run([sys.executable, "-m", "conformance.app.cli", "check", f"mine.py:{name}", "--op", "softmax", "--framework", "numpy",
                           "--out", str(tmp_path / name), *more], capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_a_right_softmax_passes_beside_the_frameworks(tmp_path):
    res = _check(tmp_path, "softmax")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "beside scipy.special.softmax" in res.stdout and "same verdict" in res.stdout and "yours fails" not in res.stdout


def test_an_unshifted_softmax_fails_and_its_rerun_works_from_another_folder(tmp_path):
    res = _check(tmp_path, "unshifted")
    assert res.returncode == 1 and "yours fails where the framework's passes" in res.stdout
    assert "YOURS FAIL extreme-logits/huge-positive-row" in res.stdout  # an overflowing case, named
    command = next(line.split("re-run: ", 1)[1] for line in res.stdout.splitlines() if "re-run: " in line)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = subprocess.run(command.replace("conformance check", f"{sys.executable} -m conformance.app.cli check", 1), shell=True,
                           capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert again.returncode == 1 and "1 records" in again.stdout and "YOURS FAIL" in again.stdout, again.stdout + again.stderr


def test_an_error_in_the_users_code_is_never_a_pass(tmp_path):
    res = _check(tmp_path, "broken", "--case", "invalid-input/*", "--case", "extreme-logits/*")
    assert res.returncode == 1 and " 0 pass," in res.stdout and "AttributeError raised by the calling code" in res.stdout


def test_a_target_that_names_nothing_is_exit_2(tmp_path):
    res = _check(tmp_path, "nothere")
    assert res.returncode == 2 and "has no function 'nothere'" in res.stderr and "Traceback" not in res.stderr


def test_from_pytest_a_torch_softmax_and_a_wrong_backward():
    torch = pytest.importorskip("torch")

    def softmax(x, dim=-1):
        e = torch.exp(x - x.amax(dim=dim, keepdim=True))
        return e / e.sum(dim=dim, keepdim=True)

    class WrongBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.softmax(x, dim=-1)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y  # forgets the - y * sum(g * y) term

    selection = {"case": ["published-values/*", "gradients/softmax-seeded-cotangent"], "modes": ["eager"], "dtypes": ["float32", "float64"]}
    good = check(softmax, op="softmax", framework="torch", **selection)
    good.assert_ok()
    assert good.mine and any(r["quantity"] == "grad_logits" and r["status"] == "pass" for r in good.mine)
    bad = check(lambda x: WrongBackward.apply(x), op="softmax", framework="torch", **selection)
    with pytest.raises(AssertionError, match="grad_logits"):
        bad.assert_ok()
    assert all(r["status"] == "pass" for r in bad.mine if r["quantity"] == "value")
    # one pytest item per group (case, dtype, mode): the groups with a gradient fail alone, the value-only ones pass
    groups = bad.groups()
    assert "gradients/softmax-seeded-cotangent float32 eager" in groups and len(groups) == len(set(groups)) >= 4
    failing = {g for g in groups if any(r["quantity"] == "grad_logits" and r["status"] == "fail" and
                                        f"{r['case']} {r['dtype']} {r['mode']}" == g for r in bad.mine)}
    for group in groups:
        if group in failing:
            with pytest.raises(AssertionError, match=group.split()[0]):
                bad.assert_ok(group)
        else:
            bad.assert_ok(group)
    assert failing
    with pytest.raises(AssertionError, match="no records"):
        bad.assert_ok("no-such/case float32 eager")


def test_from_pytest_a_jax_sparse_cross_entropy_that_ignores_nothing():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def sparse_ce(logits, labels, axis=-1):
        logp = jax.nn.log_softmax(logits, axis=axis)
        return -jnp.take_along_axis(logp, jnp.expand_dims(labels, axis), axis=axis).squeeze(axis)

    result = check(sparse_ce, op="sparse_softmax_cross_entropy", framework="jax", case=["published-values/*", "sparse-labels/first-class"],
                   modes=["eager"], dtypes=["float32"])
    result.assert_ok()
    assert result.mine and {r["status"] for r in result.mine} <= {"pass", "unsupported"}


def test_from_pytest_a_tensorflow_softmax():
    tf = pytest.importorskip("tensorflow")

    result = check(lambda x, axis=-1: tf.nn.softmax(x, axis=axis), op="softmax", framework="tensorflow", case=["published-values/*"],
                   modes=["eager"], dtypes=["float32"])
    result.assert_ok()
    assert any(r["status"] == "pass" for r in result.mine)


def test_a_kernel_that_writes_its_gradient_into_the_logits_fails_whatever_it_returns():
    torch = pytest.importorskip("torch")

    class GradInLogits(torch.autograd.Function):
        """What memory-saving fused kernels do: compute the gradient in the forward and store it in the logits' memory."""

        @staticmethod
        def forward(ctx, x):
            y = torch.softmax(x, dim=-1)
            out = y.clone()
            ctx.save_for_backward(y)
            x.data.copy_(y)  # behind autograd's back: the caller's logits are gone
            return out

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return y * (g - (g * y).sum(-1, keepdim=True))

    result = check(lambda x: GradInLogits.apply(x), op="softmax", framework="torch", case=["published-values/*"],
                   modes=["eager"], dtypes=["float32"])
    values = [r for r in result.mine if r["quantity"] == "value"]
    assert values and all(r["status"] == "fail" and "logits" in r["overwritten"] and "forward" in r["overwritten"] for r in values)
    assert all(r["max_ulp"] is not None and r["max_ulp"] <= 4 for r in values)  # the answer itself is right: the input is what broke
    with pytest.raises(AssertionError, match="wrote into its input logits"):
        result.assert_ok()


def test_a_backward_that_reads_only_the_first_cotangent_fails_on_a_per_example_cotangent():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    class FirstCotangent(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, t):
            ctx.save_for_backward(x, t)
            return F.cross_entropy(x, t, reduction="none")

        @staticmethod
        def backward(ctx, g):
            x, t = ctx.saved_tensors
            p = torch.softmax(x, dim=-1) - F.one_hot(t, x.shape[-1]).to(x.dtype)
            return g[0] * p, None  # the bug: one scalar for every row, right only for a uniform cotangent

    result = check(lambda x, t: FirstCotangent.apply(x, t), op="sparse_softmax_cross_entropy", framework="torch",
                   case=["gradients/cross-entropy-seeded-cotangent", "gradients/mean-reduction-gradient"],
                   modes=["eager"], dtypes=["float64"], quantities=["value", "grad_logits"])
    by = {(r["case"], r["quantity"]): r["status"] for r in result.mine}
    assert by[("gradients/cross-entropy-seeded-cotangent", "value")] == "pass"
    assert by[("gradients/cross-entropy-seeded-cotangent", "grad_logits")] == "fail"  # the per-example cotangent exposes it


def test_a_numpy_function_that_shifts_in_place_fails_and_leaves_the_corpus_intact():
    def shifted_in_place(x, axis=-1):
        x -= x.max(axis=axis, keepdims=True)
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    result = check(shifted_in_place, op="softmax", framework="numpy", case=["published-values/*", "extreme-logits/*"], dtypes=["float32"],
                   modes=["eager"])
    values = [r for r in result.mine if r["quantity"] == "value" and r["status"] != "unsupported"]
    unshifted = "extreme-logits/float32-underflow-probabilities"  # every row's max is 0 already: nothing is written
    assert len(values) > 5 and all(r["status"] == "fail" and r["overwritten"].startswith("logits") for r in values if r["case"] != unshifted)
    assert all(r["status"] == "pass" and "overwritten" not in r for r in values if r["case"] == unshifted)
    theirs = [t for _, t in result.pairs if t and t["quantity"] == "value"]
    assert theirs and all(t["status"] in ("pass", "known") for t in theirs)  # scipy's own function, judged on the same cases


def test_a_mean_that_divides_by_the_count_of_targets_gives_nan_gradients_when_every_label_is_ignored():
    torch = pytest.importorskip("torch")

    def ce(x, t, ignore_index=-100, reduction="none"):
        keep = t != ignore_index
        loss = -torch.log_softmax(x, -1).gather(-1, t.clamp(min=0)[:, None]).squeeze(-1) * keep
        return loss.sum() / keep.sum() if reduction == "mean" else loss.sum() if reduction == "sum" else loss

    result = check(ce, op="sparse_softmax_cross_entropy", framework="torch", case=["sparse-labels/every-label-ignored-*"],
                   modes=["eager"], dtypes=["float32"], quantities=["value", "grad_logits"])
    by = {(r["case"].split("/")[1], r["quantity"]): r for r in result.mine}
    assert by[("every-label-ignored-mean", "value")]["status"] == "pass"  # 0/0 is NaN: the mean has no value
    grad = by[("every-label-ignored-mean", "grad_logits")]
    assert grad["status"] == "fail" and grad["nan_count"] == grad["size"]  # but no logit enters it: the gradient is 0
    assert {r["status"] for k, r in by.items() if k[0] == "every-label-ignored-sum"} == {"pass"}


def test_a_loss_returned_in_another_dtype_than_the_frameworks_is_named():
    torch = pytest.importorskip("torch")

    def ce(x, t):  # right to float32's precision, but hands a bfloat16 caller a float32 loss
        return torch.nn.functional.cross_entropy(x.float(), t, reduction="none")

    result = check(ce, op="sparse_softmax_cross_entropy", framework="torch", case=["gradients/half-precision-gradients",
                   "published-values/*"], modes=["eager"], dtypes=["bfloat16", "float32"], quantities=["value"])
    by = {r["dtype"]: r for r in result.failures}
    assert set(by) == {"bfloat16"} and by["bfloat16"]["out_dtype"] == "float32" and by["bfloat16"]["status"] == "pass"
    assert any(r["dtype"] == "float32" and r["status"] == "pass" for r in result.mine)
    with pytest.raises(AssertionError, match="answered in float32 where the framework's own function answers in bfloat16"):
        result.assert_ok()


def _llm_ce(torch, cap_grad_right=True, z_factor=2.0):
    """A sparse cross-entropy with soft-capping and z-loss as LLM kernels write it; the flags plant the usual bugs."""
    F = torch.nn.functional

    class Capped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, c):
            ctx.save_for_backward(x)
            ctx.c = c
            return c * torch.tanh(x / c)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return (g / torch.cosh(x / ctx.c) ** 2 if cap_grad_right else g), None  # the bug: no sech^2 factor

    class ZLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, z):
            lse = torch.logsumexp(x, -1)
            ctx.save_for_backward(x, lse)
            ctx.z = z
            return z * lse ** 2

        @staticmethod
        def backward(ctx, g):
            x, lse = ctx.saved_tensors
            return (g * z_factor * ctx.z * lse)[..., None] * torch.softmax(x, -1), None

    def ce(logits, labels, softcap=None, z_loss=0.0, ignore_index=-100, reduction="none"):
        x = Capped.apply(logits, softcap) if softcap is not None else logits
        keep = labels != ignore_index
        loss = F.cross_entropy(x, labels, ignore_index=ignore_index, reduction="none")
        if z_loss:
            loss = loss + ZLoss.apply(x, z_loss) * keep
        if reduction == "mean":
            return loss.sum() / keep.sum()
        return loss.sum() if reduction == "sum" else loss

    return ce


def test_soft_capping_and_z_loss_are_judged_against_the_oracle():
    torch = pytest.importorskip("torch")
    selection = {"case": ["llm-losses/*"], "modes": ["eager"], "dtypes": ["float32", "float64"], "quantities": ["value", "grad_logits"]}
    right = check(_llm_ce(torch), op="sparse_softmax_cross_entropy", framework="torch", **selection)
    right.assert_ok()
    assert {r["case"] for r in right.mine if r["status"] == "pass"} >= {"llm-losses/softcap-30", "llm-losses/z-loss-palm-mean"}
    theirs = {t["status"] for _, t in right.pairs if t}
    assert theirs == {"unsupported"}  # torch.nn.functional.cross_entropy takes neither option: never emulated
    # its z-loss backward reuses the forward's lse, a constant to autograd: the double backward drops 2 z p p^T
    hvp = check(_llm_ce(torch), op="sparse_softmax_cross_entropy", framework="torch", case=["llm-losses/z-loss-large-lse"],
                modes=["eager"], dtypes=["float64"], quantities=["hvp"])
    assert [r["status"] for r in hvp.mine] == ["fail"]
    for bug, case in (({"cap_grad_right": False}, "llm-losses/softcap-30"), ({"z_factor": 1.0}, "llm-losses/z-loss-large-lse")):
        wrong = check(_llm_ce(torch, **bug), op="sparse_softmax_cross_entropy", framework="torch", **selection)
        by = {(r["case"], r["quantity"], r["dtype"]): r["status"] for r in wrong.mine}
        assert by[(case, "value", "float64")] == "pass" and by[(case, "grad_logits", "float64")] == "fail", (bug, by)


def test_a_tensorflow_custom_gradient_is_differentiated_as_written():
    tf = pytest.importorskip("tensorflow")

    def make(right: bool):
        @tf.custom_gradient
        def softmax(x):
            y = tf.nn.softmax(x, axis=-1)

            def grad(g):
                return y * (g - tf.reduce_sum(g * y, axis=-1, keepdims=True)) if right else g * y  # the bug: no centring
            return y, grad
        return softmax

    selection = {"case": ["gradients/softmax-seeded-cotangent"], "modes": ["eager", "compiled"], "dtypes": ["float32"],
                 "quantities": ["value", "grad_logits"]}
    check(make(True), op="softmax", framework="tensorflow", **selection).assert_ok()
    wrong = check(make(False), op="softmax", framework="tensorflow", **selection)
    assert {(r["quantity"], r["mode"]): r["status"] for r in wrong.mine} == {
        ("value", "eager"): "pass", ("value", "compiled"): "pass", ("grad_logits", "eager"): "fail", ("grad_logits", "compiled"): "fail"}


def test_a_graph_break_under_fullgraph_is_unsupported_and_the_split_compile_is_judged():
    """torch.compile(fullgraph=True) refuses a function that breaks its graph: those records are `unsupported`, with
    the break named, and the same function compiled with graph breaks allowed is judged (a wrong one fails); a function
    that compiles whole has no split-compile records but `skip` ones, saying why."""
    torch = pytest.importorskip("torch")

    def breaks(x, dim=-1):
        y = torch.softmax(x, dim=dim)
        torch._dynamo.graph_break()
        return y

    def breaks_and_is_wrong(x, dim=-1):
        torch._dynamo.graph_break()
        return torch.softmax(x, dim=dim) * 1.001

    selection = {"op": "softmax", "framework": "torch", "case": ["published-values/*"], "modes": ("compiled",), "dtypes": ("float32",)}
    right = check(breaks, **selection)
    whole = [r for r in right.mine if not r["impl_id"].endswith("/graph-breaks")]
    split = [r for r in right.mine if r["impl_id"].endswith("/graph-breaks")]
    assert whole and all(r["status"] == "unsupported" and "graph break under torch.compile(fullgraph=True)" in r["reason"] for r in whole)
    assert split and all(r["status"] == "pass" for r in split)
    right.assert_ok()
    wrong = check(breaks_and_is_wrong, **selection)
    assert {r["status"] for r in wrong.mine if r["impl_id"].endswith("/graph-breaks")} == {"fail"}
    plain = check(lambda x, dim=-1: torch.softmax(x, dim=dim), **selection)
    assert {r["status"] for r in plain.mine if r["impl_id"].endswith("/graph-breaks")} == {"skip"}
    assert {r["status"] for r in plain.mine if not r["impl_id"].endswith("/graph-breaks")} == {"pass"}


def test_a_compiled_function_is_checked_against_each_calls_own_shape():
    """One compiled function serves every shape of a rank (dynamic shapes) and keeps the inputs of the call that compiled
    it: the answer's shape must be checked against the call's own logits, or a right softmax is a contract error on
    every later shape ("returned shape [1, 3] where the logits' shape [1, 5] were expected": 28 of 54 records)."""
    torch = pytest.importorskip("torch")
    got = check(lambda x, dim=-1: torch.softmax(x, dim=dim), op="softmax", framework="torch", case=["extreme-logits/*"],
                modes=("compiled",), dtypes=("float32",))
    whole = [r for r in got.mine if not r["impl_id"].endswith("/graph-breaks")]
    assert len({tuple(np.shape(r["output"])) for r in whole}) > 2 and {r["status"] for r in whole} == {"pass"}


def test_a_check_reaches_its_workers_through_their_configuration_and_leaves_this_process_as_it_was(tmp_path, monkeypatch):
    """The function under check, its adapter and the case files' limits travel with every shard (run/config.py), not
    through environment variables: a check in worker processes (jobs 2) judges the function, sets nothing in
    os.environ, and afterwards this process finds no framework `user`."""
    from conformance.adapters import registered
    from conformance.corpus import safe_yaml
    from conformance.run import check as check_mod
    from conformance.run.runner import Selection

    (tmp_path / "mine.py").write_text(MINE)
    monkeypatch.chdir(tmp_path)
    before, limits = dict(__import__("os").environ), safe_yaml.set_limits(safe_yaml.Limits())
    sel = Selection((), ("float64",), ("cpu",), ("eager",), None, cases=("published-values/*",))
    result = check_mod.run("mine.py:unshifted", "numpy", "softmax", sel, jobs=2)
    safe_yaml.set_limits(limits)
    assert result.complete and result.mine and {r.framework for r in result.mine} == {"user"}
    assert dict(__import__("os").environ) == before and "user" not in registered()
