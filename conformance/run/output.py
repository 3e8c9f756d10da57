"""A run's output folder: checked before anything runs, marked while a run writes into it, written so that a
failure loses nothing.

- `check` finds a bad --out before any work (exit 2): a file where the folder should be, a file above it, a folder
  that cannot be written, results.json or summary.md that are folders.
- `start` leaves `run-in-progress.json` in the folder and `finish` removes it once the new results are written: a
  run killed in between leaves the marker, so the previous results.json never poses as this run's (`stale_note`).
- The frameworks' log goes to `run.log.partial` and replaces `run.log` at the end: the previous run's log is kept
  until the new run has one.
- `save` writes results.json and then summary.md, each atomically; when the environment fails a write (a full disk,
  a folder that became unwritable) the previous files stay whole, the records are put somewhere else if they can be,
  and `WriteFailed` says where in one line (exit 4, not 1: nothing about the numerics).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import results as results_io

MARKER = "run-in-progress.json"
LOG, PARTIAL_LOG = "run.log", "run.log.partial"
OUTPUTS = ("results.json", "summary.md", LOG)


class FolderError(ValueError):
    """--out cannot hold a run's output: bad input, exit 2."""


class WriteFailed(Exception):
    """The environment failed a write after the run: exit 4; str() says what was kept and where."""


def check(out: Path) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FolderError(f"--out {out}: exists and is not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FolderError(f"--out {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FolderError(f"--out {out}: {existing} is not writable")
    for name in OUTPUTS:
        if (out / name).is_dir():
            raise FolderError(f"--out {out}: {out / name} is a folder; a run writes a file there")


def start(out: Path) -> None:
    """The in-progress marker and an empty partial log. Raises WriteFailed (nothing has run yet)."""
    marker = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "argv": sys.argv[1:]}
    try:
        out.mkdir(parents=True, exist_ok=True)
        results_io.write(marker, out / MARKER)
        (out / PARTIAL_LOG).write_text("")
    except OSError as exc:
        raise WriteFailed(f"cannot write into {out} ({exc.strerror or exc}); nothing was run") from None


def abandon(out: Path) -> None:
    """A run stopped by bad input before it wrote anything: no marker, no partial log, the previous files as they were."""
    (out / MARKER).unlink(missing_ok=True)
    (out / PARTIAL_LOG).unlink(missing_ok=True)


def finish(out: Path) -> None:
    (out / MARKER).unlink(missing_ok=True)
    partial = out / PARTIAL_LOG
    if partial.exists():
        os.replace(partial, out / LOG)


def stale_note(results: Path) -> str | None:
    """Why a results file is not the latest run into its folder, or None: a run started there and never finished."""
    marker = Path(results).parent / MARKER
    if not marker.is_file():
        return None
    try:
        started = json.loads(marker.read_text(encoding="utf-8")).get("started", "?")
    except (OSError, ValueError, AttributeError):
        started = "?"
    return (f"{results} is from an earlier run: a run into {marker.parent} started at {started} and did not finish "
            f"({MARKER} is still there)")


def save(doc: dict, out: Path, summary: Callable[[Path, dict], Path]) -> None:
    """results.json, then summary.md (by `summary(out, doc)`), each atomically. Raises WriteFailed."""
    target = out / "results.json"
    try:
        results_io.write(doc, target)
    except OSError as exc:
        kept = rescue(doc)
        where = f"the {len(doc['records'])} records are in {kept}" if kept else "the records could not be written anywhere"
        raise WriteFailed(f"could not write {target} ({exc.strerror or exc}); the previous files there are intact; {where}") from None
    try:
        summary(out, doc)
    except OSError as exc:
        raise WriteFailed(f"wrote {target}, but not {out / 'summary.md'} ({exc.strerror or exc}); "
                          f"`conformance rejudge {target}` writes it again") from None
    finish(out)


def rescue(doc: dict) -> Path | None:
    """The records written where there may be room: the temporary folder, then the home folder."""
    for folder in (Path(tempfile.gettempdir()), Path.home()):
        path = folder / f"conformance-results-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.json"
        try:
            results_io.write(doc, path)
            return path
        except OSError:
            continue
    return None
