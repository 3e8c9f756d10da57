"""What the case files say about the cases a run's records name: their descriptions and sources, for the report."""

from __future__ import annotations

from pathlib import Path

from ..corpus.cases import CaseFileError, load


def case_notes(records: list[dict]) -> dict[str, dict]:
    """Description and source of every case the records name, read from the case files they came from (where those
    files are still there and valid: a report of another machine's results may not have them)."""
    notes: dict[str, dict] = {}
    for path in sorted({r.case_file for r in records if r.case_file}):
        try:
            cases = load([Path(path)])
        except CaseFileError:
            continue
        notes.update({c.full_id: {"description": c.description, "source": c.source} for c in cases})
    return notes
