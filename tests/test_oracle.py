"""The oracle's own accuracy: extended precision checked against 60-digit mpmath, derivatives against
finite differences (mpmath, 60 digits, so the differencing error is far below anything measured)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import mpmath
import numpy as np
import pytest

from conformance.corpus.cases import Options
from conformance.corpus.inputs import Inputs, output_shape
from conformance.judge import oracle, oracle_mp

RNG = np.random.default_rng(7)
SCALES = [1.0, 30.0, 1000.0]


def make(op, logits, labels=None, sparse=None, options=Options(), cotangent=None, direction=None) -> Inputs:
    logits = np.asarray(logits, dtype=np.float64)
    out_shape = output_shape(op, logits.shape, 1, options.reduction)
    g = np.asarray(cotangent if cotangent is not None else RNG.standard_normal(out_shape), dtype=np.float64).reshape(out_shape)
    d = np.asarray(direction if direction is not None else RNG.standard_normal(logits.shape), dtype=np.float64)
    return Inputs(op=op, dtype="float64", logits=logits, labels=None if labels is None else np.asarray(labels, np.float64),
                  sparse_labels=None if sparse is None else np.asarray(sparse, np.int64), axis=1, options=options,
                  cotangent=g, direction=d)


def mp_output(inp: Inputs, x=None, labels=None):
    """The op's output at logits x and dense labels (mpf nested lists), by the independent mpmath definitions."""
    x = inp.logits.tolist() if x is None else x
    labels = labels if labels is not None else (None if inp.labels is None else inp.labels.tolist())
    o = inp.options
    rows = oracle_mp.per_row(inp.op, x, labels=labels,
                             sparse=None if inp.sparse_labels is None else inp.sparse_labels.tolist(),
                             smoothing=o.label_smoothing, weight=o.weight, ignore_index=o.ignore_index, softcap=o.softcap,
                             z_loss=o.z_loss)
    if inp.op in ("softmax", "log_softmax"):
        return rows
    return oracle_mp.reduce(rows, o.reduction, sparse=None if inp.sparse_labels is None else inp.sparse_labels.tolist(),
                            weight=o.weight, ignore_index=o.ignore_index)


def objective(inp: Inputs, x, labels=None):
    """sum(cotangent * output): the scalar whose gradient is the VJP."""
    out = mp_output(inp, x, labels)
    g = inp.cotangent
    if np.ndim(out) == 0 or not isinstance(out, list):
        return mpmath.mpf(float(g)) * out
    flat_out = list(itertools.chain.from_iterable(out)) if isinstance(out[0], list) else out
    return mpmath.fsum(mpmath.mpf(float(a)) * b for a, b in zip(g.ravel(), flat_out))


def to_mpf(v) -> mpmath.mpf:
    """An extended-precision value as mpf, exactly (via 25 significant digits, more than the 64-bit significand needs)."""
    return mpmath.mpf(np.format_float_scientific(np.longdouble(v), precision=25, unique=False))


def float64_ulps(approx, exact) -> float:
    exact_f = float(exact)
    ulp = max(np.spacing(abs(exact_f)) if exact_f != 0 else 0.0, 5e-324)
    return float(abs(to_mpf(approx) - exact) / ulp) if np.isfinite(float(approx)) else np.inf


def test_extended_precision_available():
    assert oracle.EXTENDED, "longdouble is not the 80-bit format here; the oracle would not be accurate enough for float64"


