"""The tolerance model: how far an implementation may be from the oracle, per op, quantity and dtype.

    |out - ref| <= u(dtype) * (K(quantity) + 2 * ceil(log2 C)) * scale + tiny(dtype) * F

u        unit roundoff of the dtype under test (2**-11 float16, 2**-8 bfloat16, 2**-24 float32, 2**-53 float64).
scale    from the oracle: the first-order bound on the error of a backward-stable implementation at this
         input. It grows with the componentwise condition number of the op, kappa_c = |x_c|(1 - p_c) +
         sum_{j != c} p_j |x_j| (how much log p_c moves when every input moves by one relative unit), so
         huge logits and wide spreads get proportionally more room and well-conditioned inputs get none.
K        operations chained per element beyond the class reduction: 4 for values, 8 for first
         derivatives (a forward and a backward pass), 16 for Hessian-vector products.
2 log2 C the error of a pairwise / vectorised sum over C classes (a naive serial sum can exceed this
         only for C in the thousands with adversarial ordering; none of the frameworks sums serially).
tiny*F   the smallest normal number of the dtype times F, the factor that multiplies a probability in the
         result (1 for values; |cotangent| sums for gradients, see oracle._flush): a probability below the
         normal range may be flushed to zero anywhere in the computation (some frameworks set FTZ/DAZ
         on CPU), which is not counted as a fail.

These constants were fixed from the error analysis before any framework was run, and are never raised
to make a framework pass: a framework outside them is a finding (see known/divergences.yaml).
A NaN or inf where the oracle is finite is always a fail, whatever the tolerance.
"""

from __future__ import annotations

import numpy as np

from ..model import dtypes as dt

ALGORITHM_CONSTANT = {"value": 4.0, "grad_logits": 8.0, "grad_labels": 8.0, "hvp": 16.0,
                      # linear_cross_entropy's gradients: first derivatives too (their matmuls' error is in the scale)
                      "grad_hidden": 8.0, "grad_weight": 8.0, "grad_bias": 8.0}


def tolerance(scale: np.ndarray, quantity: str, dtype: str, classes: int, flush: float | np.ndarray = 1.0) -> np.ndarray:
    f = dt.fmt(dtype)
    k = ALGORITHM_CONSTANT[quantity] + 2.0 * dt.log2_ceil(classes)
    with np.errstate(all="ignore"):
        return f.unit_roundoff * k * np.asarray(scale, dtype=np.float64) + f.smallest_normal * np.asarray(flush, dtype=np.float64)


def accumulated(scale: np.ndarray, quantity: str, dtype: str, classes: int, reference: np.ndarray, flush: float | np.ndarray,
                accumulates_in: str) -> np.ndarray:
    """The tolerance of a door that takes `dtype` inputs but computes in the wider `accumulates_in` (a fused LLM
    kernel's float32 accumulation for bfloat16 and float16 inputs): that dtype's working precision on every step,
    plus one rounding of the result into `dtype`, u(dtype) |ref|. Its inputs are `dtype` numbers already (the oracle
    starts from them), so nothing else of the narrow format enters."""
    with np.errstate(all="ignore"):
        last = dt.fmt(dtype).unit_roundoff * np.abs(np.asarray(reference, dtype=np.float64))
        last = np.where(np.isfinite(last), last, 0.0)
        return tolerance(scale, quantity, accumulates_in, classes, 0.0) + last + dt.fmt(dtype).smallest_normal * np.asarray(flush, dtype=np.float64)


def published_tolerance(expected: np.ndarray) -> np.ndarray:
    """Half a unit in the last printed digit of each published value (its own stated precision)."""
    out = np.empty(expected.shape, dtype=np.float64)
    for i, v in np.ndenumerate(expected):
        text = repr(float(v))
        if not np.isfinite(v):
            out[i] = 0.0
        elif "e" in text:
            mantissa, exp = text.split("e")
            decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
            out[i] = 0.5 * 10.0 ** (int(exp) - decimals)
        else:
            decimals = len(text.split(".")[1]) if "." in text else 0
            out[i] = 0.5 * 10.0**-decimals
    return out
