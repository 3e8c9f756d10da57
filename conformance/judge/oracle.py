"""High-precision reference values, gradients and Hessian-vector products for every op of the op table (the fused
linear cross-entropy composes this module's cross-entropy with its matmul: oracle_linear.py).

Precision: NumPy's `longdouble`, which on x86-64 Linux is the x87 80-bit format (64-bit significand,
unit roundoff 2**-64, i.e. 2**11 times finer than float64). Every formula below is the stable one
(max shift, log-sum-exp), so the reference carries a relative error of a few units of 2**-64 - at
most about 1/1000 of a float64 ulp. `tests/test_oracle.py` shows this is enough by comparing against
an independent 60-digit mpmath evaluation (`oracle_mp.py`) on random and extreme inputs, and against
finite differences for every derivative. On a platform where longdouble is plain double, `EXTENDED`
is False, and tests/test_oracle.py fails there: float64 results would be judged by a float64 oracle.

Each quantity comes with a *scale*: a bound on the rounding error any backward-stable implementation
may make, in units of the dtype's unit roundoff. It is built from the componentwise condition number
of the op at the input (see `tolerance.py` for the model, and docs/tolerance.md, "The oracle and the tolerance model").

Semantics of the options (documented in README; the most general of the frameworks' conventions):
  y_eff = ((1 - eps) * y + eps / C) * w        dense labels y, smoothing eps, class weights w
  sparse: y = one_hot(t); rows whose label equals ignore_index get y_eff = 0
  loss_i = -sum_c y_eff_ic * log_softmax(x)_ic   (terms with y_eff = 0 contribute 0, even at -inf logits)
  reduction sum: sum_i loss_i; mean: sum_i loss_i / D, D = number of rows (dense) or
  sum of w[t_i] over rows not ignored (sparse). A label outside [0, C) that is not ignore_index has no answer: NaN.
  A mean over no rows (every label ignored) is 0/0, no answer; its logit gradient and HVP are 0 (no logit enters it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..corpus.inputs import Inputs
from ..model.names import SOFTMAX_LIKE, UNMASKED
from ..model.ops import op as op_spec
from . import oracle_linear

LD = np.longdouble
EXTENDED = np.finfo(LD).nmant >= 63


@dataclass(frozen=True)
class Reference:
    value: np.ndarray  # extended precision, in the output layout
    scale: np.ndarray  # float64, same shape: error magnitude per unit roundoff (before the algorithm constant)
    flush: np.ndarray | float = 1.0  # coefficient of a probability in the result: the error if it were flushed to zero


@dataclass(frozen=True)
class _Rows:
    """Per-row softmax statistics with the class axis last."""

    x: np.ndarray
    logp: np.ndarray
    p: np.ndarray
    kappa: np.ndarray  # |d log p_c| per unit relative perturbation of the inputs
    r: np.ndarray  # relative-error scale of p_c
    a: np.ndarray  # absolute-error scale of log p_c


def _rows(x: np.ndarray) -> _Rows:
    with np.errstate(all="ignore"):
        classes = x.shape[-1]
        # No answer for a row with NaN or +inf (inf - inf) or an all -inf row (0/0). A row with no classes
        # has the empty softmax, and the cross-entropy's empty sum is 0.
        bad = np.any(np.isnan(x) | (x == np.inf), axis=-1) | (np.all(x == -np.inf, axis=-1) & (classes > 0))
        xs = np.where(bad[..., None], LD(0), x)
        if classes == 0:
            empty = np.zeros(x.shape, dtype=LD)
            return _Rows(x, empty, empty, empty, empty, empty)
        m = np.max(xs, axis=-1, keepdims=True)
        # log p_c = (x_c - m) - log1p(t), t = sum of exp(x_j - m) over every j but one argmax. Both terms are
        # <= 0, so nothing cancels: log_softmax keeps full relative accuracy near 0 (x - lse would not).
        shifted = np.exp(xs - m)
        top = np.argmax(xs, axis=-1)[..., None]
        np.put_along_axis(shifted, top, LD(0), axis=-1)
        t = np.sum(shifted, axis=-1, keepdims=True)
        logp = (xs - m) - np.log1p(t)
        p = np.exp(logp)
        ax = np.where(np.isfinite(xs), np.abs(xs), LD(0))  # -inf entries are exact: no perturbation
        mean_abs = np.sum(p * ax, axis=-1, keepdims=True)
        kappa = ax * (1 - p) + mean_abs - p * ax
        gap = np.where(np.isfinite(xs), np.abs(xs - m), LD(0))
        r = 1 + kappa + gap
        a = 1 + np.where(np.isfinite(logp), np.abs(logp), LD(0)) + kappa
        nan = LD(np.nan)
        logp, p, kappa, r, a = (np.where(bad[..., None], nan, v) for v in (logp, p, kappa, r, a))
    return _Rows(xs, logp, p, kappa, r, a)


def _effective_labels(inp: Inputs, rows: _Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_eff, dy_eff/dy factor per class, valid-row mask) with the class axis last."""
    classes = rows.x.shape[-1]
    opts = inp.options
    w = np.ones(classes, dtype=LD) if opts.weight is None else np.asarray(opts.weight, dtype=LD)
    eps = LD(opts.label_smoothing)
    if inp.labels is not None:  # dense labels; else integer class indices
        y = np.moveaxis(inp.labels.astype(LD), inp.axis, -1)
        valid = np.ones(y.shape[:-1], dtype=bool)
    else:
        t = inp.sparse_labels.astype(np.int64)
        ignored = (t == opts.ignore_index) if opts.ignore_index is not None else np.zeros(t.shape, dtype=bool)
        in_range = (t >= 0) & (t < classes)
        valid = in_range & ~ignored
        y = (np.arange(classes) == t[..., None]).astype(LD) * valid[..., None]
        y = np.where((~in_range & ~ignored)[..., None], LD(np.nan), y)
    smooth = LD(eps / classes) if classes else LD(0)
    y_eff = ((1 - eps) * y + smooth) * w
    if inp.labels is None:
        y_eff = np.where(ignored[..., None], LD(0), y_eff)
    return y_eff, (1 - eps) * w, valid


