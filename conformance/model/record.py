"""One record: the verdict on one (case, op, quantity, dtype, framework, implementation, mode, device).

Defined once here: the judge returns a `Verdict`, the runner builds a `Record` (the verdict with what was run), the
worker sends it to the parent as it is, and results.json carries `Record.to_json()`; reading a results file accepts
exactly the fields declared here (`FIELD_TYPES`, `REQUIRED`) and gives `Record`s back (`Record.from_json`). JSON is
made and read only in run/results.py. Everything between (the registry, the gate, diff, the report) reads the
record's attributes, identifies it by `key(record)`, and never changes it: a record is sealed once built, and the
registry's judgement (`judged`, `unjudged`) or a later fact (`Record.but`) makes a new one.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .status import Status


@dataclass
class Verdict:
    """The judge's answer on one output (judge.compare.judge), which the judge fills in as it measures."""
    status: Status
    behaviour: str | None  # None only where nothing ran (unsupported)
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    max_ulp: float | None = None
    tol_ratio: float | None = None  # worst |err| / tolerance: below 1 passes
    size: int = 0
    nan_count: int = 0
    inf_count: int = 0
    detail: str | None = None
    worst_index: list | None = None
    output: Any = None  # JSON of the values: nested lists, one number for a reduced loss, "nan"/"inf" as strings
    expected: Any = None
    error: dict | None = None  # {"type", "message"[, "where"]} where the call raised
    silent: bool | None = None  # a finite answer to an input that has none (written only when set)
    expect_checked: bool | None = None  # the case's published values were checked too (written only when set)
    unanswered: dict | None = None  # an invalid input's entries without an answer (compare.unanswered_summary), for diff and the gate
    answered_wrong: bool | None = None  # an invalid input's entry that has an answer is wrong: an accuracy fail (written only when set)

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # a word from a file or a worker becomes the enum; an unknown one is refused


@dataclass(kw_only=True)
class Record(Verdict):
    """The judge's verdict (status, behaviour, error figures, detail, ...: Verdict) with what was run."""

    # identity: what was run (key(record))
    case: str
    op: str
    quantity: str
    dtype: str
    framework: str
    impl: str  # the implementation's label: free text, for people
    mode: str
    device: str
    # the registry's judgement (Judgement, set by `judged`): the entry's link, id, and the status it replaced
    known: str | None = None
    known_id: str | None = None
    known_status: str | None = None
    beyond_known: str | None = None  # the entry that selects this fail, but whose bounds it exceeds
    beyond_why: str | None = None  # how it exceeds them
    # context
    impl_id: str = ""  # the implementation's stable id (framework/key): what baselines and the registry match
    case_file: str = ""
    naive: bool = False
    invalid: bool = False
    seconds: float = 0.0
    logit_scale: float | None = None
    framework_version: str | None = None  # the framework's version as the run found it
    source: str | None = None  # in a document merged from several (the report's merged.json): the results file it came from
    # written only when set
    reason: str | None = None  # why a call is unsupported
    out_dtype: str | None = None  # the dtype the framework answered in, where it is not the input's
    # the dtype a half-precision door declares it computes in (judged by that dtype's working precision, plus one
    # rounding of its result to the input's): tolerance.accumulated
    accumulates_in: str | None = None
    composed: list | None = None  # parts the adapter composed around the public call (e.g. ["reduction"])
    overwritten: str | None = None  # which input the call wrote into, and when: the record fails, whatever it returned
    answer: str | None = None  # a digest of what the call returned (compare.digest): diff and the gate see changed answers
    # a case that asks for them (run/properties.py): {"bitwise", "within_tolerance", "max_ulp"[, "differs", "error"]}
    batch_invariance: dict | None = None  # the probed row alone, at another position, beside padding rows: as in the batch
    determinism: dict | None = None  # the same call made again in the same process gives the same answer

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_sealed"):
            raise AttributeError(f"a record is not changed in place ({name}): make a new one with Record.but, judged or unjudged")
        object.__setattr__(self, name, value)

    def but(self, **changes: Any) -> Record:
        """A copy of this record with these fields changed."""
        return dataclasses.replace(self, **changes)

    # A read-only view by field name, for the Python API's users (`check()` results, pytest hooks), who read a record
    # as they read results.json; the package itself reads attributes.
    def __getitem__(self, name: str) -> Any:
        if name not in FIELDS:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        """As in the JSON form: a field written only when set is there only when set."""
        return name in FIELDS and (name not in OPTIONAL or getattr(self, str(name)) is not None)

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None) if name in FIELDS else None
        return default if value is None else value

    def to_json(self) -> dict:
        out = {}
        for name in _JSON_ORDER:
            value = getattr(self, name)
            if name not in OPTIONAL or value is not None:
                out[name] = value.value if isinstance(value, Status) else value
        return out

    @classmethod
    def from_json(cls, fields: dict) -> Record:
        """A record from its JSON form (results.read checks the fields first)."""
        return cls(**fields)


