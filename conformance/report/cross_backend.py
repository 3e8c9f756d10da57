"""One public call on several backends: "does my model compute the same loss on another backend?"

Implementations whose stable ids share everything after the framework (`<framework>/<door>` for every framework that
declares the door's prefix, adapters.shared_doors) are one *door* run by different frameworks' kernels; a model
exported from one framework and run by another (adapters.exported_doors) is the source framework's door, deployed:
"the same model, trained vs deployed".
For each door and pair of backends this compares the calls both ran (same case, op, quantity, dtype, mode, device)
by their verdict before the registry and their behaviour: two passes agree within the oracle's tolerance of each
other's answer; anything else that differs is a place where the backends part ways."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from ..adapters import exported_doors, shared_doors


def _door(impl_id: str, prefixes: tuple[str, ...], exports: dict[str, str] | None = None) -> str | None:
    """The door a record's implementation is: a shared door's key, or for an exported model (`exports`: key prefix ->
    the framework it was exported from, adapters.exported_doors) the source framework's own door, so that trained
    and deployed answers pair up; the source framework's records are that door too."""
    framework, _, rest = impl_id.partition("/")
    for prefix, source in (exports or {}).items():
        if rest.startswith(prefix):
            return f"{source}/{rest[len(prefix):]}"
    if framework in (exports or {}).values():
        return impl_id
    return rest if prefixes and rest.startswith(prefixes) else None


def _verdict(r: dict) -> str:
    return f"{r.known_status or r.status} ({r.behaviour})"


def calls(records: list[dict]) -> dict[tuple, dict[str, dict]]:
    """(door, case, op, quantity, dtype, mode, device) -> backend -> record, for doors run by two or more backends."""
    out: dict[tuple, dict[str, dict]] = defaultdict(dict)
    prefixes, exports = shared_doors(), exported_doors()
    for r in records:
        door = _door(r.impl_id or "", prefixes, exports)
        if door and r.status.ran:
            out[(door, r.case, r.op, r.quantity, r.dtype, r.mode, r.device)][r.framework] = r
    return {k: v for k, v in out.items() if len(v) > 1}


def pair_counts(records: list[dict]) -> list[list]:
    """Per door and backend pair: calls both ran, calls judged the same, calls where they part."""
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for (door, *_), by in calls(records).items():
        for a, b in combinations(sorted(by), 2):
            c = counts[(door, a, b)]
            c[0] += 1
            c[1] += _verdict(by[a]) == _verdict(by[b])
    return [[door, f"{a} / {b}", both, same, both - same] for (door, a, b), (both, same) in sorted(counts.items())]


def partings(records: list[dict]) -> list[list[str]]:
    """The calls where the same door is judged differently on different backends, one row each."""
    rows = []
    for (door, case, _op, q, dtype, mode, device), by in sorted(calls(records).items()):
        verdicts = {fw: _verdict(r) for fw, r in by.items()}
        if len(set(verdicts.values())) > 1:
            where = mode if device == "cpu" else f"{mode}, {device}"
            rows.append([door, case, q, dtype, where, "; ".join(f"{fw}: {v}" for fw, v in sorted(verdicts.items()))])
    return rows