def _per_example_cotangent(inp: Inputs, n_rows_shape: tuple[int, ...], denominator) -> np.ndarray:
    g = inp.cotangent.astype(LD)
    if inp.options.reduction == "none":
        return g
    g = np.broadcast_to(g, n_rows_shape)
    return g / denominator if inp.options.reduction == "mean" else g


def _denominator(inp: Inputs, valid: np.ndarray) -> LD:
    if inp.labels is not None:  # dense labels: every row counts
        return LD(valid.size)
    t = inp.sparse_labels.astype(np.int64)
    w = np.ones(inp.classes, dtype=LD) if inp.options.weight is None else np.asarray(inp.options.weight, dtype=LD)
    return np.sum(np.where(valid, w[np.clip(t, 0, max(inp.classes - 1, 0))], LD(0))) if t.size else LD(0)


def _reduce(inp: Inputs, loss: np.ndarray, scale: np.ndarray, denominator) -> tuple[np.ndarray, np.ndarray]:
    reduction = inp.options.reduction
    if reduction == "none":
        return loss, scale
    n = max(loss.size, 1)
    total = np.sum(loss)
    total_scale = np.sum(scale) + np.log2(n) * np.sum(np.abs(loss))
    if reduction == "sum":
        return np.asarray(total), np.asarray(total_scale)
    with np.errstate(all="ignore"):
        return np.asarray(total / denominator), np.asarray(total_scale / np.abs(denominator))


@dataclass(frozen=True)
class _ZLoss:
    """z * lse^2 per counted row (keepdims, class axis last) and its derivative 2 z lse p with respect to x'.
    lse's error per unit roundoff is 1 + |lse| + sum_c p_c |x'_c| (its inputs perturbed, then the log rounded)."""

    z: np.ndarray  # z on counted rows, 0 on ignored ones
    lse: np.ndarray
    lse_scale: np.ndarray
    value: np.ndarray
    scale: np.ndarray
    grad: np.ndarray
    grad_scale: np.ndarray

    @staticmethod
    def of(inp: Inputs, rows: _Rows, valid: np.ndarray) -> _ZLoss | None:
        if not inp.options.z_loss:
            return None
        z = np.where(valid, LD(inp.options.z_loss), LD(0))[..., None]
        lse = np.max(rows.x, axis=-1, keepdims=True) - np.max(rows.logp, axis=-1, keepdims=True)
        ax = np.where(np.isfinite(rows.x), np.abs(rows.x), LD(0))
        lse_scale = 1 + np.abs(lse) + np.sum(rows.p * ax, axis=-1, keepdims=True)
        pr = rows.p * rows.r
        return _ZLoss(z, lse, lse_scale, z * lse ** 2, z * (2 * np.abs(lse) * lse_scale + lse ** 2),
                      2 * z * lse * rows.p, 2 * z * (np.abs(lse) * pr + rows.p * lse_scale))