IDENTITY = ("case", "op", "quantity", "dtype", "framework", "impl", "mode", "device")
# Fields written only when set.
OPTIONAL = ("detail", "reason", "out_dtype", "accumulates_in", "composed", "overwritten", "answer", "batch_invariance", "determinism",
            "worst_index", "output", "expected", "silent", "expect_checked",
            "unanswered", "answered_wrong", "known_id", "known_status", "beyond_known", "beyond_why", "source")
# identity first: results.json reads from the left
_JSON_ORDER = tuple(sorted((f.name for f in dataclasses.fields(Record)), key=lambda n: n not in IDENTITY))
# Fields a results file must carry in every record: the identity and the verdict (older files lack the context).
REQUIRED = (*IDENTITY, "status", "behaviour",
            "max_abs_err", "max_rel_err", "max_ulp", "size", "nan_count", "inf_count", "error", "known")


def _types(annotation) -> tuple[type, ...]:
    """`float | None` -> (float, int, NoneType): JSON writes a whole float as an int."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    found = tuple(typing.get_origin(a) or a for a in args)
    return (*found, int) if float in found else found


# field -> the types its JSON value may have: what reading a results file checks (a status is a word there)
FIELD_TYPES = {name: (str,) if hint is Status else _types(hint) for name, hint in typing.get_type_hints(Record).items() if hint is not Any}
FIELDS = frozenset(f.name for f in dataclasses.fields(Record))  # what a record may carry: exactly these


def key(record: Record, by_id: bool = True) -> tuple:
    """The identity of a record (JSON form): one per (case, op, quantity, dtype, framework, implementation, mode,
    device), the implementation by its stable id where the record has one (a label can be improved without breaking
    baselines), by its label for files written before ids existed (by_id=False compares such a file with a newer one)."""
    impl = record.impl_id if by_id and record.impl_id else record.impl
    return tuple(impl if name == "impl" else getattr(record, name) for name in IDENTITY)


PROPERTY_LEVELS = ("neither", "within tolerance", "bitwise")  # how far a property held, weakest first


def property_level(found: dict | None) -> str | None:
    """How far a record's property (`batch_invariance`, `determinism`) held: bitwise, within tolerance, or neither;
    None where the record does not carry it."""
    if not isinstance(found, dict):
        return None
    return "bitwise" if found.get("bitwise") else "within tolerance" if found.get("within_tolerance") else "neither"


def weakest(levels: Iterable[str]) -> str:
    """The weakest of these property levels (PROPERTY_LEVELS: neither < within tolerance < bitwise)."""
    return min(levels, key=PROPERTY_LEVELS.index)


def message(record: Record) -> str:
    """What a record says about itself in one line: the bound of a known divergence it exceeds, its detail, else its
    error's message."""
    said = record.detail or (record.error or {}).get("message", "") or ""
    if record.beyond_known:
        return f"beyond known divergence {record.beyond_known}: {record.beyond_why}" + (f"; {said}" if said else "")
    return said


UNEXPLAINED = tuple(s for s in Status if s.unexplained)  # the oracle says it is wrong, and no registered divergence explains it


def unexplained(record: Record) -> bool:
    """A fail or error that no registry entry explains: what `conformance run` exits 1 for."""
    return record.status.unexplained


@dataclass(frozen=True)
class Judgement:
    """What the registry decided about one record: explained by an entry (status known, its link and id, the status it
    replaces), or selected by an entry whose bounds it exceeds (it keeps its status)."""
    entry: str
    link: str | None = None
    beyond: str | None = None  # why it is beyond the entry's bounds; None: explained


def judged(record: Record, judgement: Judgement) -> Record:
    """The record with the registry's judgement written into its declared fields."""
    if judgement.beyond is not None:
        return record.but(beyond_known=judgement.entry, beyond_why=judgement.beyond)
    return record.but(known_status=record.status.value, status=Status.KNOWN, known=judgement.link, known_id=judgement.entry)


def unjudged(record: Record) -> Record:
    """The record without what a registry decided: its status as the oracle judged it."""
    status = Status(record.known_status) if record.status is Status.KNOWN and record.known_status else record.status
    return record.but(status=status, known=None, known_status=None, known_id=None, beyond_known=None, beyond_why=None)
