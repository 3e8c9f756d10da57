"""Loading and validating case files (the YAML format of ../shared/SPEC.md).

Every rule a case must follow is checked here, once, so that the rest of the suite can trust a `Case`.
A broken file raises `CaseFileError`, whose message names the file, the case id and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .generators import GeneratorError, generate
from .names import APPLICABLE_QUANTITIES, BEHAVIOURS, CROSS_ENTROPY_OPS, DEFAULT_QUANTITIES, DTYPES, OPS, QUANTITIES, REDUCTIONS

CASE_FIELDS = {
    "id", "description", "source", "ops", "dtypes", "logits", "labels", "sparse_labels", "axis",
    "options", "quantities", "cotangent", "direction", "invalid", "expect", "tags",
}
OPTION_FIELDS = {"reduction", "label_smoothing", "ignore_index", "weight", "label_dtype"}
LABEL_DTYPES = ("int64", "int32")
SPECIALS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "+inf": math.inf}
# The direction of every Hessian-vector product unless a case names its own: fixed, seeded, documented.
DEFAULT_DIRECTION = {"generate": "normal", "seed": 20261123}
SOFTMAX_DEFAULT_COTANGENT = {"generate": "normal", "seed": 0}


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
        return out


@dataclass(frozen=True)
class Case:
    suite: str
    id: str
    description: str
    path: str
    ops: tuple[str, ...]
    dtypes: tuple[str, ...]
    logits: Any
    labels: Any = None
    sparse_labels: Any = None
    axis: int = -1
    options: Options = Options()
    quantities: tuple[str, ...] | None = None
    cotangent: Any = "ones"
    direction: Any = field(default_factory=lambda: dict(DEFAULT_DIRECTION))
    invalid: bool = False
    expect: dict = field(default_factory=dict)
    source: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def full_id(self) -> str:
        return f"{self.suite}/{self.id}"

    def quantities_for(self, op: str) -> tuple[str, ...]:
        wanted = self.quantities or DEFAULT_QUANTITIES
        return tuple(q for q in wanted if q in APPLICABLE_QUANTITIES[op])

    def cotangent_for(self, op: str) -> Any:
        # The gradient of sum(softmax) is identically zero, so softmax defaults to a seeded cotangent.
        if self.cotangent is None:
            return SOFTMAX_DEFAULT_COTANGENT if op == "softmax" else "ones"
        return self.cotangent

    def raw_logits(self) -> np.ndarray:
        return materialize(self.logits)

    def raw_labels(self) -> np.ndarray | None:
        return None if self.labels is None else materialize(self.labels)

    def raw_sparse_labels(self) -> np.ndarray | None:
        return None if self.sparse_labels is None else materialize(self.sparse_labels).astype(np.int64)


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


def _check_array_literal(value: Any, allow_strings: bool) -> None:
    """Nested lists of numbers (and the special strings) with a rectangular shape."""
    def walk(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                walk(item)
        elif isinstance(v, bool) or not (isinstance(v, (int, float)) or (allow_strings and isinstance(v, str))):
            raise ValueError(f"element {v!r} is not a number" + (" or one of inf, -inf, nan" if allow_strings else ""))
        elif isinstance(v, str) and v.lower() not in SPECIALS:
            hint = ""
            try:
                float(v)
                hint = " (YAML 1.1 reads an exponent without a sign as a string: write 1.0e+30, not 1.0e30)"
            except ValueError:
                pass
            raise ValueError(f"string {v!r} is not one of inf, -inf, nan{hint}")
    walk(value)
    try:
        np.asarray(_replace_specials(value), dtype=np.float64)
    except ValueError as exc:
        raise ValueError("nested lists are not rectangular") from exc


def _array_field(raw: dict, name: str, path: Path, cid: str, allow_strings: bool) -> Any:
    value = raw.get(name)
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            generate(value)  # validates the generator fields now, not half way through a run
        elif isinstance(value, list):
            _check_array_literal(value, allow_strings)
        else:
            raise ValueError("must be a nested list or a generator mapping {generate: ..., seed: ...}")
    except (GeneratorError, ValueError) as exc:
        raise CaseFileError(path, cid, name, str(exc)) from None
    return value


def _str_list(raw: dict, name: str, allowed: tuple[str, ...], path: Path, cid: str, default: Any) -> tuple[str, ...]:
    value = raw.get(name, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise CaseFileError(path, cid, name, f"must be a non-empty list drawn from {', '.join(allowed)}")
    for v in value:
        if v not in allowed:
            raise CaseFileError(path, cid, name, f"unknown value {v!r}; expected one of {', '.join(allowed)}")
    return tuple(value)


def _options(raw: Any, path: Path, cid: str, ops: tuple[str, ...]) -> Options:
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
    if ignore is not None and "softmax_cross_entropy" in ops:
        raise CaseFileError(path, cid, "options.ignore_index", "applies to sparse_softmax_cross_entropy only")
    weight = raw.get("weight")
    if weight is not None:
        if not isinstance(weight, list) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weight):
            raise CaseFileError(path, cid, "options.weight", "must be a flat list of numbers (one per class) or null")
        weight = tuple(float(w) for w in weight)
    label_dtype = raw.get("label_dtype", "int64")
    if label_dtype not in LABEL_DTYPES:
        raise CaseFileError(path, cid, "options.label_dtype", f"must be one of {', '.join(LABEL_DTYPES)}")
    if any(op not in CROSS_ENTROPY_OPS for op in ops) and (reduction != "none" or smoothing or ignore is not None or weight):
        raise CaseFileError(path, cid, "options", "cross-entropy options given to a case whose ops include softmax/log_softmax")
    return Options(reduction, float(smoothing), ignore, weight, label_dtype)


def _check_shapes(case: Case, path: Path) -> None:
    """Shapes that must agree: labels like logits, sparse labels like logits without the class axis, weights per class."""
    cid = case.id
    try:
        logits = case.raw_logits()
    except (GeneratorError, ValueError) as exc:
        raise CaseFileError(path, cid, "logits", str(exc)) from None
    if logits.ndim == 0:
        raise CaseFileError(path, cid, "logits", "must have at least one dimension (the class axis)")
    if not -logits.ndim <= case.axis < logits.ndim:
        raise CaseFileError(path, cid, "axis", f"axis {case.axis} is out of range for logits of rank {logits.ndim}")
    classes = logits.shape[case.axis]
    if "softmax_cross_entropy" in case.ops:
        labels = case.raw_labels()
        if labels is None:
            raise CaseFileError(path, cid, "labels", "softmax_cross_entropy needs dense labels")
        if labels.shape != logits.shape:
            raise CaseFileError(path, cid, "labels", f"shape {list(labels.shape)} differs from logits {list(logits.shape)}")
    if "sparse_softmax_cross_entropy" in case.ops:
        sparse = case.raw_sparse_labels()
        if sparse is None:
            raise CaseFileError(path, cid, "sparse_labels", "sparse_softmax_cross_entropy needs integer sparse_labels")
        if not np.issubdtype(np.asarray(materialize(case.sparse_labels)).dtype, np.integer) and sparse.size:
            raise CaseFileError(path, cid, "sparse_labels", "must hold integers")
        expected = logits.shape[: case.axis % logits.ndim] + logits.shape[case.axis % logits.ndim + 1:]
        if sparse.shape != expected:
            raise CaseFileError(path, cid, "sparse_labels", f"shape {list(sparse.shape)} should be {list(expected)} (logits without the class axis)")
    if case.options.weight is not None and len(case.options.weight) != classes:
        raise CaseFileError(path, cid, "options.weight", f"has {len(case.options.weight)} entries for {classes} classes")


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


def _case(raw: Any, suite: str, defaults: dict, path: Path, index: int) -> Case:
    if not isinstance(raw, dict):
        raise CaseFileError(path, f"#{index}", None, "each case must be a mapping")
    merged = {**defaults, **raw}
    cid = merged.get("id")
    if not isinstance(cid, str) or not cid or "/" in cid:
        raise CaseFileError(path, f"#{index}", "id", "required: a non-empty string without '/'")
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
    if "logits" not in merged:
        raise CaseFileError(path, cid, "logits", "required")
    axis = merged.get("axis", -1)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise CaseFileError(path, cid, "axis", "must be an integer")
    cotangent = merged.get("cotangent")
    if cotangent is not None and cotangent != "ones":
        if not isinstance(cotangent, dict) or not isinstance(cotangent.get("seed"), int):
            raise CaseFileError(path, cid, "cotangent", "must be 'ones' or a seeded generator such as {generate: normal, seed: 0}")
    direction = merged.get("direction", DEFAULT_DIRECTION)
    if not isinstance(direction, dict) or not isinstance(direction.get("seed"), int):
        raise CaseFileError(path, cid, "direction", "must be a seeded generator such as {generate: normal, seed: 1}")
    invalid = merged.get("invalid", False)
    if not isinstance(invalid, bool):
        raise CaseFileError(path, cid, "invalid", "must be true or false")
    source = merged.get("source")
    if source is not None and not isinstance(source, str):
        raise CaseFileError(path, cid, "source", "must be a string (a link, a seed, a paper)")
    tags = merged.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise CaseFileError(path, cid, "tags", "must be a list of strings")
    case = Case(
        suite=suite, id=cid, description=description.strip(), path=str(path), ops=ops, dtypes=case_dtypes,
        logits=_array_field(merged, "logits", path, cid, allow_strings=True),
        labels=_array_field(merged, "labels", path, cid, allow_strings=True),
        sparse_labels=_array_field(merged, "sparse_labels", path, cid, allow_strings=False),
        axis=axis, options=_options(merged.get("options"), path, cid, ops), quantities=quantities,
        cotangent=cotangent, direction=direction, invalid=invalid,
        expect=_expect(merged.get("expect"), path, cid), source=source, tags=tuple(tags),
    )
    _check_shapes(case, path)
    return case


def load_file(path: Path) -> list[Case]:
    """Load and validate one suite file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseFileError(path, None, None, f"cannot read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CaseFileError(path, None, None, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise CaseFileError(path, None, None, "must be a mapping with 'suite' and 'cases'")
    unknown = set(doc) - {"suite", "description", "defaults", "cases"}
    if unknown:
        raise CaseFileError(path, None, sorted(unknown)[0], "unknown top-level field")
    suite = doc.get("suite")
    if not isinstance(suite, str) or not suite or "/" in suite:
        raise CaseFileError(path, None, "suite", "required: a non-empty name without '/'")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise CaseFileError(path, None, "defaults", "must be a mapping")
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

