"""results.json: the environment fingerprint, atomic writing (of every output file), and validated reading."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..model.record import FIELD_TYPES, FIELDS, IDENTITY, REQUIRED, Record
from ..model.record import key as key  # re-exported: diff and report identify records through results
from ..model.status import STATUSES
from .environment import environment

SCHEMA = "softmax-conformance/results/1"


class ResultsError(ValueError):
    pass


def document(records: list[Record], framework_info: dict, extra: dict | None = None) -> dict:
    doc = {"schema": SCHEMA, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "environment": environment(framework_info), "records": records}
    if framework_info.get("_interrupted"):
        doc["interrupted"] = True
    doc.update(extra or {})
    return doc


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when the block ends, removed when it raises
    (a full disk, a folder that became unwritable): the previous file stays whole and no fragment is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600); an output is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


PLAIN_ENV = "CONFORMANCE_PLAIN_JSON"  # set to 1: records files are written as JSON text, not gzip-compressed JSON


def compressed() -> bool:
    """Whether a file of records is written gzip-compressed: by default, since a record is about 1 kB of JSON text and
    45 compressed (the committed baseline's 51,646 records: 50.8 MB against 2.3 MB); every command reads both forms."""
    return os.environ.get(PLAIN_ENV, "").strip().lower() not in ("1", "true", "yes")


def write(doc: dict, path: Path) -> None:
    """Write atomically: a run that dies half way never leaves a truncated results file behind. A results document's
    records are written in their JSON form (Record.to_json), gzip-compressed unless CONFORMANCE_PLAIN_JSON is set
    (`compressed`); another document (a diff, a speed table) stays JSON text."""
    records = doc.get("records")
    if isinstance(records, list):
        doc = {**doc, "records": [r.to_json() if isinstance(r, Record) else r for r in records]}
    if isinstance(records, list) and compressed():
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False, default=str) + "\n"
        with atomic(path) as tmp, open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(text.encode("utf-8"))  # mtime 0: the same records give the same bytes
        return
    with atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, allow_nan=False, default=str)
        f.write("\n")


def write_text(path: Path, text: str) -> None:
    """A text output (summary.md, a report page) written atomically, like results.json."""
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


MAX_JSON_MB = 512  # a full four-framework run is about 10 MB; this only stops a runaway file


GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(data: bytes, path: Path, what: str) -> bytes:
    """A gzipped file's text, bounded like a plain one (a small file must not unpack into gigabytes)."""
    limit = int(MAX_JSON_MB * 1024 * 1024)
    parts, size = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            # in pieces: read(limit) would set aside the whole limit at once, for a file of a few kilobytes
            while size <= limit and (part := f.read(1 << 20)):
                parts.append(part)
                size += len(part)
    except (OSError, EOFError) as exc:
        raise ResultsError(f"{path}: not a readable gzip file: {exc}") from None
    if size > limit:
        raise ResultsError(f"{path}: unpacks to over {MAX_JSON_MB} MB, too large for {what}")
    return b"".join(parts)


def load_json(path: Path, what: str, nan_allowed: bool = False) -> object:
    """A JSON file a person or another machine handed us: a regular file, bounded, UTF-8, not absurdly deep, every
    object's keys unique; NaN and Infinity tokens only where the writer is known to emit them (pytest-benchmark)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ResultsError(f"{path}: not a regular file")
        if info.st_size > MAX_JSON_MB * 1024 * 1024:
            raise ResultsError(f"{path}: {info.st_size / 1e6:.0f} MB is too large for {what}")
        data = Path(path).read_bytes()
        if data[:2] == GZIP_MAGIC:  # a records file as `write` makes it by default
            data = _gunzip(data, path, what)
        return json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys,
                          **({} if nan_allowed else {"parse_constant": _no_constant}))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    except RecursionError:
        raise ResultsError(f"{path}: nested too deeply to be {what}") from None
    except _Refused as exc:
        raise ResultsError(f"{path}: not {what}: {exc}") from None
    except ValueError as exc:  # an integer of over 4,300 digits (Python's int limit)
        raise ResultsError(f"{path}: not {what}: {str(exc).splitlines()[0][:120]}") from None


class _Refused(Exception):
    """JSON that parses but that no writer of ours produces: read as something else, it could decide a verdict."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are unique: `{"status": "fail", "status": "pass"}` would otherwise read as pass."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Refused(f"the key {twice[:60]!r} appears twice in one object")
    return out


def _no_constant(name: str) -> object:
    """NaN and Infinity are not JSON; our writers never emit them (allow_nan=False: "nan" is a string in a record)."""
    raise _Refused(f"{name} is not a JSON value")


DOC_TYPES = {"environment": dict, "stale_known": list, "known_divergences": list, "selection": dict, "incomplete": dict,
             "complete": bool, "interrupted": bool, "created": str, "run_token": str, "timing": dict, "wall_seconds": (int, float)}