CASES = [
    ("softmax", {}), ("log_softmax", {}),
    ("softmax_cross_entropy", {"labels": "dirichlet"}),
    ("softmax_cross_entropy", {"labels": "unnormalised", "options": Options(reduction="mean", label_smoothing=0.2)}),
    ("softmax_cross_entropy", {"labels": "dirichlet", "options": Options(reduction="sum", weight=(1.0, 2.0, 0.5, 3.0))}),
    ("sparse_softmax_cross_entropy", {"sparse": [0, 3, 1]}),
    ("sparse_softmax_cross_entropy", {"sparse": [0, 3, 1], "options": Options(reduction="mean", weight=(1.0, 2.0, 0.5, 3.0))}),
    ("sparse_softmax_cross_entropy", {"sparse": [0, -1, 2], "options": Options(reduction="mean", ignore_index=-1, label_smoothing=0.1)}),
    # the LLM-kernel options: soft-capping (Gemma 2's 30, and a tight 2 where tanh saturates), z-loss (PaLM's 1e-4, and 0.5)
    ("softmax_cross_entropy", {"labels": "dirichlet", "options": Options(softcap=2.0)}),
    ("sparse_softmax_cross_entropy", {"sparse": [0, 3, 1], "options": Options(softcap=30.0, reduction="mean")}),
    ("sparse_softmax_cross_entropy", {"sparse": [0, -1, 2], "options": Options(z_loss=0.5, ignore_index=-1, reduction="mean")}),
    ("softmax_cross_entropy", {"labels": "unnormalised", "options": Options(z_loss=1e-4, softcap=2.0, label_smoothing=0.1)}),
]


