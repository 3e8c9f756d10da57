"""One record: the verdict on one (case, op, quantity, dtype, framework, implementation, mode, device).

Defined once here: the runner builds a `Record`, results.json carries `Record.to_json()`, and the reader of a
results file checks each record against the same fields (`FIELD_TYPES`, `REQUIRED`). Everything downstream (the
registry, the gate, diff, the report) reads the JSON form, a dict, and identifies a record by `key(record)`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from ..judge.compare import Verdict


@dataclass(kw_only=True)
class Record(Verdict):
    """The judge's verdict (status, behaviour, error figures, detail, ...: compare.Verdict) with what was run."""

    # identity: what was run (key(record))
    case: str
    op: str
    quantity: str
    dtype: str
    framework: str
    impl: str  # the implementation's label: free text, for people
    mode: str
    device: str
    error: dict | None = None  # {"type", "message"} where the call raised
    known: str | None = None  # the registry entry's link that explains it (set when the registry is applied)
    # context
    impl_id: str = ""  # the implementation's stable id (framework/key): what baselines and the registry match
    case_file: str = ""
    naive: bool = False
    invalid: bool = False
    seconds: float = 0.0
    logit_scale: float | None = None
    # written only when set
    reason: str | None = None  # why a call is unsupported
    out_dtype: str | None = None  # the dtype the framework answered in, where it is not the input's
    composed: list | None = None  # parts the adapter composed around the public call (e.g. ["reduction"])
    overwritten: str | None = None  # which input the call wrote into, and when: the record fails, whatever it returned
    answer: str | None = None  # a digest of what the call returned (compare.digest): diff and the gate see changed answers

    def to_json(self) -> dict:
        out = {}
        for name in _JSON_ORDER:
            value = getattr(self, name)
            if name == "extra":
                out.update(value)
            elif name not in OPTIONAL or value is not None:
                out[name] = value
        return out


IDENTITY = ("case", "op", "quantity", "dtype", "framework", "impl", "mode", "device")
OPTIONAL = ("detail", "reason", "out_dtype", "composed", "overwritten", "answer", "worst_index", "output", "expected")
# Fields a results file must carry in every record: the identity and the verdict (older files lack the context).
# identity first: results.json reads from the left
_JSON_ORDER = tuple(sorted((f.name for f in dataclasses.fields(Record)), key=lambda n: n not in IDENTITY))
REQUIRED = ("case", "op", "quantity", "dtype", "framework", "impl", "mode", "device", "status", "behaviour",
            "max_abs_err", "max_rel_err", "max_ulp", "size", "nan_count", "inf_count", "error", "known")


def _types(annotation) -> tuple[type, ...]:
    """`float | None` -> (float, int, NoneType): JSON writes a whole float as an int."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    found = tuple(typing.get_origin(a) or a for a in args)
    return (*found, int) if float in found else found


# field -> the types its JSON value may have: what reading a results file checks
FIELD_TYPES = {name: _types(hint) for name, hint in typing.get_type_hints(Record).items() if name != "extra" and hint is not Any}


def key(record: dict, by_id: bool = True) -> tuple:
    """The identity of a record (JSON form): one per (case, op, quantity, dtype, framework, implementation, mode,
    device), the implementation by its stable id where the record has one (a label can be improved without breaking
    baselines), by its label for files written before ids existed (by_id=False compares such a file with a newer one)."""
    impl = record.get("impl_id") if by_id and record.get("impl_id") else record["impl"]
    return (record["case"], record["op"], record["quantity"], record["dtype"], record["framework"], impl, record["mode"], record["device"])


def message(record: dict) -> str:
    """What a record says about itself in one line: its detail, else its error's message."""
    return record.get("detail") or (record.get("error") or {}).get("message", "") or ""