def _check_record(r, i: int, path: Path) -> None:
    if not isinstance(r, dict):
        raise ResultsError(f"{path}: record {i} is not an object")
    missing = [k for k in REQUIRED if k not in r]
    if missing:
        raise ResultsError(f"{path}: record {i} lacks {', '.join(missing)}")
    undeclared = sorted(k for k in r if k not in FIELDS)
    if undeclared:  # a field no version of the Record declares: another tool's file, or a key added in passing
        raise ResultsError(f"{path}: record {i} has field(s) a record does not have: {', '.join(map(repr, undeclared[:5]))}")
    for k, types in FIELD_TYPES.items():
        if k in r and (not isinstance(r[k], types) or (isinstance(r[k], bool) and bool not in types)):
            raise ResultsError(f"{path}: record {i}: field '{k}' is {type(r[k]).__name__}, not {' or '.join(t.__name__ for t in types)}")
    if r["status"] not in STATUSES:
        raise ResultsError(f"{path}: record {i}: status {r['status']!r} is not one of {', '.join(STATUSES)}")
    for k in (*IDENTITY, "impl_id", "known_id", "known"):
        text = r.get(k)
        if isinstance(text, str) and (len(text) > MAX_TEXT or not text.isprintable() or _surrogate(text)):
            raise ResultsError(f"{path}: record {i}: field '{k}' is not a printable line of at most {MAX_TEXT} characters")
    error = r.get("error")
    if error is not None and not (isinstance(error.get("type"), str) and isinstance(error.get("message", ""), str)):
        raise ResultsError(f"{path}: record {i}: 'error' must hold a type and a message as text")


MAX_TEXT = 400  # an identity field, a registry id or link: a line, not a page (and never a file name too long to write)


def _surrogate(text: str) -> bool:
    """A lone surrogate (JSON's \\ud800) is no character: it cannot be written to a file or a terminal."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def read(path: Path) -> dict:
    """A results file, checked field by field, its records as `Record`s: ResultsError (exit 2, one line) for anything
    the gate, diff or report could not read safely."""
    doc = load_json(path, "a results file")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: not a results file (schema should be {SCHEMA!r})")
    records = doc.get("records")
    if not isinstance(records, list):
        raise ResultsError(f"{path}: 'records' must be a list")
    for k, t in DOC_TYPES.items():
        if k in doc and not isinstance(doc[k], t):
            what = " or ".join(x.__name__ for x in (t if isinstance(t, tuple) else (t,)))
            raise ResultsError(f"{path}: '{k}' must be a{'n' if what[0] in 'aeiou' else ''} {what}")
    doc.setdefault("environment", {})
    frameworks = doc["environment"].setdefault("frameworks", {})
    if not isinstance(frameworks, dict) or not all(isinstance(v, dict) for v in frameworks.values()):
        raise ResultsError(f"{path}: 'environment.frameworks' must map names to objects")
    for fw, info in frameworks.items():
        packages = info.get("packages", {})
        if not isinstance(packages, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in packages.items()):
            raise ResultsError(f"{path}: 'environment.frameworks.{str(fw)[:40]}.packages' must map package names to versions")
    for name in ("stale_known", "known_divergences"):
        if not all(isinstance(e, dict) and isinstance(e.get("id"), str) and isinstance(e.get("link"), str) for e in doc.get(name, [])):
            raise ResultsError(f"{path}: '{name}' must be a list of objects with an id and a link")
    if not all(isinstance(v, dict) for v in (doc.get("timing") or {}).values()):
        raise ResultsError(f"{path}: 'timing' must map shards to objects")
    for option, value in (doc.get("selection") or {}).items():
        if option == "naive" and not isinstance(value, bool):
            raise ResultsError(f"{path}: 'selection.naive' must be true or false")
        if option not in ("machine", "naive") and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            raise ResultsError(f"{path}: 'selection.{str(option)[:40]}' must be a list of names")
    lost = (doc.get("incomplete") or {}).get("lost", [])
    if not isinstance(lost, list) or not all(isinstance(x, dict) for x in lost):
        raise ResultsError(f"{path}: 'incomplete.lost' must be a list of objects")
    for i, r in enumerate(records):
        _check_record(r, i, path)
    doc["records"] = [Record.from_json(r) for r in records]
    return doc


def read_part(path: Path) -> list[Record]:
    """The records of a part written by `write({"records": ...})` in this run (a pytest worker's), checked like a
    results file's."""
    doc = load_json(path, "a part of a results file")
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise ResultsError(f"{path}: 'records' must be a list")
    for i, r in enumerate(records):
        _check_record(r, i, path)
    return [Record.from_json(r) for r in records]


def by_id(*docs: dict) -> bool:
    """Whether every record of these documents carries a stable implementation id (then records match by it)."""
    return all(r.impl_id for d in docs for r in d["records"])


