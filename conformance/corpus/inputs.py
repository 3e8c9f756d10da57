"""One case, one op, one dtype: the concrete arrays every implementation and the oracle receive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import dtypes as dt
from ..model.names import MASKED_OPS
from ..model.ops import op as op_spec
from .cases import Case, Options, materialize


@dataclass(frozen=True)
class Inputs:
    op: str
    dtype: str
    # In the dtype under test; for an op that computes its logits (linear_cross_entropy), the exact logits of the
    # rounded hidden states, weight and bias in extended precision: what the oracle starts from, never a framework.
    logits: np.ndarray
    labels: np.ndarray | None  # dense labels, in the dtype under test
    sparse_labels: np.ndarray | None  # integer labels, in options.label_dtype
    axis: int  # normalised to a non-negative index
    options: Options
    cotangent: np.ndarray  # shaped like the output, in the dtype under test
    direction: np.ndarray  # shaped like the op's first primal (the logits, the hidden states), in the dtype under test (hvp)
    mask: np.ndarray | None = None  # masked ops: bool, True where the class takes part, broadcastable to the logits
    # linear_cross_entropy's primals, in the dtype under test (bias None where the case has none)
    hidden: np.ndarray | None = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    @property
    def primals(self) -> dict[str, np.ndarray | None]:
        """The op's differentiable arguments by name, in call order (op table), None for an absent optional one (a
        bias): a framework's function receives all of them, then `given_labels`, then the inputs."""
        return {p: getattr(self, p) for p in op_spec(self.op).primals}

    @property
    def given_primals(self) -> dict[str, np.ndarray]:
        """The primals this case gives (an absent bias left out): what is differentiated and what a call may overwrite."""
        return {p: a for p, a in self.primals.items() if a is not None}

    @property
    def primal_gradients(self) -> tuple[str, ...]:
        """The gradient quantity of every given primal: what a training step's backward pass returns."""
        return tuple(f"grad_{p}" for p in self.given_primals)

    @property
    def given_labels(self) -> np.ndarray | None:
        """The second argument handed to the framework: dense or integer labels, whichever this op takes, or the mask
        of a masked op (None for softmax)."""
        if op_spec(self.op).labels == "mask":
            return self.mask
        return self.labels if self.labels is not None else self.sparse_labels

    @property
    def classes(self) -> int:
        return self.logits.shape[self.axis]


def output_shape(op: str, logits_shape: tuple[int, ...], axis: int, reduction: str) -> tuple[int, ...]:
    return op_spec(op).output_shape(logits_shape, axis, reduction)


def _seeded(spec, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if spec == "ones":
        return np.ones(shape, dtype=dt.fmt(dtype).np_dtype)
    return dt.round_to(materialize({**spec, "shape": list(shape)}), dtype)


def build(case: Case, op: str, dtype: str) -> Inputs:
    """Round the case's inputs to `dtype`; the oracle then works on exactly what the framework sees."""
    spec = op_spec(op)
    primals = {name: dt.round_to(raw, dtype) for name, raw in case.raw_primals(op).items()}  # an absent bias left out
    logits = primals["logits"] if spec.logits_given else linear_logits(primals["hidden"], primals["weight"], primals.get("bias"))
    axis = case.axis % logits.ndim
    labels = sparse = None
    if spec.labels == "dense" or (spec.labels == "targets" and case.labels is not None):
        labels = dt.round_to(case.raw_labels(), dtype)
    if spec.labels == "sparse" or (spec.labels == "targets" and case.sparse_labels is not None):
        sparse = case.raw_sparse_labels().astype(case.options.label_dtype)
    out_shape = output_shape(op, logits.shape, axis, case.options.reduction)
    cotangent = _seeded(case.cotangent_for(op), out_shape, dtype)
    mask = case.raw_mask() if op in MASKED_OPS else None
    if mask is not None and spec.shaped_like_logits:
        # A masked output is a constant (0, or -inf for log-softmax), so sum(cotangent * output) is finite only with
        # no cotangent on it: the gradient is that of the kept entries, whichever way an implementation masks.
        cotangent = np.where(np.broadcast_to(mask, out_shape), cotangent, np.zeros((), cotangent.dtype))
    return Inputs(
        op=op, dtype=dtype, logits=logits, labels=labels, sparse_labels=sparse, axis=axis,
        options=case.options, cotangent=cotangent, direction=_seeded(case.direction, next(iter(primals.values())).shape, dtype),
        mask=mask, **{name: value for name, value in primals.items() if name != "logits"},
    )


def linear_logits(hidden: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """hidden @ weight.T + bias in extended precision (longdouble): every product of two inputs rounded to float16,
    bfloat16 or float32 is exact there, and a float64 product carries a relative error of 2**-64, so the logits the
    oracle starts from are those of the inputs, not of a rounded matmul."""
    ld = np.longdouble
    out = np.einsum("...d,cd->...c", hidden.astype(ld), weight.astype(ld))
    return out if bias is None else out + bias.astype(ld)
