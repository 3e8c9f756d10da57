"""One record: the verdict on one (case, op, quantity, dtype, framework, implementation, mode, device).

Defined once here: the judge returns a `Verdict`, the runner builds a `Record` (the verdict with what was run),
results.json carries `Record.to_json()`, and the reader of a results file accepts exactly the fields declared here
(`FIELD_TYPES`, `REQUIRED`). Everything downstream (the registry, the gate, diff, the report) reads the JSON form, a
dict, identifies a record by `key(record)`, and changes a record only through the functions below (`judged`,
`unjudged`): no module adds a key of its own.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any


@dataclass
class Verdict:
    """The judge's answer on one output (judge.compare.judge)."""
    status: str
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

    def to_json(self) -> dict:
        out = {}
        for name in _JSON_ORDER:
            value = getattr(self, name)
            if name not in OPTIONAL or value is not None:
                out[name] = value
        return out


IDENTITY = ("case", "op", "quantity", "dtype", "framework", "impl", "mode", "device")
# Fields written only when set.
OPTIONAL = ("detail", "reason", "out_dtype", "accumulates_in", "composed", "overwritten", "answer", "worst_index", "output", "expected", "silent",
            "expect_checked", "unanswered", "answered_wrong", "known_id", "known_status", "beyond_known", "beyond_why", "source")
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


# field -> the types its JSON value may have: what reading a results file checks
FIELD_TYPES = {name: _types(hint) for name, hint in typing.get_type_hints(Record).items() if hint is not Any}
FIELDS = frozenset(f.name for f in dataclasses.fields(Record))  # what a record may carry: exactly these


def key(record: dict, by_id: bool = True) -> tuple:
    """The identity of a record (JSON form): one per (case, op, quantity, dtype, framework, implementation, mode,
    device), the implementation by its stable id where the record has one (a label can be improved without breaking
    baselines), by its label for files written before ids existed (by_id=False compares such a file with a newer one)."""
    impl = record.get("impl_id") if by_id and record.get("impl_id") else record["impl"]
    return tuple(impl if name == "impl" else record[name] for name in IDENTITY)


def message(record: dict) -> str:
    """What a record says about itself in one line: the bound of a known divergence it exceeds, its detail, else its
    error's message."""
    said = record.get("detail") or (record.get("error") or {}).get("message", "") or ""
    if record.get("beyond_known"):
        return f"beyond known divergence {record['beyond_known']}: {record.get('beyond_why')}" + (f"; {said}" if said else "")
    return said


UNEXPLAINED = ("fail", "error")  # the oracle says it is wrong, and no registered divergence explains it


def unexplained(record: dict) -> bool:
    """A fail or error that no registry entry explains: what `conformance run` exits 1 for."""
    return record["status"] in UNEXPLAINED


@dataclass(frozen=True)
class Judgement:
    """What the registry decided about one record: explained by an entry (status known, its link and id, the status it
    replaces), or selected by an entry whose bounds it exceeds (it keeps its status)."""
    entry: str
    link: str | None = None
    beyond: str | None = None  # why it is beyond the entry's bounds; None: explained


def judged(record: dict, judgement: Judgement) -> None:
    """Write the registry's judgement into the record's declared fields (in place)."""
    if judgement.beyond is not None:
        record.update(beyond_known=judgement.entry, beyond_why=judgement.beyond)
    else:
        record.update(known_status=record["status"], status="known", known=judgement.link, known_id=judgement.entry)


def unjudged(record: dict) -> None:
    """Take back what a registry decided (in place): the record's status as the oracle judged it."""
    if record.get("status") == "known" and record.get("known_status"):
        record["status"] = record["known_status"]
    for k in ("known_status", "known_id", "beyond_known", "beyond_why"):
        record.pop(k, None)
    record["known"] = None  # a field of every record
