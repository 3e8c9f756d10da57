"""The report's table of batch invariance and determinism (run/properties.py): one row per implementation, op,
dtype and mode that a case with `properties` ran, each property at the weakest level any of its quantities held
(bitwise, within tolerance, neither), and what differed."""

from __future__ import annotations

from collections import defaultdict

from ..model.names import PROPERTIES
from ..model.record import PROPERTY_LEVELS, Record, property_level, weakest
from .markdown import table

HEADER = ["framework", "implementation", "op", "dtype", "mode", "device", "batch invariance", "determinism", "what differed"]


def rows(records: list[Record]) -> list[list[str]]:
    """[framework, implementation, op, dtype, mode, device, batch invariance, determinism, what differed], sorted."""
    found: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    differed: dict[tuple, set[str]] = defaultdict(set)
    for r in records:
        for name in PROPERTIES:
            level = property_level(getattr(r, name))
            if level is None:
                continue
            key = (r.framework, r.impl, r.op, r.dtype, r.mode, r.device)
            found[key][name].append(level)
            differed[key].update(f"{r.quantity} {d}" for d in (getattr(r, name) or {}).get("differs", []))
    return [[*key, *(weakest(props[n]) if props.get(n) else "-" for n in PROPERTIES), ", ".join(sorted(differed[key])) or "-"]
            for key, props in sorted(found.items())]


def counts(table_rows: list[list[str]]) -> dict[str, dict[str, int]]:
    """property -> level -> how many rows hold it to that level."""
    out: dict[str, dict[str, int]] = {n: dict.fromkeys(reversed(PROPERTY_LEVELS), 0) for n in PROPERTIES}
    for row in table_rows:
        for name, level in zip(PROPERTIES, row[6:8], strict=True):
            if level in out[name]:
                out[name][level] += 1
    return out


def section(records: list[Record]) -> list[str]:
    table_rows = rows(records)
    if not table_rows:
        return ["No case in this run asked for properties (the bundled `batch-invariance` suite does)."]
    tally = counts(table_rows)
    lines = ["Each call of a case with `properties` made again: the first row alone, at another position and beside "
             "padding rows (batch invariance), and the whole batch a second time (determinism); the weakest level over "
             "the call's quantities.", ""]
    lines += [f"- **{name.replace('_', ' ')}**: " + ", ".join(f"{n} {level}" for level, n in tally[name].items()) for name in PROPERTIES]
    return [*lines, "", *table(HEADER, table_rows)]