def _hvp(rows: _Rows, g, sum_y, q, q_scale, d, cap: _Cap | None, zl: _ZLoss | None) -> tuple[np.ndarray, np.ndarray]:
    """H d of the cross-entropy: g (s * H' (s * d) + q * t2 * d), with H' the Hessian in the (capped) logits x',
    sum(y) (diag(p) - p p^T) + 2 z (p p^T + lse (diag(p) - p p^T)), and q = dL/dx' per unit cotangent. Without
    soft-capping (s = 1, no curvature term) and z-loss it is g sum(y) p (d - <p, d>), with scale
    |g| |sum(y)| p r (|d| + sum p r |d|)."""
    p, pr = rows.p, rows.p * rows.r
    s = LD(1) if cap is None else cap.s
    w = s * d
    pw = np.sum(p * w, axis=-1, keepdims=True)
    big_w = np.sum(pr * np.abs(w), axis=-1, keepdims=True)
    two_z = LD(0) if zl is None else 2 * zl.z
    lse = LD(0) if zl is None else zl.lse
    coef = sum_y + two_z * lse
    coef_scale = np.abs(sum_y) + (LD(0) if zl is None else two_z * zl.lse_scale)
    hw = coef * p * (w - pw) + two_z * p * pw
    hw_scale = coef_scale * pr * (np.abs(w) + big_w) + two_z * (pr * np.abs(pw) + p * big_w)
    abs_g = np.abs(g)
    value, scale = g * s * hw, abs_g * s * hw_scale
    if cap is not None:
        curve = g * q * cap.t2 * d
        value = value + curve
        scale = scale + cap.k * np.abs(g * s * hw) + abs_g * np.abs(cap.t2 * d) * q_scale + (cap.k + 1) * np.abs(curve)
    return value, scale


def _to_layout(values: np.ndarray, inp: Inputs) -> np.ndarray:
    return np.moveaxis(values, -1, inp.axis)


def compute(inp: Inputs, quantity: str) -> Reference:
    """The reference for one quantity of one op on one set of inputs. A masked op is its unmasked op over the kept
    classes: a masked logit counts as -inf whatever it holds (NaN and inf included), so its probability is exactly 0
    (log-probability -inf) and its gradient 0; a row with no kept class has no answer (NaN)."""
    if not op_spec(inp.op).logits_given:
        return oracle_linear.compute(inp, quantity, compute)
    logits = inp.logits.astype(LD)
    kept = None
    if inp.mask is not None:
        kept = np.broadcast_to(inp.mask, logits.shape)
        logits = np.where(kept, logits, LD(-np.inf))
        # a masked cross-entropy leaves the label mass on masked classes out of its sum (as `where=` leaves it out)
        labels = None if inp.labels is None else np.where(kept, inp.labels, np.zeros((), inp.labels.dtype))
        inp = replace(inp, op=UNMASKED[inp.op], labels=labels)
    cap = None
    if inp.options.softcap is not None:
        cap = _Cap.of(np.moveaxis(logits, inp.axis, -1), LD(inp.options.softcap))
        logits = np.moveaxis(cap.capped, -1, inp.axis)
    rows = _rows(np.moveaxis(logits, inp.axis, -1))
    if inp.op in SOFTMAX_LIKE:
        value, scale = _softmax_like(inp, rows, quantity)
        value, scale = _to_layout(value, inp), _to_layout(scale, inp)
    elif op_spec(inp.op).output == "log_normaliser":
        value, scale, per_class = _logsumexp(inp, rows, quantity)
        if per_class:
            value, scale = _to_layout(value, inp), _to_layout(scale, inp)
    else:
        value, scale, per_class = _cross_entropy(inp, rows, quantity, cap)
        if per_class:
            value, scale = _to_layout(value, inp), _to_layout(scale, inp)
        if quantity == "grad_labels" and kept is not None:  # a label left out of the sum has no say in it
            value, scale = np.where(kept, value, LD(0)), np.where(kept, scale, 0.0)
    return Reference(value, np.asarray(scale, dtype=np.float64), _flush(inp, quantity, value.shape))


