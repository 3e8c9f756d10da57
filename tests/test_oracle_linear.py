"""The fused linear cross-entropy's oracle: its values against a 60-digit mpmath evaluation of the composition
(h W^T + b, then the cross-entropy of oracle_mp), its derivatives against mpmath finite differences of that
composition, and its tolerance against planted errors of the size of one rounded matmul."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from conformance.corpus.cases import Options
from conformance.corpus.inputs import Inputs, linear_logits, output_shape
from conformance.judge import oracle, oracle_mp
from conformance.judge.tolerance import tolerance

RNG = np.random.default_rng(11)
N, D, C = 3, 4, 5


def make(options: Options, bias: bool = True, dense: bool = False, scale: float = 1.0) -> Inputs:
    h = RNG.standard_normal((N, D)) * scale
    w = RNG.standard_normal((C, D))
    b = RNG.standard_normal(C) * 0.5 if bias else None
    logits = linear_logits(h, w, b)
    labels = RNG.dirichlet([0.5] * C, size=N) if dense else None
    sparse = None if dense else np.array([0, 4, 2] if options.ignore_index is None else [0, options.ignore_index, 2])
    g = RNG.standard_normal(output_shape("linear_cross_entropy", logits.shape, 1, options.reduction))
    return Inputs(op="linear_cross_entropy", dtype="float64", logits=logits, labels=labels, sparse_labels=sparse, axis=1,
                  options=options, cotangent=g, direction=RNG.standard_normal((N, D)), hidden=h, weight=w, bias=b)


def mp_objective(inp: Inputs, h, w, b) -> mpmath.mpf:
    """sum(cotangent * loss) of the composition, every step in 60 digits."""
    z = [[mpmath.fsum(h[i][k] * w[c][k] for k in range(D)) + (b[c] if b is not None else 0) for c in range(C)] for i in range(N)]
    o = inp.options
    op = "softmax_cross_entropy" if inp.labels is not None else "sparse_softmax_cross_entropy"
    sparse = None if inp.sparse_labels is None else inp.sparse_labels.tolist()
    rows = oracle_mp.per_row(op, z, labels=None if inp.labels is None else inp.labels.tolist(), sparse=sparse,
                             smoothing=o.label_smoothing, weight=o.weight, ignore_index=o.ignore_index, softcap=o.softcap, z_loss=o.z_loss)
    out = oracle_mp.reduce(rows, o.reduction, sparse=sparse, weight=o.weight, ignore_index=o.ignore_index)
    g = inp.cotangent
    if o.reduction != "none":
        return mpmath.mpf(float(g)) * out
    return mpmath.fsum(mpmath.mpf(float(a)) * v for a, v in zip(g.ravel(), out))


def mp_args(inp: Inputs):
    h = [[mpmath.mpf(float(v)) for v in row] for row in inp.hidden]
    w = [[mpmath.mpf(float(v)) for v in row] for row in inp.weight]
    b = None if inp.bias is None else [mpmath.mpf(float(v)) for v in inp.bias]
    return h, w, b


def finite_difference(inp: Inputs, which: str, index: tuple, step: float = 1e-25) -> mpmath.mpf:
    def at(delta):
        h, w, b = mp_args(inp)
        target = {"hidden": h, "weight": w, "bias": b}[which]
        if len(index) == 2:
            target[index[0]][index[1]] += delta
        else:
            target[index[0]] += delta
        return mp_objective(inp, h, w, b)
    return (at(mpmath.mpf(step)) - at(-mpmath.mpf(step))) / (2 * mpmath.mpf(step))


OPTIONS = [Options(reduction="none"), Options(reduction="mean"), Options(reduction="sum", weight=(1.0, 2.0, 0.5, 3.0, 1.0)),
           Options(reduction="mean", ignore_index=-100), Options(reduction="mean", label_smoothing=0.1),
           Options(reduction="mean", softcap=3.0), Options(reduction="mean", z_loss=0.01, ignore_index=-100)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o.reduction}-{'-'.join(o.non_default())}")
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_value_and_every_gradient_match_the_composition_in_60_digits(options, scale):
    inp = make(options, scale=scale)
    value = oracle.compute(inp, "value").value
    h, w, b = mp_args(inp)
    if options.reduction == "none":
        inp_ones = Inputs(**{**inp.__dict__, "cotangent": np.eye(N)[0]})
        assert abs(mpmath.mpf(float(value[0])) - mp_objective(inp_ones, h, w, b)) < 1e-12 * (1 + abs(float(value[0])))
    else:
        unit = Inputs(**{**inp.__dict__, "cotangent": np.ones(())})
        assert abs(mpmath.mpf(float(value)) - mp_objective(unit, h, w, b)) < 1e-12 * (1 + abs(float(value)))
    for quantity, which, index in (("grad_hidden", "hidden", (1, 2)), ("grad_weight", "weight", (4, 1)), ("grad_bias", "bias", (2,)),
                                   ("grad_hidden", "hidden", (0, 0)), ("grad_weight", "weight", (0, 3))):
        got = float(oracle.compute(inp, quantity).value[index])
        fd = finite_difference(inp, which, index)
        assert abs(got - float(fd)) <= 1e-12 * (1 + abs(float(fd))), (quantity, index, got, float(fd))


def test_dense_targets_and_their_gradient():
    inp = make(Options(reduction="mean"), dense=True)
    got = oracle.compute(inp, "grad_labels").value
    eps = mpmath.mpf("1e-25")

    def objective_with_label(delta):
        labels = inp.labels.copy().astype(object)
        labels[1, 3] = mpmath.mpf(float(inp.labels[1, 3])) + delta
        moved = Inputs(**{**inp.__dict__, "labels": labels})
        return mp_objective(moved, *mp_args(inp))
    fd = (objective_with_label(eps) - objective_with_label(-eps)) / (2 * eps)
    assert abs(float(got[1, 3]) - float(fd)) <= 1e-12 * (1 + abs(float(fd)))


def test_hvp_w_r_t_the_hidden_states_is_the_derivative_of_their_gradient():
    inp = make(Options(reduction="mean"))
    hv = oracle.compute(inp, "hvp").value
    step = 1e-7  # the gradient is smooth; a central difference in extended precision is good to ~1e-13 here
    moved = [Inputs(**{**inp.__dict__, "hidden": inp.hidden + s * step * inp.direction,
                       "logits": linear_logits(inp.hidden + s * step * inp.direction, inp.weight, inp.bias)}) for s in (1, -1)]
    plus, minus = (np.asarray(oracle.compute(m, "grad_hidden").value, dtype=np.float64) for m in moved)
    assert np.allclose(np.asarray(hv, dtype=np.float64), (plus - minus) / (2 * step), rtol=1e-6, atol=1e-9)


def test_every_target_ignored_gives_no_value_and_zero_gradients():
    inp = make(Options(reduction="mean", ignore_index=-100))
    inp = Inputs(**{**inp.__dict__, "sparse_labels": np.array([-100, -100, -100])})
    assert np.isnan(float(oracle.compute(inp, "value").value))
    for q in ("grad_hidden", "grad_weight", "grad_bias"):
        assert not np.any(oracle.compute(inp, q).value)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_tolerance_admits_a_rounded_matmul_and_refuses_a_gradient_off_by_its_row_count(dtype):
    """The bound is the composition's: logits formed by a float32 (bfloat16) matmul stay inside it; a weight gradient
    divided by the token count N instead of the counted targets (one target ignored) does not."""
    inp = make(Options(reduction="mean", ignore_index=-100))
    ref = oracle.compute(inp, "grad_weight")
    rounded = np.asarray(inp.hidden, np.float32) @ np.asarray(inp.weight, np.float32).T + np.asarray(inp.bias, np.float32)
    if dtype == "bfloat16":  # a bfloat16 matmul: the products of bfloat16 inputs summed, the result rounded to 8 bits
        from conformance.model import dtypes as dt
        rounded = dt.round_to(rounded, "bfloat16").astype(np.float64)
    with_rounded_logits = Inputs(**{**inp.__dict__, "logits": np.asarray(rounded, np.longdouble), "op": "sparse_softmax_cross_entropy",
                                    "hidden": None, "weight": None, "bias": None, "direction": np.zeros((N, C))})
    g = np.asarray(oracle.compute(with_rounded_logits, "grad_logits").value, np.float64)
    approx = g.T @ np.asarray(inp.hidden, np.float64)
    tol = tolerance(ref.scale, "grad_weight", dtype, C, ref.flush)
    exact = np.asarray(ref.value, np.float64)
    assert np.all(np.abs(approx - exact) <= tol)
    counted = 2  # one of the three targets is ignored
    wrong = exact * counted / N
    assert np.any(np.abs(wrong - exact) > tolerance(ref.scale, "grad_weight", "float32", C, ref.flush))