def build_case(op, spec, scale):
    logits = RNG.standard_normal((3, 4)) * scale
    labels = None
    if spec.get("labels") == "dirichlet":
        labels = RNG.dirichlet([0.5] * 4, size=3)
    elif spec.get("labels") == "unnormalised":
        labels = RNG.uniform(-0.5, 2.0, size=(3, 4))
    return make(op, logits, labels=labels, sparse=spec.get("sparse"), options=spec.get("options", Options()))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("op, spec", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_values_within_an_eighth_of_a_float64_ulp(op, spec, scale):
    inp = build_case(op, spec, scale)
    ref = oracle.compute(inp, "value").value
    exact = mp_output(inp)
    flat_exact = list(itertools.chain.from_iterable(exact)) if isinstance(exact, list) and isinstance(exact[0], list) else (
        exact if isinstance(exact, list) else [exact])
    worst = max(float64_ulps(a, e) for a, e in zip(np.ravel(ref), flat_exact))
    assert worst < 0.125, f"oracle off by {worst} float64 ulps"


@pytest.mark.parametrize("op, spec", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_gradients_match_finite_differences(op, spec):
    inp = build_case(op, spec, 3.0)
    ref = np.asarray(oracle.compute(inp, "grad_logits").value, dtype=np.float64)
    x0 = inp.logits.tolist()
    for i, j in itertools.product(range(3), range(4)):
        def f(t, i=i, j=j):
            x = [row[:] for row in x0]
            x[i][j] = x[i][j] + t
            return objective(inp, x)
        fd = float(mpmath.diff(f, 0))
        assert abs(ref[i, j] - fd) <= 1e-14 * (1 + abs(fd)), (i, j, ref[i, j], fd)


@pytest.mark.parametrize("op, spec", [c for c in CASES if c[0] == "softmax_cross_entropy"])
def test_label_gradients_match_finite_differences(op, spec):
    inp = build_case(op, spec, 3.0)
    ref = np.asarray(oracle.compute(inp, "grad_labels").value, dtype=np.float64)
    y0 = inp.labels.tolist()
    for i, j in itertools.product(range(3), range(4)):
        def f(t, i=i, j=j):
            y = [row[:] for row in y0]
            y[i][j] = y[i][j] + t
            return objective(inp, inp.logits.tolist(), labels=y)
        fd = float(mpmath.diff(f, 0))
        assert abs(ref[i, j] - fd) <= 1e-14 * (1 + abs(fd)), (i, j, ref[i, j], fd)


@pytest.mark.parametrize("op, spec", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_hvp_matches_second_differences(op, spec):
    inp = build_case(op, spec, 2.0)
    ref = np.asarray(oracle.compute(inp, "hvp").value, dtype=np.float64)
    x0, d = inp.logits.tolist(), inp.direction.tolist()
    for i, j in itertools.product(range(3), range(4)):
        def f(s, t, i=i, j=j):
            x = [[x0[a][b] + t * d[a][b] for b in range(4)] for a in range(3)]
            x[i][j] = x[i][j] + s
            return objective(inp, x)
        fd = float(mpmath.diff(f, (0, 0), (1, 1)))
        assert abs(ref[i, j] - fd) <= 1e-13 * (1 + abs(fd)), (i, j, ref[i, j], fd)


def test_limits_and_no_answer():
    inp = make("log_softmax", [[0.0, -np.inf, 1.0], [np.nan, 0.0, 0.0], [-np.inf, -np.inf, -np.inf]])
    v = np.asarray(oracle.compute(inp, "value").value, dtype=np.float64)
    assert v[0, 1] == -np.inf and np.isfinite(v[0, [0, 2]]).all()
    assert np.isnan(v[1]).all() and np.isnan(v[2]).all()
    # a zero label on a -inf logit contributes nothing (optax#896), a positive one makes the loss infinite
    ce = make("softmax_cross_entropy", [[0.0, -np.inf]], labels=[[1.0, 0.0]])
    assert float(oracle.compute(ce, "value").value[0]) == 0.0
    ce = make("softmax_cross_entropy", [[0.0, -np.inf]], labels=[[0.0, 1.0]])
    assert float(oracle.compute(ce, "value").value[0]) == np.inf
    # an out-of-range label has no answer; every label ignored makes the mean 0/0
    assert np.isnan(float(oracle.compute(make("sparse_softmax_cross_entropy", [[0.0, 1.0]], sparse=[2]), "value").value[0]))
    all_ignored = make("sparse_softmax_cross_entropy", [[0.0, 1.0]], sparse=[-1], options=Options(reduction="mean", ignore_index=-1))
    assert np.isnan(float(oracle.compute(all_ignored, "value").value))


def test_published_values():
    """softmax([0.1, 0.3, 0.5, 0.9]) and the mean cross-entropy 0.839343 from the classic TF answer
    (https://stackoverflow.com/questions/34240703), reproduced by the oracle itself."""
    v = oracle.compute(make("softmax", [[0.1, 0.3, 0.5, 0.9]]), "value").value
    np.testing.assert_allclose(np.asarray(v, np.float64)[0], [0.16838508, 0.205666, 0.25120102, 0.37474789], atol=5e-7)
    ce = make("softmax_cross_entropy", [[0.5, 1.5, 0.1], [2.2, 1.3, 1.7]], labels=[[0, 1, 0], [0, 0, 1]], options=Options(reduction="mean"))
    assert abs(float(oracle.compute(ce, "value").value) - 0.839343) < 5e-7


@pytest.mark.parametrize("op", ["masked_softmax", "masked_log_softmax"])
@pytest.mark.parametrize("quantity", ["value", "grad_logits", "hvp"])
def test_masked_ops_are_the_unmasked_op_on_the_kept_classes(op, quantity):
    """The definition, checked row by row: on the kept classes, the masked op equals the unmasked op (itself checked
    against mpmath and finite differences above) on those classes alone, with the cotangent and direction restricted
    to them; a masked class has probability exactly 0 (log-probability -inf) and gradient exactly 0, whatever logit
    it holds (NaN and +inf included). A row with no kept class has no answer."""
    logits = RNG.standard_normal((5, 7)) * 30
    mask = RNG.random((5, 7)) < 0.6
    mask[:, 0] = True  # every row keeps a class ...
    logits[~mask] = RNG.choice([np.nan, np.inf, -np.inf, 1e30], size=(~mask).sum())  # ... and masked entries hold anything
    g = RNG.standard_normal((5, 7)) * mask  # no cotangent on a masked (constant) output, as inputs.build makes it
    d = RNG.standard_normal((5, 7))
    masked = replace(make(op, logits, cotangent=g, direction=d), mask=mask)
    got = np.asarray(oracle.compute(masked, quantity).value)
    base = op.removeprefix("masked_")
    for row in range(5):
        kept = mask[row]
        sub = make(base, [logits[row, kept]], cotangent=[g[row, kept]], direction=[d[row, kept]])
        np.testing.assert_array_equal(got[row, kept], np.asarray(oracle.compute(sub, quantity).value)[0])
        masked_value = (0.0 if base == "softmax" else -np.inf) if quantity == "value" else 0.0
        assert (got[row, ~kept] == masked_value).all()
    nothing_kept = replace(masked, mask=np.zeros((5, 7), bool))
    assert np.isnan(np.asarray(oracle.compute(nothing_kept, "value").value, np.float64)).all()
