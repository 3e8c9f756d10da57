"""Batch invariance and run-to-run determinism of one call, as two record fields.

A case that asks for `properties` (a batch of rows on axis 0, the classes on another axis, no reduction) has each of
its calls made again on derived batches of the same inputs, in the same mode and on the same device:

    alone      the probed row (row 0) as a batch of one
    position   the full batch with the probed row moved to another position (POSITION_SHARE of the way down)
    padding    the probed row followed by PADDING_ROWS rows of padding (zero logits, class 0, zero hidden states)
    again      the full batch a second time, in the same process (run-to-run determinism)

and each row-wise quantity's probed row is compared with the full batch's: bitwise (the same bits, NaN as NaN), and
within tolerance (|difference| within the record's own tolerance against the oracle at that row: tolerance.py).
Serving stacks ask for the first (a log-probability that depends on what else is in the batch changes a sampled
token: thinking-machines-lab/batch_invariant_ops, vLLM's batch-invariant mode); training reproducibility asks for
the second. The record's `batch_invariance` and `determinism` hold what was found; diff and the gate compare them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..corpus.inputs import Inputs
from ..judge.compare import tolerance_of
from ..judge.oracle import Reference
from ..model import dtypes as dt

PROBED_ROW = 0
POSITION_SHARE = 0.625  # the probed row's other position: 625 of a batch of 1,000
PADDING_ROWS = 7
# The quantities whose answer has the batch axis first, one entry per input row: only these can be compared row by
# row (a weight's gradient sums over the batch).
ROW_QUANTITIES = ("value", "grad_logits", "grad_labels", "grad_hidden", "hvp")


def _rows(array: np.ndarray | None, order: np.ndarray, batch: int) -> np.ndarray | None:
    """The rows `order` of an array whose first axis is the batch; an array without it (a mask broadcast over the
    batch, a weight) is the same for every row and stays."""
    if array is None or array.ndim == 0 or array.shape[0] != batch:
        return array
    return array[order]


def _padded(array: np.ndarray | None, batch: int) -> np.ndarray | None:
    """The probed row and PADDING_ROWS rows of padding after it: zeros (logits, hidden states, cotangent, direction),
    class 0 (integer labels), a one-hot class 0 (dense labels), every class kept (a mask)."""
    if array is None or array.ndim == 0 or array.shape[0] != batch:
        return array
    pad = np.zeros((PADDING_ROWS, *array.shape[1:]), dtype=array.dtype)
    if array.dtype == bool:
        pad[...] = True
    return np.concatenate([array[PROBED_ROW:PROBED_ROW + 1], pad])


def _one_hot_padding(labels: np.ndarray | None, axis: int, batch: int) -> np.ndarray | None:
    padded = _padded(labels, batch)
    if padded is not None and padded is not labels:
        index = [slice(1, None)] + [slice(None)] * (padded.ndim - 1)
        index[axis] = 0
        padded[tuple(index)] = 1
    return padded


_BATCHED = ("logits", "labels", "sparse_labels", "cotangent", "direction", "mask", "hidden")


def variants(inputs: Inputs) -> dict[str, tuple[Inputs, int]]:
    """Each derived batch with the index at which it holds the probed row."""
    batch = inputs.logits.shape[0]
    position = min(batch - 1, max(1, round(POSITION_SHARE * batch)))
    moved = np.arange(batch)
    moved[[PROBED_ROW, position]] = moved[[position, PROBED_ROW]]
    out = {
        "alone": (dataclasses.replace(inputs, **{f: _rows(getattr(inputs, f), np.array([PROBED_ROW]), batch) for f in _BATCHED}), 0),
        "position": (dataclasses.replace(inputs, **{f: _rows(getattr(inputs, f), moved, batch) for f in _BATCHED}), position),
    }
    padded = {f: _padded(getattr(inputs, f), batch) for f in _BATCHED}
    padded["labels"] = _one_hot_padding(inputs.labels, inputs.axis, batch)
    out["padding"] = (dataclasses.replace(inputs, **padded), 0)
    return out


@dataclasses.dataclass
class _Comparison:
    bitwise: bool = True
    within_tolerance: bool = True
    max_ulp: float = 0.0
    differs: list[str] = dataclasses.field(default_factory=list)  # the variants whose answer is not bitwise the same
    error: str | None = None

    def add(self, name: str, row: np.ndarray, expected: np.ndarray, tol: np.ndarray, reference: np.ndarray, dtype: str) -> None:
        row, expected = np.asarray(row), np.asarray(expected)
        if row.shape != expected.shape:
            self.bitwise = self.within_tolerance = False
            self.differs.append(name)
            return
        a, b = row.astype(np.float64), expected.astype(np.float64)
        same = (a == b) & (np.signbit(a) == np.signbit(b)) | (np.isnan(a) & np.isnan(b))
        if not np.all(same):
            self.bitwise = False
            self.differs.append(name)
        both = np.isfinite(a) & np.isfinite(b)
        if np.any(~same & ~both):  # a NaN or an infinity on one side only
            self.within_tolerance = False
        with np.errstate(all="ignore"):
            gap = np.where(both, np.abs(a - b), 0.0)
            self.within_tolerance &= bool(np.all(gap <= tol))
            normal = both & (np.abs(reference) >= dt.fmt(dtype).smallest_normal)
            ulps = np.where(normal, gap / dt.ulp(reference, dtype), 0.0)
        self.max_ulp = max(self.max_ulp, float(np.max(ulps, initial=0.0)))

    def failed(self, name: str, error: BaseException) -> None:
        self.bitwise = self.within_tolerance = False
        self.differs.append(name)
        self.error = f"{name}: {type(error).__name__}: {str(error).strip()[:160]}"

    def to_json(self) -> dict:
        out = {"bitwise": self.bitwise, "within_tolerance": self.within_tolerance, "max_ulp": round(self.max_ulp, 3)}
        if self.differs:
            out["differs"] = self.differs
        if self.error:
            out["error"] = self.error
        return out


def probe(evaluate: Callable[[Inputs], dict], inputs: Inputs, outs: dict, refs: dict[str, Reference], quantities: tuple[str, ...],
          wanted: tuple[str, ...], accumulates_in: str | None) -> dict[str, dict[str, dict]]:
    """quantity -> {"batch_invariance": ..., "determinism": ...} (those in `wanted`) for each row-wise quantity the
    full call answered. `evaluate(inputs)` makes the call on other inputs (the same implementation, mode, device)."""
    batch = inputs.logits.shape[0]
    answered = [q for q in quantities if q in ROW_QUANTITIES and isinstance(outs.get(q), np.ndarray) and q in refs
                and outs[q].ndim and outs[q].shape[0] == batch]
    if not answered:
        return {}
    found: dict[str, dict[str, _Comparison]] = {q: {} for q in answered}
    # each quantity's full answer, tolerance and reference: the same for every derived call
    against = {q: (np.asarray(outs[q]), np.broadcast_to(tolerance_of(refs[q], q, inputs.dtype, inputs.classes, accumulates_in),
                                                        np.shape(refs[q].value)), np.asarray(refs[q].value, dtype=np.float64))
               for q in answered}

    def compare(prop: str, name: str, derived: dict | BaseException, at: int | None) -> None:
        """The derived call's row `at` against the full call's probed row; `at` None: the whole answer against the
        whole answer (a repeated call)."""
        for q in answered:
            comparison = found[q].setdefault(prop, _Comparison())
            got = derived if isinstance(derived, BaseException) else derived.get(q)
            if isinstance(got, BaseException) or got is None:
                comparison.failed(name, got if isinstance(got, BaseException) else RuntimeError(f"no {q}"))
                continue
            full, tol, reference = against[q]
            if at is None:
                comparison.add(name, np.asarray(got), full, tol, reference, inputs.dtype)
            else:
                comparison.add(name, np.asarray(got)[at], full[PROBED_ROW], tol[PROBED_ROW], reference[PROBED_ROW], inputs.dtype)

    if "batch_invariance" in wanted:
        for name, (derived, at) in variants(inputs).items():
            compare("batch_invariance", name, _call(evaluate, derived), at)
    if "determinism" in wanted:
        compare("determinism", "again", _call(evaluate, inputs), None)
    return {q: {prop: c.to_json() for prop, c in props.items()} for q, props in found.items()}


def _call(evaluate: Callable[[Inputs], dict], inputs: Inputs) -> dict | BaseException:
    try:
        return evaluate(inputs)
    except Exception as exc:  # noqa: BLE001 - a variant the implementation refuses is what the property records
        return exc
