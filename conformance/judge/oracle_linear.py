"""The reference for linear_cross_entropy: the cross-entropy oracle over the exact logits z = h W^T + b, and the
chain rule back to the hidden states, the weight and the bias, all in extended precision (nothing rounded between).

The tolerance of the composition (docs/tolerance.md, "The fused linear cross-entropy"), in units of the dtype's unit
roundoff u, with L_n = ceil(log2 n) for the length n of a sum, a_c = sum_k |h_k| |W_ck| + |b_c| per row (the size of the
matmul's terms) and G = dL/dz the cross-entropy's logit gradient:

  the logits      a backward-stable matmul errs by (2 + 2 L_D) a_c in z_c: pairwise sums of D products and the bias
  value           (4 + 2 L_C) scale_CE + (2 + 2 L_D) sum_c |G1_c| a_c          (G1: the gradient with a unit cotangent)
  G               E_G = (8 + 2 L_C) scale_CE(G) + (2 + 2 L_D) |H| a             (|H| a: the logit Hessian's bound along a)
  grad_hidden     E_G |W| + (2 + 2 L_C) |G| |W|                               (G W, a sum over C classes)
  grad_weight     E_G^T |h| + (2 + 2 L_N) |G|^T |h|                           (G^T h, a sum over N rows)
  grad_bias       sum_n E_G + (2 + 2 L_N) sum_n |G|
  grad_labels     (8 + 2 L_C) scale_CE + (2 + 2 L_D) |g| |dy| (a_c + <p, a>)   (dense targets)
  hvp (hidden)    (E_H |W| + (2 + 2 L_C) |Hv| |W|), with Hv = H (d W^T) and E_H its error: the cross-entropy's HVP
                  bound, the matmul's error in the direction d W^T, and the third derivative along a (first order in u)

Each bound is returned as the Reference's scale divided by the quantity's (K + 2 L_C), the factor tolerance() puts
back, so the judge and every report read the linear op's tolerance like any other op's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..corpus.inputs import Inputs
from ..model import dtypes as dt
from .tolerance import ALGORITHM_CONSTANT

LD = np.longdouble


@dataclass
class _Composition:
    """What every quantity of one set of inputs shares: the cross-entropy inputs over the exact logits, the sizes of
    the matmul's terms, and (for the three primal gradients) the logit gradient with its error bound."""

    inp: Inputs
    logits_oracle: Callable
    ce: Inputs
    h: np.ndarray
    w: np.ndarray
    a: np.ndarray  # sum_k |h_k| |W_ck| + |b_c| per row: the size of each logit's terms
    classes: int
    matmul: float  # (2 + 2 L_D): a logit's error per unit roundoff, per unit of a
    over_classes: float  # (2 + 2 L_C): a sum over the classes

    @staticmethod
    def of(inp: Inputs, logits_oracle: Callable) -> _Composition:
        h, w = inp.hidden.astype(LD), inp.weight.astype(LD)
        ce = replace(inp, op="softmax_cross_entropy" if inp.labels is not None else "sparse_softmax_cross_entropy",
                     hidden=None, weight=None, bias=None, direction=np.zeros(inp.logits.shape, inp.cotangent.dtype))
        with np.errstate(all="ignore"):
            a = np.einsum("...d,cd->...c", np.abs(h), np.abs(w)) + (0 if inp.bias is None else np.abs(inp.bias.astype(LD)))
            a = np.where(np.isfinite(a), a, LD(0))  # a non-finite logit is the signal, not a size
        classes = inp.logits.shape[-1]
        return _Composition(inp, logits_oracle, ce, h, w, a, classes, 2 + 2 * dt.log2_ceil(h.shape[-1]), 2 + 2 * dt.log2_ceil(classes))

    @cached_property
    def logit_gradient(self) -> tuple[object, np.ndarray]:
        """(the cross-entropy's logit-gradient reference G, E_G its error bound in units of u)."""
        with np.errstate(all="ignore"):
            ref = self.logits_oracle(self.ce, "grad_logits")
            err = ((ALGORITHM_CONSTANT["grad_logits"] + 2 * dt.log2_ceil(self.classes)) * ref.scale
                   + self.matmul * _hessian_bound(self.ce, self.a, self.logits_oracle))
        return ref, err

    @cached_property
    def probabilities(self) -> np.ndarray:
        """softmax of the exact logits (0 where a row has no answer)."""
        plain = replace(self.ce, op="softmax", labels=None, sparse_labels=None, options=replace(self.ce.options, reduction="none"))
        with np.errstate(all="ignore"):
            p = self.logits_oracle(plain, "value").value
        return np.where(np.isfinite(p), p, LD(0))


# The last inputs' composition: the runner asks for a case's quantities one after another on the same Inputs object,
# and the three primal gradients share its logit gradient (the costliest part at a 128k vocabulary).
_last: _Composition | None = None


def _composition(inp: Inputs, logits_oracle: Callable) -> _Composition:
    global _last
    if _last is None or _last.inp is not inp or _last.logits_oracle is not logits_oracle:
        _last = _Composition.of(inp, logits_oracle)
    return _last


