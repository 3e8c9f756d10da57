"""One case, one op, one dtype: the concrete arrays every implementation and the oracle receive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import dtypes as dt
from ..model.names import MASKED_OPS, SOFTMAX_LIKE
from .cases import Case, Options, materialize


@dataclass(frozen=True)
class Inputs:
    op: str
    dtype: str
    logits: np.ndarray  # in the dtype under test
    labels: np.ndarray | None  # dense labels, in the dtype under test
    sparse_labels: np.ndarray | None  # integer labels, in options.label_dtype
    axis: int  # normalised to a non-negative index
    options: Options
    cotangent: np.ndarray  # shaped like the output, in the dtype under test
    direction: np.ndarray  # shaped like the logits, in the dtype under test (for hvp)
    mask: np.ndarray | None = None  # masked ops: bool, True where the class takes part, broadcastable to the logits

    @property
    def given_labels(self) -> np.ndarray | None:
        """The second argument handed to the framework: dense or integer labels, whichever this op takes, or the mask
        of a masked op (None for softmax)."""
        if self.mask is not None:
            return self.mask
        return self.labels if self.labels is not None else self.sparse_labels

    @property
    def classes(self) -> int:
        return self.logits.shape[self.axis]


def output_shape(op: str, logits_shape: tuple[int, ...], axis: int, reduction: str) -> tuple[int, ...]:
    if op in SOFTMAX_LIKE:
        return logits_shape
    if reduction != "none":
        return ()
    return logits_shape[:axis] + logits_shape[axis + 1:]


def _seeded(spec, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if spec == "ones":
        return np.ones(shape, dtype=dt.fmt(dtype).np_dtype)
    return dt.round_to(materialize({**spec, "shape": list(shape)}), dtype)


def build(case: Case, op: str, dtype: str) -> Inputs:
    """Round the case's inputs to `dtype`; the oracle then works on exactly what the framework sees."""
    raw = case.raw_logits()
    axis = case.axis % raw.ndim
    logits = dt.round_to(raw, dtype)
    labels = sparse = None
    if op == "softmax_cross_entropy":
        labels = dt.round_to(case.raw_labels(), dtype)
    if op == "sparse_softmax_cross_entropy":
        sparse = case.raw_sparse_labels().astype(case.options.label_dtype)
    out_shape = output_shape(op, logits.shape, axis, case.options.reduction)
    cotangent = _seeded(case.cotangent_for(op), out_shape, dtype)
    mask = case.raw_mask() if op in MASKED_OPS else None
    if mask is not None:
        # A masked output is a constant (0, or -inf for log-softmax), so sum(cotangent * output) is finite only with
        # no cotangent on it: the gradient is that of the kept entries, whichever way an implementation masks.
        cotangent = np.where(np.broadcast_to(mask, out_shape), cotangent, np.zeros((), cotangent.dtype))
    return Inputs(
        op=op, dtype=dtype, logits=logits, labels=labels, sparse_labels=sparse, axis=axis,
        options=case.options, cotangent=cotangent, direction=_seeded(case.direction, logits.shape, dtype), mask=mask,
    )
