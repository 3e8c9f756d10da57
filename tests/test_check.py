"""`conformance check` and `conformance.testing.check`: a user's own function judged as a built-in implementation is,
beside the framework's own function, from the command line and from pytest; its failures named, with re-run
commands that work as printed; an error in its own code never a pass."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
    return subprocess.run([sys.executable, "-m", "conformance.cli", "check", f"mine.py:{name}", "--op", "softmax", "--framework", "numpy",
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
    again = subprocess.run(command.replace("conformance check", f"{sys.executable} -m conformance.cli check", 1), shell=True,
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