def _flush(inp: Inputs, quantity: str, shape: tuple[int, ...]) -> np.ndarray | float:
    """How much a result moves if a probability below the normal range is flushed to zero (FTZ/DAZ, as some
    frameworks' CPU kernels do): the magnitude of the factor that multiplies that probability."""
    if quantity in ("value", "grad_labels"):
        return 1.0
    g = np.abs(inp.cotangent.astype(np.float64))
    d = np.abs(inp.direction.astype(np.float64))
    if inp.op in SOFTMAX_LIKE:
        sum_g = np.sum(g, axis=inp.axis, keepdims=True)
        sum_d = np.sum(d, axis=inp.axis, keepdims=True)
        factor = (g + sum_g) if quantity == "grad_logits" else (g + sum_g) * (d + sum_d) * 2
        return np.broadcast_to(1.0 + factor, shape)
    # cross-entropy: the per-example cotangent times the label mass times (for hvp) the direction
    per_example = g if inp.options.reduction == "none" else np.broadcast_to(g, tuple(n for i, n in enumerate(inp.logits.shape) if i != inp.axis))
    mass = np.sum(np.abs(inp.labels.astype(np.float64)), axis=inp.axis) + 1.0 if inp.labels is not None else 2.0
    factor = np.expand_dims(per_example * mass, inp.axis)
    if quantity == "hvp":
        factor = factor * (d + np.sum(d, axis=inp.axis, keepdims=True))
    return np.broadcast_to(1.0 + factor, shape)


