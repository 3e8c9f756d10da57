"""A run's output folder: checked before anything runs, marked while a run writes into it, written so that a
failure loses nothing.

- `check` finds a bad --out before any work (exit 2): a file where the folder should be, a file above it, a folder
  that cannot be written, results.json or summary.md that are folders.
- `start` takes the folder for one run: `run-in-progress.json` names the holder (pid, start time, host, a token); a
  second run while the holder lives is refused, a killed holder's marker is taken over. Only the holder removes it
  (`finish`, by its token) once its results are written: a run killed in between leaves the marker, so the previous
  results.json never poses as this run's (`stale_note`), whatever command touches the folder later.
- The frameworks' log goes to `run.log.partial` and replaces `run.log` at the end: the previous run's log is kept
  until the new run has one.
- `save` writes results.json and then summary.md, each atomically; when the environment fails a write (a full disk,
  a folder that became unwritable) the previous files stay whole, the records are put somewhere else if they can be,
  and `WriteFailed` says where in one line (exit 4, not 1: nothing about the numerics).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from . import results as results_io

MARKER = "run-in-progress.json"
# The errors of the machine, not of the input or a framework: a full disk or quota, no permission, a read-only file
# system, a failing device. A command meeting one exits 4 (environment), whether it was writing its own files or a
# framework was writing its cache.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})  # the machine's fault, whatever folder was named
# ...and a folder the run could not write: the machine's only once the run took it (before that, bad input: start)
ENVIRONMENT_ERRNOS = FULL_ERRNOS | {errno.EACCES, errno.EPERM, errno.EROFS}
# a path that names nothing that can be made (a folder under a file, under /proc, a name too long): the user's to fix
BAD_PATH_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP})
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
    _check_makeable(out, "--out")
    for name in OUTPUTS:
        if (out / name).is_dir():
            raise FolderError(f"--out {out}: {out / name} is a folder; a run writes a file there")


def check_file(path: Path, option: str) -> None:
    """A file a command writes besides its folder (--junit): refused before the command's work where it could never be
    written, not after a run of half an hour."""
    path = Path(path)
    if path.is_dir():
        raise FolderError(f"{option} {path}: is a folder; a file is written there")
    _check_makeable(path.parent, option, path)


def _check_makeable(folder: Path, option: str, named: Path | None = None) -> None:
    """The folder exists or can be made: its nearest existing ancestor is a writable folder."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FolderError(f"{option} {named or folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FolderError(f"{option} {named or folder}: {existing} is not writable")


class FolderBusy(FolderError):
    """Another live run holds the folder: bad input for this one (exit 2), and nothing of the other's is touched."""


def _start_ticks(pid: int) -> int | None:
    """When a process started (clock ticks since boot, /proc/PID/stat field 22), to tell a live holder from a pid
    the system gave to another process since; None where /proc does not say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _holder_alive(marker: dict) -> bool:
    """Whether the run that wrote a marker is still running on this machine (a marker from another machine, on a
    shared folder, counts as alive: it cannot be checked from here)."""
    if marker.get("host") not in (None, socket.gethostname()):
        return True
    pid = marker.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    ticks = _start_ticks(pid)
    return marker.get("ticks") is None or ticks is None or ticks == marker.get("ticks")


def read_marker(out: Path) -> dict | None:
    """The folder's in-progress marker, or None; an unreadable one is a dead run's ({})."""
    path = Path(out) / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def live_holder(out: Path) -> dict | None:
    """The marker of a run that is writing into the folder now, or None."""
    marker = read_marker(out)
    return marker if marker is not None and _holder_alive(marker) else None


def start(out: Path) -> str:
    """Take the folder for one run: the in-progress marker (who holds it: pid, start time, host, a token) and an empty
    partial log; returns the token that `finish` and `abandon` need, so that no run removes another's marker. A folder
    held by a live run is refused (FolderBusy); a dead run's marker is taken over (its results stay marked stale until
    this run writes its own). Raises FolderError for a folder that cannot be made or written, WriteFailed for a full disk (nothing has run yet)."""
    token = uuid.uuid4().hex
    marker = {"pid": os.getpid(), "ticks": _start_ticks(os.getpid()), "host": socket.gethostname(), "token": token,
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "argv": sys.argv[1:]}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(out / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                held = live_holder(out)
                if held is not None:
                    raise FolderBusy(f"--out {out}: another run (pid {held.get('pid', '?')}, started {held.get('started', '?')}) is writing "
                                     "into it; wait for it to finish or choose another --out") from None
                (out / MARKER).unlink(missing_ok=True)  # a killed run's: its folder is ours now
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(marker))
            break
        else:
            raise FolderBusy(f"--out {out}: another run took the folder at the same moment; choose another --out")
        (out / PARTIAL_LOG).write_text("")
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise WriteFailed(f"cannot write into {out} ({exc.strerror or exc}); nothing was run") from None
        # a folder that cannot be made or written at all, where check() could not tell (root passes every permission
        # test, yet not a read-only filesystem or /proc): bad input, as an unwritable folder is for anyone else
        raise FolderError(f"--out {out}: cannot write into it ({exc.strerror or exc})") from None
    return token


def _release(out: Path, token: str | None) -> bool:
    """Remove the marker if it is this run's (its token): never another run's."""
    marker = read_marker(out)
    if token is None or marker is None or marker.get("token") != token:
        return False
    (Path(out) / MARKER).unlink(missing_ok=True)
    return True


def abandon(out: Path, token: str | None) -> None:
    """A run stopped by bad input before it wrote anything: its marker and partial log gone, the previous files as they were."""
    if _release(out, token):
        (out / PARTIAL_LOG).unlink(missing_ok=True)


def finish(out: Path, token: str | None) -> None:
    if _release(out, token):
        partial = out / PARTIAL_LOG
        if partial.exists():
            os.replace(partial, out / LOG)


def stale_note(results: Path, doc: dict | None = None) -> str | None:
    """Why a results file is not the latest run into its folder, or None: a run started there and has not finished
    writing its own (a live run, or one that was killed). A results file written by the marker's own run (its
    `run_token`), whose summary then failed, is that run's and not stale."""
    marker = read_marker(Path(results).parent)
    if marker is None:
        return None
    if doc is None:
        try:
            doc = results_io.load_json(Path(results), "a results file")
        except results_io.ResultsError:
            doc = {}
    if marker.get("token") and isinstance(doc, dict) and doc.get("run_token") == marker.get("token"):
        return None
    state = "is still running" if _holder_alive(marker) else "did not finish"
    return (f"{results} is from an earlier run: a run into {Path(results).parent} started at {marker.get('started', '?')} and {state} "
            f"({MARKER} is there)")


def save(doc: dict, out: Path, summary: Callable[[Path, dict], Path], token: str | None = None) -> None:
    """results.json, then summary.md (by `summary(out, doc)`), each atomically; then the run's marker goes (only the
    run that holds it, by its `token`, removes it). Raises WriteFailed."""
    target = out / "results.json"
    if token is not None:
        doc["run_token"] = token  # results.json says which run wrote it: stale_note tells it from an older file
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
    finish(out, token)


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
