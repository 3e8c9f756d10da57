"""`conformance history`: one framework's doors run across a list of its real releases, and every consecutive pair
compared as an upgrade would be (`diff`, and the gate both ways).

Each release is installed once into a folder of its own (`pip install --no-deps --target`, kept in a cache), and the
run happens in a fresh process with that folder first on its path: the release's packages shadow the environment's,
whatever else the run needs (the array libraries, the other frameworks) comes from the environment. The run records the
package versions it imported, and a run that did not import the release asked for is refused, not compared. Each
release's results stay in a folder of their own, so an interrupted history resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ..gate import records as gate_mod
from ..report import diff as diff_mod
from ..report.diff import MoveKind
from ..run import results as results_io
from ..run.folder import RunRequest
from . import fresh
from .run_command import run_as_command

_REQUIREMENT = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==(\S+)$")
INSTALL_TIMEOUT_S = 900  # one release's wheels from the registry


class HistoryError(Exception):
    """Bad input or a release that cannot be installed or run: one line, exit 2."""


@dataclass(frozen=True)
class Release:
    """One step of the history: the exact package versions installed for it (`pkg==1.2.0`, or a set that must
    move together, `pkg==1.2.0 pkglib==1.2.0`)."""

    pins: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return "_".join(f"{name}-{version}" for name, version in self.pins)

    @property
    def requirements(self) -> list[str]:
        return [f"{name}=={version}" for name, version in self.pins]


def _release_version(text: str) -> bool:
    """A PEP 440 version as the registry serves it: pip takes `pkg==1.0.zip` for a path when such a file is in the
    current folder, so anything that is not a plain public version (no local `+tag`, no file suffix) is refused."""
    try:
        version = Version(text)
    except InvalidVersion:
        return False
    return version.local is None and re.fullmatch(r"[0-9][0-9A-Za-z.!]*", text) is not None


def parse_release(text: str) -> Release:
    """`'pkg==1.2.0 pkglib==1.2.0'` (spaces or commas between pins): exact versions only, since a history step is
    one release, not a range."""
    pins = []
    for part in re.split(r"[\s,]+", text.strip()):
        match = _REQUIREMENT.match(part)
        if not match or not _release_version(match.group(2)):
            raise HistoryError(f"release {text!r}: {part!r} is not an exact pin like pkg==1.2.0 (a PEP 440 version from the registry; "
                               "never a path, a file name or a URL)")
        pins.append((match.group(1).lower().replace("_", "-"), match.group(2)))
    if not pins:
        raise HistoryError("an empty release")
    return Release(tuple(pins))


def install(release: Release, cache: Path, log: Callable[[str], None]) -> Path:
    """The release's folder, installed once: a folder holds a release only once pip finished (the marker), so a
    killed install is redone, never half used."""
    target = cache / release.label
    if (target / ".installed").exists():
        return target
    partial = cache / f".{release.label}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    log(f"history: installing {' '.join(release.requirements)} into {target}")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", str(partial),
           *release.requirements]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise HistoryError(f"installing {release.label} took over {INSTALL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        why = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        raise HistoryError(f"cannot install {' '.join(release.requirements)}: {why[-1] if why else f'pip exit {done.returncode}'}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    (target / ".installed").write_text(" ".join(release.requirements) + "\n")
    return target


def imported_versions(doc: dict, framework: str) -> dict[str, str]:
    return {k.lower().replace("_", "-"): v for k, v in diff_mod.packages(doc, framework).items()}


def check_imported(release: Release, doc: dict, framework: str) -> str | None:
    """Why the run is not of this release (it imported another version of a pinned package), or None."""
    seen = imported_versions(doc, framework)
    wrong = [f"{name} {seen.get(name, 'not recorded')} (asked {version})" for name, version in release.pins
             if name in seen and seen[name] != version]
    return f"the run imported {', '.join(wrong)}" if wrong else None


def run_release(release: Release, target: Path, framework: str, request: RunRequest, log: Callable[[str], None]) -> Path:
    """The release's results file: `request` run in a fresh process whose path starts with the release's folder (its
    workers inherit that path). A complete results file already there is kept (the history resumes)."""
    out = request.out
    results = out / "results.json"
    if results.exists():
        doc = results_io.read(results)
        if doc.get("complete"):
            log(f"history: {release.label}: kept {results} ({len(doc['records'])} records)")
            return results
    log(f"history: {release.label}: the corpus through {framework} into {out}")
    ended = fresh.call(_release_run, (str(target), request), quiet=True)
    if ended.interrupted:
        raise KeyboardInterrupt
    code = ended.exit
    if code is None or code > 1 or not results.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing to see: an empty folder would read as a release that ran
            raise HistoryError(f"the run of {release.label} ended with exit {code} and wrote nothing")
        raise HistoryError(f"the run of {release.label} ended with exit {code}; see {out}")
    doc = results_io.read(results)
    wrong = check_imported(release, doc, framework)
    if wrong:
        raise HistoryError(f"{release.label}: {wrong}: the release's folder did not shadow the environment's")
    return results


@dataclass
class Pair:
    """One upgrade: what `diff` lists and what the gate says, forward and back."""

    before: str
    after: str
    moves: dict[str, int] = field(default_factory=dict)  # diff's moves by kind
    answers: list[str] = field(default_factory=list)  # the records whose answer or status changed
    gate_upgrade: list[str] = field(default_factory=list)  # the regressions the upgrade's gate names
    gate_downgrade: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        up = "fails" if self.gate_upgrade else "passes"
        down = "fails" if self.gate_downgrade else "passes"
        return f"upgrade {up}, downgrade {down}"


def compare(before: dict, after: dict, labels: tuple[str, str]) -> Pair:
    """diff and the gate on one consecutive pair, both ways."""
    moves = diff_mod.diff(before, after)
    pair = Pair(*labels, moves=dict(Counter(m.kind.value for m in moves)),
                answers=sorted({m.record for m in moves if m.kind in (MoveKind.ANSWER, MoveKind.STATUS, MoveKind.BEHAVIOUR, MoveKind.NONFINITE)}))
    for doc_a, doc_b, into in ((before, after, pair.gate_upgrade), (after, before, pair.gate_downgrade)):
        report = gate_mod.GateReport()
        gate_mod.compare_records(doc_a, doc_b, report)
        into.extend(map(str, report.regressions))
    return pair


def render(framework: str, pairs: list[Pair]) -> str:
    lines = [f"# Release history: {framework}", "",
             "| before | after | records whose answer or verdict changed | diff's moves | gate |", "| --- | --- | --- | --- | --- |"]
    for p in pairs:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(p.moves.items())) or "none"
        lines.append(f"| {p.before} | {p.after} | {len(p.answers)} | {kinds} | {p.verdict} |")
    for p in pairs:
        lines += ["", f"## {p.before} -> {p.after}", "", f"Gate: {p.verdict}."]
        lines += [f"- changed: `{r}`" for r in p.answers[:40]]
        if len(p.answers) > 40:
            lines.append(f"- ... and {len(p.answers) - 40} more (`conformance diff` on the two results files lists them all)")
        lines += [f"- upgrade gate: {r}" for r in p.gate_upgrade[:10]]
        lines += [f"- downgrade gate: {r}" for r in p.gate_downgrade[:10]]
    return "\n".join(lines) + "\n"


def _release_run(target: str, request: RunRequest) -> int:
    """One release's run, in its own process: the release's folder first on the path, before any framework is imported
    here or in the workers this process spawns (they start from its path)."""
    sys.path.insert(0, target)  # this process, and the workers it spawns (they start from its path)
    # any other process a framework starts (a compiler's worker pool) finds the release too
    os.environ["PYTHONPATH"] = os.pathsep.join([target, *filter(None, [os.environ.get("PYTHONPATH")])])
    return run_as_command(request)


def history(framework: str, releases: list[Release], out: Path, cache: Path, request: RunRequest,
            log: Callable[[str], None]) -> list[Pair]:
    """Install and run each release in order, then compare each consecutive pair; writes OUT/<release>/results.json
    per release, OUT/history.md and OUT/history.json."""
    if len(releases) < 2:
        raise HistoryError("a history needs at least two releases (--release, in upgrade order)")
    labels = [r.label for r in releases]
    if len(set(labels)) != len(labels):
        raise HistoryError("a release is named twice")
    docs = []
    for release in releases:
        target = install(release, cache, log)
        docs.append(results_io.read(run_release(release, target, framework, replace(request, out=out / release.label), log)))
    pairs = [compare(a, b, (ra.label, rb.label)) for a, b, ra, rb in zip(docs, docs[1:], releases, releases[1:])]
    results_io.write_text(out / "history.md", render(framework, pairs))
    results_io.write_text(out / "history.json", json.dumps({"framework": framework, "releases": labels,
                                                            "pairs": [asdict(p) | {"verdict": p.verdict} for p in pairs]}, indent=1))
    return pairs