def _softmax_like(inp: Inputs, rows: _Rows, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    p, pr = rows.p, rows.p * rows.r
    probabilities = op_spec(inp.op).output == "probabilities"  # softmax; else log-softmax
    with np.errstate(all="ignore"):
        if quantity == "value":
            return (p, pr) if probabilities else (rows.logp, rows.a)
        g = np.moveaxis(inp.cotangent.astype(LD), inp.axis, -1)
        d = np.moveaxis(inp.direction.astype(LD), inp.axis, -1)
        big_g = np.sum(np.abs(g) * pr, axis=-1, keepdims=True)
        big_d = np.sum(pr * np.abs(d), axis=-1, keepdims=True)
        sum_abs_g = np.sum(np.abs(g), axis=-1, keepdims=True)
        centred_d = p * (d - np.sum(p * d, axis=-1, keepdims=True))
        if probabilities:
            gbar = np.sum(g * p, axis=-1, keepdims=True)
            if quantity == "grad_logits":
                return p * (g - gbar), pr * (np.abs(g) + big_g)
            # hvp: d/dx of p_j (g_j - gbar) along d
            dbar = np.sum(p * d, axis=-1, keepdims=True)
            value = centred_d * (g - gbar) - p * np.sum(g * p * (d - dbar), axis=-1, keepdims=True)
            scale = pr * ((np.abs(d) + big_d) * (np.abs(g) + big_g) + np.sum(np.abs(g) * pr * (np.abs(d) + big_d), axis=-1, keepdims=True))
            return value, scale
        sum_g = np.sum(g, axis=-1, keepdims=True)
        if quantity == "grad_logits":
            return g - p * sum_g, np.abs(g) + pr * sum_abs_g
        return -sum_g * centred_d, sum_abs_g * pr * (np.abs(d) + big_d)


def _logsumexp(inp: Inputs, rows: _Rows, quantity: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(value, scale, per_class) of log sum_j exp(x_j), the class axis last. The value is x_c - log p_c at any class
    (the argmax: both terms exact there but for the log1p of a sum >= 1), with the first-order bound of a backward-
    stable evaluation: its own rounding (1 + |lse|) and the inputs' (sum_j p_j |x_j|, d lse/dx_j = p_j). The gradient
    is the softmax times the row's cotangent, the HVP its derivative along the direction. A row without an answer
    (a NaN, +inf, every logit -inf: what _rows leaves NaN) stays NaN."""
    with np.errstate(all="ignore"):
        top = np.nanargmax(np.where(np.isnan(rows.logp), LD(-np.inf), rows.logp), axis=-1)[..., None]
        x_top, logp_top = np.take_along_axis(rows.x, top, -1)[..., 0], np.take_along_axis(rows.logp, top, -1)[..., 0]
        lse = x_top - logp_top
        ax = np.where(np.isfinite(rows.x), np.abs(rows.x), LD(0))
        if quantity == "value":
            return lse, 1 + np.abs(lse) + np.sum(rows.p * ax, axis=-1), False
        g = inp.cotangent.astype(LD)[..., None]  # one cotangent per row
        pr = rows.p * rows.r
        if quantity == "grad_logits":
            return g * rows.p, np.abs(g) * pr, True
        if quantity == "hvp":
            d = np.moveaxis(inp.direction.astype(LD), inp.axis, -1)
            centred_d = rows.p * (d - np.sum(rows.p * d, axis=-1, keepdims=True))
            big_d = np.sum(pr * np.abs(d), axis=-1, keepdims=True)
            return g * centred_d, np.abs(g) * pr * (np.abs(d) + big_d), True
    raise ValueError(f"unknown quantity {quantity!r} for logsumexp")


@dataclass(frozen=True)
class _Cap:
    """Soft-capping x' = c tanh(x / c) (class axis last), with what the chain rule needs: s = dx'/dx = sech^2(x / c),
    t2 = d^2x'/dx^2 = -(2 / c) tanh(x / c) s, and k = 1 + 2 |z tanh z| (z = x / c), the componentwise condition of s
    at x: a backward-stable derivative is s at a perturbed x, so its relative error is k units, however it is written
    (1 - tanh^2 cancels where s is tiny, which this bound does not forgive)."""

    capped: np.ndarray
    s: np.ndarray
    t2: np.ndarray
    k: np.ndarray

    @staticmethod
    def of(x: np.ndarray, c: LD) -> _Cap:
        with np.errstate(all="ignore"):
            z = x / c
            th = np.tanh(z)
            s = 1 / np.cosh(z) ** 2  # 0 at -inf (a masked logit is capped to -c with zero gradient)
            k = 1 + 2 * np.where(np.isfinite(z), np.abs(z * th), LD(0))
            return _Cap(c * th, s, -(2 / c) * th * s, k)


def _cross_entropy(inp: Inputs, rows: _Rows, quantity: str, cap: _Cap | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(value, scale, per_class): per_class is True when the result is shaped like the logits. With soft-capping the
    rows are those of the capped logits x', and derivatives go back to x by the chain rule; z-loss adds
    z * lse(x')^2 to every counted row (ignored rows add nothing), divided by the mean's denominator like the rest."""
    y_eff, dy_factor, valid = _effective_labels(inp, rows)
    denominator = _denominator(inp, valid)
    with np.errstate(all="ignore"):
        nonzero = y_eff != 0
        loss = -np.sum(np.where(nonzero, y_eff * rows.logp, LD(0)), axis=-1)
        loss_scale = np.sum(np.where(nonzero, np.abs(y_eff) * rows.a, LD(0)), axis=-1)
        zl = _ZLoss.of(inp, rows, valid)
        if quantity == "value":
            if zl is not None:
                loss, loss_scale = loss + zl.value[..., 0], loss_scale + zl.scale[..., 0]
            value, scale = _reduce(inp, loss, loss_scale, denominator)
            return value, scale, False
        g = _per_example_cotangent(inp, loss.shape, denominator)[..., None]
        abs_g = np.abs(g)
        sum_y = np.sum(y_eff, axis=-1, keepdims=True)
        sum_abs_y = np.sum(np.abs(y_eff), axis=-1, keepdims=True)
        pr = rows.p * rows.r
        # the derivative with respect to x' per unit cotangent, and its scale: what soft-capping multiplies by s
        q = sum_y * rows.p - y_eff
        q_scale = np.abs(sum_y) * pr + np.abs(y_eff) + sum_abs_y * rows.p
        if zl is not None:
            q, q_scale = q + zl.grad, q_scale + zl.grad_scale
        if quantity == "grad_logits":
            value, scale = g * q, abs_g * q_scale
            if cap is not None:
                value, scale = cap.s * value, cap.s * scale + cap.k * np.abs(cap.s * value)
        elif quantity == "grad_labels":
            value = -g * dy_factor * rows.logp
            scale = abs_g * np.abs(dy_factor) * rows.a
        elif quantity == "hvp":
            value, scale = _hvp(rows, g, sum_y, q, q_scale, np.moveaxis(inp.direction.astype(LD), inp.axis, -1), cap, zl)
        else:
            raise ValueError(f"unknown quantity {quantity!r}")
        if inp.options.reduction == "mean" and denominator == 0 and quantity != "grad_labels":
            # Every row ignored (or weighted 0): the mean is 0/0 and has no value, but no logit enters it, so it is
            # constant in the logits: their gradient and HVP are exactly 0 (a kernel dividing by the count gives NaN).
            weightless = ~np.any(nonzero, axis=-1, keepdims=True)
            value, scale = np.where(weightless, LD(0), value), np.where(weightless, LD(0), scale)
        # Rows with no answer (invalid label) stay NaN in their gradients too.
        return value, scale, True
