"""Loading and validating case files (the YAML format of the SPEC).

Every rule a case must follow is checked here, once, so that the rest of the suite can trust a `Case`.
A broken file raises `CaseFileError`, whose message names the file, the case id and the field.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.names import APPLICABLE_QUANTITIES, BEHAVIOURS, CROSS_ENTROPY_OPS, DTYPES, MASKED_OPS, OPS, PROPERTIES, QUANTITIES, REDUCTIONS
from ..model.ops import op as op_spec
from .generators import INTEGER_GENERATORS, MASK_GENERATORS, GeneratorError, generate, shape_of
from .generators import check as check_generator
from .safe_yaml import YamlError, max_elements, safe_load

CASE_FIELDS = {
    "id", "description", "source", "ops", "dtypes", "logits", "labels", "sparse_labels", "mask", "axis",
    "options", "quantities", "cotangent", "direction", "invalid", "expect", "tags",
    "properties",  # batch_invariance, determinism: run/properties.py
    "hidden", "weight", "bias",  # linear_cross_entropy: the logits are hidden @ weight.T + bias, computed inside the op
}
OPTION_FIELDS = {"reduction", "label_smoothing", "ignore_index", "weight", "label_dtype", "softcap", "z_loss"}
LABEL_DTYPES = ("int64", "int32")
LABEL_RANGE = {"int64": (-2 ** 63, 2 ** 63 - 1), "int32": (-2 ** 31, 2 ** 31 - 1)}
SPECIALS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "+inf": math.inf}
# The direction of every Hessian-vector product unless a case names its own: fixed, seeded, documented.
DEFAULT_DIRECTION = {"generate": "normal", "seed": 20261123}


class CaseFileError(ValueError):
    """A case file that breaks the format; str() is the one line shown to the user."""

    def __init__(self, path: Path | str, case_id: str | None, field_name: str | None, message: str):
        where = f"{path}"
        if case_id is not None:
            where += f": case '{case_id}'"
        if field_name is not None:
            where += f": field '{field_name}'"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Options:
    reduction: str = "none"
    label_smoothing: float = 0.0
    ignore_index: int | None = None
    weight: tuple[float, ...] | None = None
    label_dtype: str = "int64"  # extension: dtype of integer labels handed to the framework
    # extensions, options of LLM kernels (none of the frameworks' own functions takes them: unsupported there)
    softcap: float | None = None  # logits soft-capped to c * tanh(x / c) before the softmax (Gemma 2's final logits)
    z_loss: float = 0.0  # z * logsumexp(x)^2 added to each counted row's loss (PaLM's auxiliary z-loss)

    def non_default(self) -> list[str]:
        """Option names set away from their defaults (what an implementation must support natively)."""
        out = []
        if self.reduction != "none":
            out.append("reduction")
        if self.label_smoothing != 0.0:
            out.append("label_smoothing")
        if self.ignore_index is not None:
            out.append("ignore_index")
        if self.weight is not None:
            out.append("weight")
        if self.softcap is not None:
            out.append("softcap")
        if self.z_loss:
            out.append("z_loss")
        return out


@dataclass(frozen=True)
class Case:
    suite: str
    id: str
    description: str
    path: str
    ops: tuple[str, ...]
    dtypes: tuple[str, ...]
    logits: Any  # None for an op that computes its logits (linear_cross_entropy: from hidden, weight and bias)
    labels: Any = None
    sparse_labels: Any = None
    mask: Any = None  # masked ops: true/1 where the class takes part, broadcastable to the logits
    axis: int = -1
    options: Options = Options()
    quantities: tuple[str, ...] | None = None
    cotangent: Any = None  # None: the op's default (cotangent_for)
    direction: Any = field(default_factory=lambda: dict(DEFAULT_DIRECTION))
    invalid: bool = False
    expect: dict = field(default_factory=dict)
    source: str | None = None
    tags: tuple[str, ...] = ()
    hidden: Any = None  # linear_cross_entropy: [N, D] or [B, T, D]
    weight: Any = None  # linear_cross_entropy: the classifier [C, D] (options.weight stays the per-class loss weight)
    bias: Any = None  # linear_cross_entropy: optional [C]
    properties: tuple[str, ...] = ()  # asked of every call besides its verdict (names.PROPERTIES, run/properties.py)

    @property
    def full_id(self) -> str:
        return f"{self.suite}/{self.id}"

    def quantities_for(self, op: str) -> tuple[str, ...]:
        """The quantities asked of `op` (the case's, or the op's defaults) that exist for these inputs: no bias
        gradient without a bias, no label gradient for integer targets."""
        spec = op_spec(op)
        wanted = self.quantities or spec.default_quantities
        absent = {f"grad_{p}" for p in spec.optional_primals if getattr(self, p) is None}
        if spec.labels == "targets" and self.labels is None:
            absent.add("grad_labels")
        return tuple(q for q in wanted if q in APPLICABLE_QUANTITIES[op] and q not in absent)

    def cotangent_for(self, op: str) -> Any:
        # The gradient of sum(softmax) is identically zero, so softmax defaults to a seeded cotangent (the op table's).
        return op_spec(op).default_cotangent if self.cotangent is None else self.cotangent

    @property
    def logits_shape(self) -> tuple[int, ...]:
        """The logits' shape, given or computed inside the op ([..., D] hidden states times [C, D] weight: [..., C])."""
        if self.logits is None:
            return array_shape(self.hidden)[:-1] + array_shape(self.weight)[:1]
        return array_shape(self.logits)

    @property
    def labels_out_of_range(self) -> bool:
        """A class index outside [0, C) that is not ignore_index: no answer exists, and on CUDA some frameworks
        raise a device-side assert that poisons the process (pool.plan gives such cases a worker of their own)."""
        if self.sparse_labels is None or isinstance(self.sparse_labels, dict):
            return False  # generated indices are drawn from [0, classes)
        classes = self.logits_shape[self.axis]
        flat = np.asarray(self.sparse_labels, dtype=object).ravel()
        return any(not 0 <= v < classes and v != self.options.ignore_index for v in flat)

    def raw_logits(self) -> np.ndarray:
        """The given logits (an op that computes its own takes them from `raw_primals`)."""
        return materialize(self.logits)

    def raw_primals(self, op: str) -> dict[str, np.ndarray]:
        """The op's differentiable arguments by name (op table), before rounding; an absent optional one is left out."""
        fields = {"logits": self.logits, "hidden": self.hidden, "weight": self.weight, "bias": self.bias}
        return {p: materialize(fields[p]) for p in op_spec(op).primals if fields[p] is not None}

    def raw_labels(self) -> np.ndarray | None:
        return None if self.labels is None else materialize(self.labels)

    def raw_sparse_labels(self) -> np.ndarray | None:
        return None if self.sparse_labels is None else materialize(self.sparse_labels).astype(np.int64)

    def raw_mask(self) -> np.ndarray | None:
        return None if self.mask is None else materialize(self.mask).astype(bool)


