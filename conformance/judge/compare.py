"""Judging one implementation's output against the oracle: status, behaviour and error figures."""

from __future__ import annotations

import hashlib

import numpy as np

from ..adapters.ownership import chain
from ..corpus.cases import materialize
from ..model import dtypes as dt
from ..model.record import Verdict
from ..model.status import Status
from .oracle import Reference
from .tolerance import accumulated, published_tolerance, tolerance

SIGNALS = ("error", "nonfinite", "all_nan")  # what counts as 'the implementation told the user' on invalid input
SMALL_OUTPUT = 16  # outputs up to this size are stored whole in the record, for the report


def behaviour_of(out: np.ndarray) -> str:
    if out.size and np.all(np.isnan(out)):
        return "all_nan"
    if not np.all(np.isfinite(out)):
        return "nonfinite"
    return "finite"


def jsonable(values: np.ndarray) -> list:
    """Floats for JSON, with the non-finite ones as the strings nan, inf, -inf (the case-file spelling)."""
    flat = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        flat.append(float(v) if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")))
    return np.asarray(flat, dtype=object).reshape(np.shape(values)).tolist()


def digest(values: np.ndarray) -> str:
    """A fingerprint of an answer: its shape and every value exactly as the framework returned it in its dtype (held
    exactly in float64), with -0.0 read as 0.0 and every NaN as one NaN, so that only a changed value or NaN/inf
    pattern changes it. 16 hex digits of SHA-256."""
    v = np.array(values, dtype=np.float64)
    v[v == 0] = 0.0
    v[np.isnan(v)] = np.nan
    h = hashlib.sha256(repr(v.shape).encode())
    h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()[:16]


def _none_if_nan(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def compare_values(out: np.ndarray, ref: np.ndarray, tol: np.ndarray, dtype: str, out_dtype: str | None = None) -> Verdict:
    """Element-wise check: NaN matches NaN only, infinities match exactly, finite values within tolerance. `out_dtype`:
    the dtype the answer came in where the call was asked to compute in a wider one (half input, float32 answer):
    past the input dtype's largest number the oracle is an infinity only if it is past the answer's too."""
    out64 = np.asarray(out, dtype=np.float64)
    ref64 = np.asarray(ref, dtype=np.float64)
    verdict = Verdict(status=Status.PASS, behaviour=behaviour_of(out64), size=int(out64.size),
                      nan_count=int(np.isnan(out64).sum()), inf_count=int(np.isinf(out64).sum()))
    if out64.shape != ref64.shape:
        verdict.status = Status.FAIL
        verdict.detail = f"shape {list(out64.shape)} where the oracle has {list(ref64.shape)}"
        return verdict
    if out64.size <= SMALL_OUTPUT:
        verdict.output, verdict.expected = jsonable(out64), jsonable(ref64)
    # The reference rounded to the dtype under test: past the format's largest number it *is* an infinity
    # (log_softmax of [3.4e38, -3.4e38] in float32 is -inf), so an implementation returning inf is right.
    wide = out_dtype if out_dtype in dt.FORMATS and dt.fmt(out_dtype).max > dt.fmt(dtype).max else dtype
    with np.errstate(all="ignore"):
        ref64 = np.where(np.abs(ref64) > dt.fmt(wide).max * (1 + dt.fmt(wide).unit_roundoff), np.sign(ref64) * np.inf, ref64)
    ref_nan, ref_inf = np.isnan(ref64), np.isinf(ref64)
    finite = np.isfinite(ref64) & np.isfinite(out64)
    with np.errstate(all="ignore"):
        err = np.where(finite, np.abs(out64 - np.asarray(ref, dtype=np.longdouble)).astype(np.float64), 0.0)
        ratio = np.where(finite, err / tol, 0.0)
    bad = (ref_nan & ~np.isnan(out64)) | (~ref_nan & np.isnan(out64))
    bad |= ref_inf & (out64 != ref64)
    bad |= np.isfinite(ref64) & ~np.isfinite(out64)
    bad |= finite & (ratio > 1.0)
    if np.any(finite):
        with np.errstate(all="ignore"):
            rel = np.where(finite & (ref64 != 0), err / np.abs(ref64), 0.0)
            # ULPs are counted where the reference is in the normal range: below it, a flushed subnormal
            # (allowed by the tolerance) would read as millions of subnormal-spacing ulps.
            normal = finite & (np.abs(ref64) >= dt.fmt(dtype).smallest_normal)
            ulps = np.where(normal, err / dt.ulp(ref64, dtype), 0.0)
        verdict.max_abs_err = _none_if_nan(err.max())
        verdict.max_rel_err = _none_if_nan(rel.max())
        verdict.max_ulp = _none_if_nan(ulps.max())
        verdict.tol_ratio = _none_if_nan(ratio.max())
    if np.any(bad):
        verdict.status = Status.FAIL
        # Point at the worst element: a mismatch in kind (NaN, inf) first, else the largest error ratio.
        score = np.where(bad & ~finite, np.inf, np.where(bad, ratio, -1.0))
        idx = np.unravel_index(int(np.argmax(score)), score.shape) if score.ndim else ()
        verdict.worst_index = [int(i) for i in idx]
        tol_at = float(tol[idx]) if np.ndim(tol) else float(tol)
        got, want = float(out64[idx]), float(ref64[idx])
        if np.isinf(want) or np.isinf(got):  # an infinity has no tolerance: say which side is infinite, not a ratio
            verdict.detail = f"at {verdict.worst_index}: got {got:.9g} where the oracle is {want:.9g} (an infinity matches only itself)"
        else:
            verdict.detail = f"at {verdict.worst_index}: got {got:.9g}, oracle {want:.9g}, tolerance {tol_at:.3g}"
    return verdict


def judge(out: np.ndarray | None, error: BaseException | None, ref: Reference, quantity: str, dtype: str, classes: int,
          invalid: bool, expect: dict, answers_in: str | None = None, accumulates_in: str | None = None) -> Verdict:
    """The verdict for one record. `out` is None exactly when the implementation raised `error`. `answers_in`: the
    dtype a door is asked to answer in (a half input normalised in float32), which bounds its range. `accumulates_in`:
    the wider dtype a door declares it computes in (tolerance.accumulated), or None."""
    wanted = expect.get("behaviour")
    wanted = [wanted] if isinstance(wanted, str) else wanted
    if error is not None:
        verdict = Verdict(status=Status.ERROR, behaviour="error",
                          error={"type": type(error).__name__, "message": _first_line(error)})
        if (invalid and (wanted is None or "error" in wanted)) or (wanted and "error" in wanted):
            verdict.status = Status.PASS
        return verdict
    out = np.asarray(out)
    if invalid:
        return _judge_invalid(out, ref, quantity, dtype, classes, wanted)
    tol = tolerance_of(ref, quantity, dtype, classes, accumulates_in)
    verdict = compare_values(out, ref.value, tol, dtype, answers_in)
    if wanted and verdict.behaviour not in wanted:
        verdict.status = Status.FAIL
        verdict.detail = f"behaviour {verdict.behaviour}, expected {' or '.join(wanted)}"
    if quantity in expect and verdict.status is Status.PASS:
        _check_published(verdict, out, expect[quantity], tol)
    return verdict


def tolerance_of(ref: Reference, quantity: str, dtype: str, classes: int, accumulates_in: str | None = None) -> np.ndarray:
    """The tolerance of each entry of an answer against the oracle's `ref` (tolerance.py): in the dtype's working
    precision, or in the wider one a door declares it accumulates in."""
    if widens(dtype, accumulates_in):
        return accumulated(ref.scale, quantity, dtype, classes, ref.value, ref.flush, accumulates_in)
    return tolerance(ref.scale, quantity, dtype, classes, ref.flush)


def widens(dtype: str, accumulates_in: str | None) -> bool:
    """Whether a door's declared accumulation dtype is finer than the input's (only then does it change the bound)."""
    return accumulates_in is not None and dt.fmt(accumulates_in).unit_roundoff < dt.fmt(dtype).unit_roundoff


def _judge_invalid(out: np.ndarray, ref: Reference | None, quantity: str, dtype: str, classes: int, wanted: list | None) -> Verdict:
    """An input that has no answer as a whole: judge what the implementation did (an error, NaN or inf passes; a finite
    output is a silent answer), not its numbers. Where the oracle localises the missing answer (a fully masked row, a
    NaN row, an out-of-range label: NaN there, finite elsewhere), the entries that do have an answer are judged like any
    record's: a finite value there must lie within tolerance (a NaN or inf there is the signal spreading, allowed), and
    the record keeps the entries without one (`unanswered`) for `diff` and the gate to compare by behaviour and value."""
    out64 = np.asarray(out, dtype=np.float64)
    verdict = Verdict(status=Status.PASS, behaviour=behaviour_of(out64), size=int(out.size),
                      nan_count=int(np.isnan(out64).sum()), inf_count=int(np.isinf(out64).sum()))
    if out.size <= SMALL_OUTPUT:
        verdict.output = jsonable(out)
    answered = _answered(ref, out64.shape)
    if answered is not None:
        checked = answered & np.isfinite(out64)
        tol = np.where(checked, tolerance(ref.scale, quantity, dtype, classes, ref.flush), 1.0)
        measured = compare_values(np.where(checked, out64, 0.0), np.where(checked, ref.value, 0.0), tol, dtype)
        verdict.max_abs_err, verdict.max_rel_err, verdict.max_ulp = measured.max_abs_err, measured.max_rel_err, measured.max_ulp
        verdict.tol_ratio = measured.tol_ratio
        if out.size <= SMALL_OUTPUT:
            verdict.expected = jsonable(ref.value)
        verdict.unanswered = unanswered_summary(out64[~answered], quantity, dtype, classes)
        if measured.status is not Status.PASS:
            verdict.status, verdict.answered_wrong = Status.FAIL, True
            verdict.worst_index = measured.worst_index
            verdict.detail = f"an entry that has an answer is wrong: {measured.detail}"
            return verdict
    allowed = wanted or list(SIGNALS)
    if verdict.behaviour not in allowed:
        verdict.status = Status.ERROR if allowed == ["error"] else Status.FAIL
        verdict.detail = f"returned {verdict.behaviour} values where {' or '.join(allowed)} was expected"
        if verdict.behaviour == "finite":
            verdict.silent = True  # a finite answer to a question that has none
    return verdict


def _answered(ref: Reference | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Which entries of an invalid input's output have an answer (the oracle is not NaN there: its -inf for a masked
    log-probability is an answer), or None where the oracle does not localise the missing answer: no reference,
    another shape, or no entry without an answer (an input invalid as a whole, such as labels that are no
    distribution: then no entry is judged by value)."""
    if ref is None or np.shape(ref.value) != shape:
        return None
    answered = ~np.isnan(np.asarray(ref.value, dtype=np.float64))
    return answered if not np.all(answered) else None


UNANSWERED_VALUES = 16  # the entries without an answer are stored one by one up to this many, else summarised


def answer_tolerance(quantity: str, dtype: str, classes: int) -> float:
    """The relative tolerance within which two runs' values of an entry without an answer are the same answer: the
    tolerance model's (tolerance.py) per unit of the value's own magnitude, u * (K + 2 ceil(log2 C))."""
    return float(tolerance(np.float64(1.0), quantity, dtype, max(classes, 1), 0.0))


def unanswered_summary(values: np.ndarray, quantity: str, dtype: str, classes: int) -> dict:
    """The entries of an output that have no answer, as `diff` and the gate compare them between runs: how many, their
    NaN/inf pattern, and their values (each, up to UNANSWERED_VALUES; beyond, the finite ones' min, max, sum and sum of
    magnitudes), with the relative tolerance (`rtol`) and absolute floor (`atol`, the dtype's smallest normal) within
    which a value is unchanged."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    summary = {"entries": int(v.size), "nan": int(np.isnan(v).sum()), "posinf": int((v == np.inf).sum()),
               "neginf": int((v == -np.inf).sum()), "rtol": answer_tolerance(quantity, dtype, classes),
               "atol": float(dt.fmt(dtype).smallest_normal)}
    if v.size <= UNANSWERED_VALUES:
        summary["values"] = jsonable(v)
    elif finite.size:
        summary.update(min=float(finite.min()), max=float(finite.max()), sum=float(finite.sum()), abs_sum=float(np.abs(finite).sum()))
    return summary


def _check_published(verdict: Verdict, out: np.ndarray, expected_literal, tol: np.ndarray) -> None:
    expected = materialize(expected_literal if isinstance(expected_literal, list) else [expected_literal])
    expected = expected.reshape(np.shape(out)) if expected.size == np.size(out) else expected
    if expected.shape != np.shape(out):
        verdict.status = Status.FAIL
        verdict.detail = f"expect has shape {list(expected.shape)}, output {list(np.shape(out))}"
        return
    allowed = published_tolerance(expected) + tol
    check = compare_values(out, expected, allowed, "float64")
    verdict.expect_checked = True
    if check.status is not Status.PASS:
        verdict.status = Status.FAIL
        verdict.detail = "explicit expectation: " + (check.detail or "")


def _first_line(error: BaseException) -> str:
    """The first line of the error's message, and its cause where the first line does not say it: a line ending in
    ':' takes the next one ("backend='X' raised:" then "ImportError: ...main.so: file too short"), and the
    innermost exception of the chain is named when it is another (an adapter whose framework puts something else
    first, such as a traceback of user code, says which line matters in its own `error_message`)."""
    def lines_of(e: BaseException) -> list[str]:
        return [line.strip() for line in (str(e).strip() or type(e).__name__).splitlines() if line.strip()]

    lines = lines_of(error)
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    root = chain(error)[-1]
    if root is not error and lines_of(root)[0] not in text:
        text += f" (caused by {type(root).__name__}: {lines_of(root)[0]})"
    return text[:300]