def compute(inp: Inputs, quantity: str, logits_oracle: Callable) -> object:
    """The reference for one quantity: `logits_oracle(inputs, quantity)` is oracle.compute on ops that take logits."""
    comp = _composition(inp, logits_oracle)
    with np.errstate(all="ignore"):
        if quantity == "value":
            return _value(comp)
        if quantity == "grad_labels":
            return _grad_labels(comp)
        if quantity == "hvp":
            return _hvp(comp, inp.direction.astype(LD))
        g_ref, err_g = comp.logit_gradient
        g, w, h = g_ref.value, comp.w, comp.h
        flush = np.broadcast_to(np.asarray(g_ref.flush, dtype=np.float64), g.shape)
        rows = int(np.prod(g.shape[:-1]))
        over_rows = 2 + 2 * dt.log2_ceil(rows)
        g2, e2, f2, h2 = (x.reshape(rows, x.shape[-1]) for x in (g, err_g, flush, h))
        if quantity == "grad_hidden":
            value, err, fl = g @ w, err_g @ np.abs(w) + comp.over_classes * (np.abs(g) @ np.abs(w)), flush @ np.abs(w).astype(np.float64)
        elif quantity == "grad_weight":
            value, err, fl = g2.T @ h2, e2.T @ np.abs(h2) + over_rows * (np.abs(g2).T @ np.abs(h2)), f2.T @ np.abs(h2).astype(np.float64)
        elif quantity == "grad_bias":
            value, err, fl = g2.sum(axis=0), e2.sum(axis=0) + over_rows * np.abs(g2).sum(axis=0), f2.sum(axis=0)
        else:
            raise ValueError(f"unknown quantity {quantity!r} of linear_cross_entropy")
        return _reference(type(g_ref), value, err, quantity, comp.classes, 1.0 + fl)


def _reference(kind: type, value: np.ndarray, err: np.ndarray, quantity: str, classes: int, flush) -> object:
    per_unit = ALGORITHM_CONSTANT[quantity] + 2 * dt.log2_ceil(classes)
    return kind(np.asarray(value), np.asarray(err / per_unit, dtype=np.float64), flush)


def _value(comp: _Composition) -> object:
    ce = comp.ce
    ref = comp.logits_oracle(ce, "value")
    unit = replace(ce, cotangent=np.ones(ce.cotangent.shape, ce.cotangent.dtype))
    g1 = np.abs(comp.logits_oracle(unit, "grad_logits").value)
    moved = np.sum(np.where(np.isfinite(g1), g1 * comp.a, LD(0)), axis=-1)  # each row's loss moved by its logits' error
    if ce.options.reduction != "none":
        moved = np.sum(moved)
    err = (ALGORITHM_CONSTANT["value"] + 2 * dt.log2_ceil(comp.classes)) * ref.scale + comp.matmul * moved
    return _reference(type(ref), ref.value, err, "value", comp.classes, ref.flush)


def _hessian_bound(ce: Inputs, magnitude: np.ndarray, logits_oracle: Callable) -> np.ndarray:
    """A bound on |H e| for every e with |e| <= magnitude: the cross-entropy's HVP scale along `magnitude`, which is
    at least |g| |sum y| p_c (m_c + <p, m>) (its r >= 1), the Hessian's largest possible reply."""
    return logits_oracle(replace(ce, direction=magnitude), "hvp").scale


def _grad_labels(comp: _Composition) -> object:
    ce, a = comp.ce, comp.a
    ref = comp.logits_oracle(ce, "grad_labels")
    per_row = np.abs(ce.cotangent.astype(LD))
    if ce.options.reduction != "none":
        per_row = np.broadcast_to(per_row, ce.logits.shape[:-1]) / (ce.logits[..., 0].size if ce.options.reduction == "mean" else 1)
    opts = ce.options
    dy = (1 - LD(opts.label_smoothing)) * (LD(1) if opts.weight is None else np.abs(np.asarray(opts.weight, dtype=LD)))
    moved = per_row[..., None] * dy * (a + np.sum(comp.probabilities * a, axis=-1, keepdims=True))
    err = (ALGORITHM_CONSTANT["grad_labels"] + 2 * dt.log2_ceil(comp.classes)) * ref.scale + comp.matmul * moved
    return _reference(type(ref), ref.value, err, "grad_labels", comp.classes, ref.flush)


def _hvp(comp: _Composition, d: np.ndarray) -> object:
    """H_h d = W^T-side of the logit HVP along d W^T (z is linear in h)."""
    ce, w, a, p = comp.ce, comp.w, comp.a, comp.probabilities
    ref = comp.logits_oracle(replace(ce, direction=np.einsum("...d,cd->...c", d, w)), "hvp")
    size_dz = np.einsum("...d,cd->...c", np.abs(d), np.abs(w))
    along = a + np.sum(p * a, axis=-1, keepdims=True)
    across = size_dz + np.sum(p * size_dz, axis=-1, keepdims=True)
    err_z = ((ALGORITHM_CONSTANT["hvp"] + 2 * dt.log2_ceil(comp.classes)) * ref.scale
             + comp.matmul * _hessian_bound(ce, size_dz, comp.logits_oracle)  # the direction d W^T rounded
             + comp.matmul * _hessian_bound(ce, along * across, comp.logits_oracle))  # the logits' error through the third derivative
    value = ref.value @ w
    err = err_z @ np.abs(w) + comp.over_classes * (np.abs(ref.value) @ np.abs(w))
    flush = np.broadcast_to(np.asarray(ref.flush, dtype=np.float64), ref.value.shape) @ np.abs(w).astype(np.float64)
    return _reference(type(ref), value, err, "hvp", comp.classes, 1.0 + flush)