def materialize(spec: Any) -> np.ndarray:
    """A literal nested list (with the strings inf, -inf, nan) or a generator mapping, as a NumPy array."""
    if isinstance(spec, dict):
        return generate(spec)
    return np.asarray(_replace_specials(spec), dtype=np.float64) if _has_float(spec) else np.asarray(spec)


def _replace_specials(value: Any) -> Any:
    if isinstance(value, list):
        return [_replace_specials(v) for v in value]
    if isinstance(value, str):
        return SPECIALS[value.lower()]
    return value


def _has_float(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return isinstance(value, (float, str))


def _check_array_literal(value: Any, allow_strings: bool) -> tuple[int, ...]:
    """Nested lists of numbers (and the special strings) with a rectangular shape; returns the shape."""
    count = 0

    def walk(v: Any) -> None:
        nonlocal count
        if isinstance(v, list):
            for item in v:
                walk(item)
            return
        count += 1
        if count > max_elements():
            raise ValueError(f"holds more than {max_elements():,} elements (raise the limit with --max-elements)")
        if isinstance(v, bool) or not (isinstance(v, (int, float)) or (allow_strings and isinstance(v, str))):
            raise ValueError(f"element {v!r} is not a number" + (" or one of inf, -inf, nan" if allow_strings else ""))
        if isinstance(v, int) and not allow_strings and not LABEL_RANGE["int64"][0] <= v <= LABEL_RANGE["int64"][1]:
            raise ValueError(f"element {v} does not fit a 64-bit integer")
        if isinstance(v, str) and v.lower() not in SPECIALS:
            hint = ""
            try:
                float(v)
                hint = " (YAML 1.1 reads an exponent without a sign as a string: write 1.0e+30, not 1.0e30)"
            except ValueError:
                pass
            raise ValueError(f"string {v!r} is not one of inf, -inf, nan{hint}")
    walk(value)
    try:
        return np.asarray(_replace_specials(value), dtype=np.float64).shape
    except (ValueError, OverflowError) as exc:
        raise ValueError("nested lists are not rectangular" if isinstance(exc, ValueError) else "a number is too large for a float") from None


def _array_field(raw: dict, name: str, path: Path, cid: str, allow_strings: bool) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            check_generator(value)  # every field checked now, not half way through a run; nothing is drawn
        elif isinstance(value, list):
            _check_array_literal(value, allow_strings)
        else:
            raise ValueError("must be a nested list or a generator mapping {generate: ..., seed: ...}")
    except (GeneratorError, ValueError) as exc:
        raise CaseFileError(path, cid, name, str(exc)) from None
    return value


def _mask_field(raw: dict, path: Path, cid: str) -> Any:
    """A literal of true/false (or 1/0) or a bernoulli generator; YAML booleans become 1/0 here."""
    value = raw.get("mask")
    if value is None:
        return None
    if isinstance(value, dict) and value.get("generate") not in MASK_GENERATORS:
        raise CaseFileError(path, cid, "mask", f"a generated mask must use {', '.join(MASK_GENERATORS)}")
    if isinstance(value, list):
        value = _bools_to_ints(value)
        try:
            _check_array_literal(value, allow_strings=False)
        except ValueError as exc:
            raise CaseFileError(path, cid, "mask", str(exc).replace("is not a number", "is not true/false")) from None
        if any(v not in (0, 1) for v in np.asarray(value, dtype=object).ravel()):
            raise CaseFileError(path, cid, "mask", "must hold true/false (or 1/0)")
        return value
    return _array_field(raw, "mask", path, cid, allow_strings=False)


def _bools_to_ints(value: Any) -> Any:
    if isinstance(value, list):
        return [_bools_to_ints(v) for v in value]
    return int(value) if isinstance(value, bool) else value


def array_shape(spec: Any) -> tuple[int, ...]:
    """The shape a field will have, without drawing a generator."""
    return shape_of(spec) if isinstance(spec, dict) else np.asarray(_replace_specials(spec), dtype=np.float64).shape


def _seeded_field(raw: dict, name: str, default: Any, path: Path, cid: str, allow_ones: bool) -> Any:
    """cotangent / direction: 'ones' (cotangent only) or a seeded generator without a shape."""
    value = raw.get(name, default)
    if value is None or (allow_ones and value == "ones"):
        return value
    what = "'ones' or a seeded generator such as {generate: normal, seed: 0}" if allow_ones else "a seeded generator such as {generate: normal, seed: 1}"
    if not isinstance(value, dict):
        raise CaseFileError(path, cid, name, f"must be {what}")
    try:
        check_generator(value, shaped=False)
    except GeneratorError as exc:
        raise CaseFileError(path, cid, name, str(exc)) from None
    return value


def _printable(text: str) -> bool:
    """No control, format, unassigned or line-separating characters (a newline or an ANSI escape in an id would forge
    report lines; a bidi override would make it read as something else)."""
    return not any(unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") for ch in text)


def _str_list(raw: dict, name: str, allowed: tuple[str, ...], path: Path, cid: str, default: Any) -> tuple[str, ...]:
    value = raw.get(name, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise CaseFileError(path, cid, name, f"must be a non-empty list drawn from {', '.join(allowed)}")
    for v in value:
        if not isinstance(v, str) or v not in allowed:
            raise CaseFileError(path, cid, name, f"unknown value {v!r}; expected one of {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise CaseFileError(path, cid, name, f"{next(v for v in value if value.count(v) > 1)!r} is listed twice")
    return tuple(value)


def _options(raw: Any, path: Path, cid: str, ops: tuple[str, ...], labels_dense: bool = False) -> Options:
    if raw is None:
        return Options()
    if not isinstance(raw, dict):
        raise CaseFileError(path, cid, "options", "must be a mapping")
    unknown = set(raw) - OPTION_FIELDS
    if unknown:
        raise CaseFileError(path, cid, f"options.{sorted(unknown)[0]}", f"unknown option; known: {', '.join(sorted(OPTION_FIELDS))}")
    reduction = raw.get("reduction", "none") or "none"
    if reduction not in REDUCTIONS:
        raise CaseFileError(path, cid, "options.reduction", f"must be one of {', '.join(REDUCTIONS)}")
    smoothing = raw.get("label_smoothing", 0.0) or 0.0
    if not isinstance(smoothing, (int, float)) or isinstance(smoothing, bool) or not 0.0 <= smoothing <= 1.0:
        raise CaseFileError(path, cid, "options.label_smoothing", "must be a number in [0, 1]")
    ignore = raw.get("ignore_index")
    if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool)):
        raise CaseFileError(path, cid, "options.ignore_index", "must be an integer or null")
    if ignore is not None and any(op_spec(op).labels == "dense" for op in ops):
        raise CaseFileError(path, cid, "options.ignore_index", "applies to sparse_softmax_cross_entropy only")
    weight = raw.get("weight")
    if weight is not None:
        if not isinstance(weight, list) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weight):
            raise CaseFileError(path, cid, "options.weight", "must be a flat list of numbers (one per class) or null")
        try:
            weight = tuple(float(w) for w in weight)
        except OverflowError:
            raise CaseFileError(path, cid, "options.weight", "a weight is too large for a float") from None
    label_dtype = raw.get("label_dtype", "int64")
    if not isinstance(label_dtype, str) or label_dtype not in LABEL_DTYPES:
        raise CaseFileError(path, cid, "options.label_dtype", f"must be one of {', '.join(LABEL_DTYPES)}")
    low, high = LABEL_RANGE[label_dtype]
    if ignore is not None and not low <= ignore <= high:
        raise CaseFileError(path, cid, "options.ignore_index", f"{ignore} does not fit label_dtype {label_dtype}")
    if weight is not None and not all(math.isfinite(w) for w in weight):
        raise CaseFileError(path, cid, "options.weight", "must hold finite numbers")
    softcap, z_loss = _llm_options(raw, path, cid, weight)
    if ignore is not None and labels_dense:
        raise CaseFileError(path, cid, "options.ignore_index", "applies to integer targets only, not dense labels")
    if any(op not in CROSS_ENTROPY_OPS for op in ops) and (reduction != "none" or smoothing or ignore is not None or weight
                                                           or softcap is not None or z_loss):
        raise CaseFileError(path, cid, "options", "cross-entropy options given to a case whose ops include softmax/log_softmax")
    return Options(reduction, float(smoothing), ignore, weight, label_dtype, softcap, z_loss)


def _llm_options(raw: dict, path: Path, cid: str, weight: tuple | None) -> tuple[float | None, float]:
    """softcap (a positive cap) and z_loss (a coefficient >= 0); z_loss with class weights has no convention that the
    kernels taking it share, so a case cannot ask for both."""
    softcap, z_loss = raw.get("softcap"), raw.get("z_loss", 0.0) or 0.0
    for name, value, low_ok in (("softcap", softcap, False), ("z_loss", z_loss, True)):
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0 or (value == 0 and not low_ok):
            raise CaseFileError(path, cid, f"options.{name}", "must be a finite number " + (">= 0" if low_ok else "> 0") + " or null")
    if z_loss and weight is not None:
        raise CaseFileError(path, cid, "options.z_loss", "cannot be combined with class weights (no shared convention)")
    return (None if softcap is None else float(softcap)), float(z_loss)


def _check_shapes(case: Case, path: Path) -> None:
    """Shapes that must agree: labels like logits, sparse labels like logits without the class axis, weights per
    class; integer labels that fit their dtype. Generators are not drawn: their shapes are read from the mapping."""
    cid = case.id
    _check_linear(case, path)
    shape = case.logits_shape
    if len(shape) == 0:
        raise CaseFileError(path, cid, "logits", "must have at least one dimension (the class axis)")
    if not -len(shape) <= case.axis < len(shape):
        raise CaseFileError(path, cid, "axis", f"axis {case.axis} is out of range for logits of rank {len(shape)}")
    axis = case.axis % len(shape)
    classes = shape[axis]
    if any(op_spec(op).labels == "dense" for op in case.ops):
        if case.labels is None:
            raise CaseFileError(path, cid, "labels", "softmax_cross_entropy needs dense labels")
        if array_shape(case.labels) != shape:
            raise CaseFileError(path, cid, "labels", f"shape {list(array_shape(case.labels))} differs from logits {list(shape)}")
    targets = [op for op in case.ops if op_spec(op).labels == "targets"]  # integer or dense, one of them
    if targets and (case.labels is None) == (case.sparse_labels is None):
        raise CaseFileError(path, cid, "sparse_labels", f"{targets[0]} needs its targets: integer sparse_labels or dense labels, one of them")
    if targets and case.labels is not None and array_shape(case.labels) != shape:
        raise CaseFileError(path, cid, "labels", f"shape {list(array_shape(case.labels))} differs from the logits {list(shape)} (hidden @ weight.T)")
    if any(op_spec(op).labels == "sparse" for op in case.ops) or (targets and case.sparse_labels is not None):
        if case.sparse_labels is None:
            raise CaseFileError(path, cid, "sparse_labels", "sparse_softmax_cross_entropy needs integer sparse_labels")
        _check_integer_labels(case, path)
        expected = shape[:axis] + shape[axis + 1:]
        if array_shape(case.sparse_labels) != expected:
            raise CaseFileError(path, cid, "sparse_labels",
                                f"shape {list(array_shape(case.sparse_labels))} should be {list(expected)} (logits without the class axis)")
    _check_mask(case, shape, path)
    if case.options.weight is not None and len(case.options.weight) != classes:
        raise CaseFileError(path, cid, "options.weight", f"has {len(case.options.weight)} entries for {classes} classes")


def _check_linear(case: Case, path: Path) -> None:
    """An op that computes its logits (linear_cross_entropy) takes hidden states [..., D], a weight [C, D] and an
    optional bias [C] instead of logits, on the last axis; it cannot share a case with ops that take logits."""
    computing = [op for op in case.ops if not op_spec(op).logits_given]
    cid = case.id
    if not computing:
        for name in ("hidden", "weight", "bias"):
            if getattr(case, name) is not None:
                raise CaseFileError(path, cid, name, "applies to linear_cross_entropy only (the ops of this case take logits)")
        if case.logits is None:
            raise CaseFileError(path, cid, "logits", "required")
        return
    if len(computing) != len(case.ops):
        raise CaseFileError(path, cid, "ops", f"{computing[0]} computes its logits from hidden and weight: give it a case of its own")
    if case.logits is not None:
        raise CaseFileError(path, cid, "logits", f"{computing[0]} computes its logits (hidden @ weight.T + bias): give hidden and weight instead")
    for name in ("hidden", "weight"):
        if getattr(case, name) is None:
            raise CaseFileError(path, cid, name, f"required by {computing[0]}")
    hidden, weight = array_shape(case.hidden), array_shape(case.weight)
    if len(hidden) < 1:
        raise CaseFileError(path, cid, "hidden", "must have at least one dimension (the features)")
    if len(weight) != 2 or weight[1] != hidden[-1]:
        raise CaseFileError(path, cid, "weight", f"shape {list(weight)} should be [classes, {hidden[-1]}] (hidden has {hidden[-1]} features)")
    if case.bias is not None and array_shape(case.bias) != weight[:1]:
        raise CaseFileError(path, cid, "bias", f"shape {list(array_shape(case.bias))} should be [{weight[0]}] (one per class)")
    if case.axis not in (-1, len(hidden) - 1):
        raise CaseFileError(path, cid, "axis", "the classes of hidden @ weight.T are the last axis")
    logits = math.prod(max(n, 1) for n in case.logits_shape)  # the oracle forms them: the same limit as given logits
    if logits > max_elements():
        raise CaseFileError(path, cid, "weight", f"the logits hidden @ weight.T span {logits:,} elements, over the limit of "
                            f"{max_elements():,} (raise it with --max-elements)")


def _check_mask(case: Case, shape: tuple[int, ...], path: Path) -> None:
    """A mask for the masked ops only, and every one of them needs one that broadcasts to the logits (NumPy rules)."""
    masked = [op for op in case.ops if op in MASKED_OPS]
    if case.mask is None:
        if masked:
            raise CaseFileError(path, case.id, "mask", f"{masked[0]} needs a mask (true where the class takes part)")
        return
    if len(masked) != len(case.ops):
        other = next(op for op in case.ops if op not in MASKED_OPS)
        raise CaseFileError(path, case.id, "mask", f"applies to {', '.join(MASKED_OPS[:-1])} and {MASKED_OPS[-1]} only, not {other}")
    mask_shape = array_shape(case.mask)
    try:
        if np.broadcast_shapes(mask_shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise CaseFileError(path, case.id, "mask", f"shape {list(mask_shape)} does not broadcast to logits {list(shape)}") from None


def _check_integer_labels(case: Case, path: Path) -> None:
    spec = case.sparse_labels
    if isinstance(spec, dict):
        if spec.get("generate") not in INTEGER_GENERATORS:
            raise CaseFileError(path, case.id, "sparse_labels", f"must hold integers: use a literal list or {', '.join(INTEGER_GENERATORS)}")
        return
    flat = np.asarray(spec, dtype=object).ravel()
    if flat.size and not all(isinstance(v, int) for v in flat):
        raise CaseFileError(path, case.id, "sparse_labels", "must hold integers")
    low, high = LABEL_RANGE[case.options.label_dtype]
    outside = [v for v in flat if not low <= v <= high]
    if outside:
        raise CaseFileError(path, case.id, "sparse_labels",
                            f"{outside[0]} does not fit label_dtype {case.options.label_dtype} (it would wrap silently)")


def _expect(raw: Any, path: Path, cid: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CaseFileError(path, cid, "expect", "must be a mapping of quantity (or 'behaviour') to expected values")
    for key, value in raw.items():
        if key == "behaviour":
            values = value if isinstance(value, list) else [value]
            if not all(v in BEHAVIOURS for v in values):
                raise CaseFileError(path, cid, "expect.behaviour", f"must be drawn from {', '.join(BEHAVIOURS)}")
        elif key in QUANTITIES:
            try:
                _check_array_literal(value if isinstance(value, list) else [value], allow_strings=True)
            except ValueError as exc:
                raise CaseFileError(path, cid, f"expect.{key}", str(exc)) from None
        else:
            raise CaseFileError(path, cid, f"expect.{key}", f"unknown key; use a quantity ({', '.join(QUANTITIES)}) or behaviour")
    return dict(raw)


def _check_defaults(defaults: dict, path: Path) -> None:
    """Every field of `defaults` is checked whether or not a case uses it: a wrong default that every case overrides
    today is wrong for the next case someone adds."""
    where = "defaults"
    unknown = set(defaults) - (CASE_FIELDS - {"id"})
    if unknown:
        raise CaseFileError(path, where, sorted(unknown)[0], "unknown field (or one a default cannot give)")
    for name, allowed in (("ops", OPS), ("dtypes", DTYPES), ("quantities", QUANTITIES), ("properties", PROPERTIES)):
        if name in defaults:
            _str_list(defaults, name, allowed, path, where, default=None)
    if "options" in defaults:
        _options(defaults["options"], path, where, tuple(OPS))
    for name, allow_ones in (("cotangent", True), ("direction", False)):
        if name in defaults:
            _seeded_field(defaults, name, None, path, where, allow_ones=allow_ones)
    if "axis" in defaults and (not isinstance(defaults["axis"], int) or isinstance(defaults["axis"], bool) or abs(defaults["axis"]) > 64):
        raise CaseFileError(path, where, "axis", "must be a small integer")
    if "invalid" in defaults and not isinstance(defaults["invalid"], bool):
        raise CaseFileError(path, where, "invalid", "must be true or false")


def _name_ok(name: Any) -> bool:
    """A suite or case name: printable, no '/', and not a path component of its own ('.', '..'), since the report
    writes a page per suite and repro commands name cases by it."""
    return isinstance(name, str) and bool(name) and "/" not in name and name not in (".", "..") and _printable(name) and len(name) <= 200


def _case(raw: Any, suite: str, defaults: dict, path: Path, index: int) -> Case:
    if not isinstance(raw, dict):
        raise CaseFileError(path, f"#{index}", None, "each case must be a mapping")
    merged = {**defaults, **raw}
    cid = merged.get("id")
    if not _name_ok(cid):
        raise CaseFileError(path, f"#{index}", "id", "required: a non-empty string of at most 200 printable characters without '/', not '.' or '..'")
    unknown = set(merged) - CASE_FIELDS
    if unknown:
        raise CaseFileError(path, cid, sorted(unknown)[0], "unknown field")
    description = merged.get("description")
    if not isinstance(description, str) or not description.strip():
        raise CaseFileError(path, cid, "description", "required: say why the case exists")
    ops = _str_list(merged, "ops", OPS, path, cid, default=None)
    case_dtypes = _str_list(merged, "dtypes", DTYPES, path, cid, default=["float32"])
    quantities = merged.get("quantities")
    if quantities is not None:
        quantities = _str_list(merged, "quantities", QUANTITIES, path, cid, default=None)
        for q in quantities if "quantities" in raw else ():  # file defaults mean "where it applies"
            if not any(q in APPLICABLE_QUANTITIES[op] for op in ops):
                raise CaseFileError(path, cid, "quantities", f"{q} applies to none of {', '.join(ops)}")
        for op in ops:
            if not any(q in APPLICABLE_QUANTITIES[op] for q in quantities):
                raise CaseFileError(path, cid, "quantities", f"none applies to {op} (it has {', '.join(APPLICABLE_QUANTITIES[op])})")
    axis = merged.get("axis", -1)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise CaseFileError(path, cid, "axis", "must be an integer")
    cotangent = _seeded_field(merged, "cotangent", None, path, cid, allow_ones=True)
    direction = _seeded_field(merged, "direction", DEFAULT_DIRECTION, path, cid, allow_ones=False)
    invalid = merged.get("invalid", False)
    if not isinstance(invalid, bool):
        raise CaseFileError(path, cid, "invalid", "must be true or false")
    source = merged.get("source")
    if source is not None and not isinstance(source, str):
        raise CaseFileError(path, cid, "source", "must be a string (a link, a seed, a paper)")
    if not isinstance(merged.get("axis", -1), int) or abs(merged.get("axis", -1)) > 64:
        raise CaseFileError(path, cid, "axis", "must be a small integer")
    tags = merged.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise CaseFileError(path, cid, "tags", "must be a list of strings")
    case = Case(
        suite=suite, id=cid, description=description.strip(), path=str(path), ops=ops, dtypes=case_dtypes,
        logits=_array_field(merged, "logits", path, cid, allow_strings=True),
        hidden=_array_field(merged, "hidden", path, cid, allow_strings=True),
        weight=_array_field(merged, "weight", path, cid, allow_strings=True),
        bias=_array_field(merged, "bias", path, cid, allow_strings=True),
        labels=_array_field(merged, "labels", path, cid, allow_strings=True),
        sparse_labels=_array_field(merged, "sparse_labels", path, cid, allow_strings=False),
        mask=_mask_field(merged, path, cid),
        axis=axis, options=_options(merged.get("options"), path, cid, ops, merged.get("labels") is not None), quantities=quantities,
        cotangent=cotangent, direction=direction, invalid=invalid,
        expect=_expect(merged.get("expect"), path, cid), source=source, tags=tuple(tags),
        properties=_str_list(merged, "properties", PROPERTIES, path, cid, default=None) if merged.get("properties") is not None else (),
    )
    _check_shapes(case, path)
    _check_properties(case, path)
    return case


def _check_properties(case: Case, path: Path) -> None:
    """A case that asks for properties is a batch of rows: the batch on axis 0 with another row to move the probed one
    to, the classes on another axis, an answer per row (no reduction), and an answer everywhere (not invalid)."""
    if not case.properties:
        return
    shape = case.logits_shape
    why = ("the logits need a batch axis first and the classes on another axis" if len(shape) < 2 or case.axis % len(shape) == 0
           else "the batch needs at least two rows" if shape[0] < 2
           else "a reduction mixes the rows: use reduction none" if case.options.reduction != "none"
           else "an invalid input has no answer to compare" if case.invalid else None)
    if why:
        raise CaseFileError(path, case.id, "properties", why)


def load_file(path: Path) -> list[Case]:
    """Load and validate one suite file."""
    try:
        doc = safe_load(path)
    except YamlError as exc:
        raise CaseFileError(path, None, None, str(exc)) from None
    if not isinstance(doc, dict):
        raise CaseFileError(path, None, None, "must be a mapping with 'suite' and 'cases'")
    unknown = set(doc) - {"suite", "description", "defaults", "cases"}
    if unknown:
        raise CaseFileError(path, None, sorted(unknown)[0], "unknown top-level field")
    suite = doc.get("suite")
    if not _name_ok(suite):
        raise CaseFileError(path, None, "suite", "required: a non-empty name of at most 200 printable characters without '/', not '.' or '..'")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise CaseFileError(path, None, "defaults", "must be a mapping")
    _check_defaults(defaults, path)
    raw_cases = doc.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise CaseFileError(path, None, "cases", "required: a non-empty list")
    cases, seen = [], set()
    for i, raw in enumerate(raw_cases):
        case = _case(raw, suite, defaults, path, i)
        if case.id in seen:
            raise CaseFileError(path, case.id, "id", "duplicate id in this suite")
        seen.add(case.id)
        cases.append(case)
    return cases


def load(paths: list[Path]) -> list[Case]:
    """Load every *.yaml under the given files/folders; suite names must be unique across the corpus."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.yaml")))
        elif p.exists():
            files.append(p)
        else:
            raise CaseFileError(p, None, None, "no such file or folder")
    if not files:
        raise CaseFileError(", ".join(map(str, paths)), None, None, "holds no *.yaml case files")
    cases: list[Case] = []
    suites: dict[str, Path] = {}
    for f in files:
        loaded = load_file(f)
        suite = loaded[0].suite
        if suite in suites:
            raise CaseFileError(f, None, "suite", f"suite name {suite!r} is already used by {suites[suite]}")
        suites[suite] = f
        cases.extend(loaded)
    return cases

