"""One rule for which records a selection covers: the runner (what to run), the registry (what an entry explains),
the gate (which baseline records a narrowed run leaves out) and the check that a pattern matches anything all ask it
here, so they cannot give three answers to one question.

A pattern matches a name exactly or as a glob (fnmatch, case-sensitive); the exact match comes first, because case
ids and implementation names can hold glob characters (`a[1]*?`, `x[t]`). An implementation is matched by its stable
id (`framework/key`) or by its label (the public function it calls), whichever the pattern names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

# A recorded selection (results.json's `selection`): its list of names -> the record field it narrows.
NARROWING = (("frameworks", "framework"), ("dtypes", "dtype"), ("modes", "mode"), ("devices", "device"), ("ops", "op"),
             ("quantities", "quantity"))


def matches(value: str, patterns: Iterable[str]) -> bool:
    """Whether `value` is named by any pattern: exactly, or as a glob."""
    return any(value == p or fnmatch.fnmatchcase(value, p) for p in patterns)


def impl_matches(impl_id: str | None, label: str, patterns: Iterable[str]) -> bool:
    """Whether an implementation is named by any pattern, by its stable id or by its label."""
    patterns = tuple(patterns)
    return matches(label, patterns) or (bool(impl_id) and matches(impl_id, patterns))


def left_out_by(selection: Mapping | None, record: Mapping, suites: set[str] | None = None) -> str | None:
    """Why a recorded selection leaves this record out (the option that narrowed it), or None where it covers it."""
    if not selection:
        return None
    for key, field_name in NARROWING:
        chosen = selection.get(key)
        if chosen and record[field_name] not in chosen:
            return f"--{key} {','.join(chosen)}"
    if selection.get("cases") and not matches(record.case, selection["cases"]):
        return f"--case {' '.join(selection['cases'])}"
    if selection.get("impls") and not impl_matches(record.impl_id, record.impl, selection["impls"]):
        return f"--impl {' '.join(selection['impls'])}"
    if selection.get("naive") is False and record.naive:  # a selection recorded before this field had every formula
        return "--no-naive or --quick (the naive formulas left out)"
    if suites is not None and record.case.split("/")[0] not in suites:
        return "--cases (suite not in the run)"
    return None
