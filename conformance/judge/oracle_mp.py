"""An independent 60-digit mpmath evaluation of the four ops, used to check the oracle's own accuracy.

It evaluates each class on its own, log p_c = -log1p(sum_{j != c} exp(x_j - x_c)), which has no
cancellation even for log p_c near 0 (the literal x_c - log(sum exp x) loses the tail of lse at any fixed
precision), and shares no code with oracle.py. It is slow and scalar, so it is used on small inputs in tests/test_oracle.py and
for the finite-difference checks of every derivative.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import mpmath

from ..model.ops import op as op_spec

mp = mpmath.mp
mp.dps = 60


def _rest(row, c):
    xc = mpmath.mpf(row[c])
    return mpmath.fsum(mpmath.exp(mpmath.mpf(v) - xc) for j, v in enumerate(row) if j != c)


def _row_softmax(row):
    return [1 / (1 + _rest(row, c)) for c in range(len(row))]


def _row_log_softmax(row):
    return [-mpmath.log1p(_rest(row, c)) for c in range(len(row))]


def _lse(row) -> mpmath.mpf:
    top = max(mpmath.mpf(v) for v in row)
    return top + mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - top) for v in row))


def per_row(op: str, rows: Sequence[Sequence[Real]], labels: Sequence[Sequence[Real]] | None = None, sparse: Sequence[int] | None = None,
            smoothing: float = 0.0, weight: Sequence[Real] | None = None, ignore_index: int | None = None,
            softcap: float | None = None, z_loss: float = 0.0) -> list:
    """Per-row outputs of `op` on 2-D input with classes on the last axis (lists of mpf). softcap: the logits are
    c * tanh(x / c) first; z_loss: z * logsumexp(row)^2 is added to each counted row's loss."""
    output = op_spec(op).output
    out = []
    for i, row in enumerate(rows):
        if softcap is not None:
            cap = mpmath.mpf(softcap)
            row = [cap * mpmath.tanh(mpmath.mpf(v) / cap) for v in row]
        c = len(row)
        if output == "probabilities":
            out.append(_row_softmax(row))
            continue
        logp = _row_log_softmax(row)
        if output == "log_probabilities":
            out.append(logp)
            continue
        w = [mpmath.mpf(1)] * c if weight is None else [mpmath.mpf(v) for v in weight]
        eps = mpmath.mpf(smoothing)
        if labels is not None:  # dense labels; else class indices
            y = [mpmath.mpf(v) for v in labels[i]]
        elif ignore_index is not None and sparse[i] == ignore_index:
            out.append(mpmath.mpf(0))
            continue
        else:
            y = [mpmath.mpf(1 if k == sparse[i] else 0) for k in range(c)]
        y_eff = [((1 - eps) * y[k] + eps / c) * w[k] for k in range(c)]
        z_term = mpmath.mpf(z_loss) * _lse(row) ** 2 if z_loss else 0
        out.append(-mpmath.fsum(y_eff[k] * logp[k] for k in range(c) if y_eff[k] != 0) + z_term)
    return out


def reduce(losses: list, reduction: str, sparse: Sequence[int] | None = None, weight: Sequence[Real] | None = None,
           ignore_index: int | None = None) -> list | mpmath.mpf:
    if reduction == "none":
        return losses
    total = mpmath.fsum(losses)
    if reduction == "sum":
        return total
    if sparse is None:
        return total / len(losses)
    w = (lambda t: mpmath.mpf(1)) if weight is None else (lambda t: mpmath.mpf(weight[t]))
    return total / mpmath.fsum(w(t) for t in sparse if t != ignore_index)
