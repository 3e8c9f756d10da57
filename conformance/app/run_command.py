"""`conformance run` once its arguments are parsed: the corpus run into its folder, then what a person needs to read
(the counts, stale entries, the first fails with the command that re-runs each) and the exit code. The GPU job and
`conformance timing --measure` run the corpus through here too."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

from ..corpus.cases import CaseFileError
from ..judge.known import RegistryError
from ..model.names import STATUSES
from ..model.record import message as record_message
from ..model.record import unexplained
from ..report import pages, summary
from ..run import repro
from ..run.folder import RunRefused, RunRequest, default_compile_cache, run_into
from ..run.pool import Outcome
from . import ci_output
from .progress import Progress


def run_and_say(request: RunRequest, include_naive: bool = False, junit: Path | None = None, quiet: bool = False) -> int:
    """Run the request into its folder with the progress display, then say the verdict; the exit code (3 incomplete,
    1 an unexplained fail, else 0). `junit`: also write JUnit XML there; `quiet`: no progress and no verdict lines,
    only the one machine-readable line (ci_output). Raises run.folder.RunRefused and the corpus's and registry's
    bad-input errors."""
    doc, outcome = run_into(request, pages.write, (lambda msg: None) if quiet else Progress())
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        code = say_verdict(doc, outcome, request.out, include_naive)
    summary_md = request.out / "summary.md"
    ci_output.emit(doc, code, "run", junit, include_naive, summary_md.read_text(encoding="utf-8") if summary_md.is_file() else None)
    return code


def run_as_command(request: RunRequest, include_naive: bool = False) -> int:
    """run_and_say with its bad input said in one line and exit 2, as on the command line: the body of a run in a
    process of its own (timing --measure, the GPU job, a release of the history)."""
    try:
        return run_and_say(request, include_naive)
    except (RunRefused, CaseFileError, RegistryError) as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return 2


def say_verdict(doc: dict, outcome: Outcome, out: Path, include_naive: bool = False) -> int:
    """What a person needs after a run: the counts, stale entries, the first fails each with the command that re-runs
    it, where everything was written, and the exit code (3 for an incomplete run, 1 for a fail, else 0). The naive
    formulas are expected to break (that is what they are in the report for): their fails are counted, and counted in
    the exit status only with `include_naive`, as the gate does."""
    records = doc["records"]
    counts = summary.status_counts(records)
    print(f"\n{len(records)} records in {doc.get('wall_seconds', '?')}s: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    for e in doc["stale_known"]:
        print(f"stale known divergence: {e['id']}{' (' + e['file'] + ')' if e.get('file') else ''}: {e['why']} ({e['link']})")
    failed = [r for r in records if unexplained(r)]
    naive = sum(bool(r.naive) for r in failed)
    bad = failed if include_naive else [r for r in failed if not r.naive]
    for r in bad[:10]:
        print(f"  {r.status.upper()} {r.case} {r.framework} {r.impl} {r.quantity} {r.dtype} {r.mode}: "
              f"{record_message(r)}"[:220])
        cache = ((doc["environment"].get("frameworks") or {}).get(r.framework) or {}).get("compile_cache")
        print(f"    re-run: {repro.command(r, cache if cache and Path(cache) != default_compile_cache() else None)}")
    if len(bad) > 10:
        print(f"  ... {len(bad) - 10} more in {out / 'summary.md'}")
    print(f"wrote {out / 'results.json'} and {out / 'summary.md'}")
    replaced: dict[str, int] = {}
    for shard in (doc.get("timing") or {}).values():
        if shard.get("cache_replaced"):
            replaced[shard["framework"]] = replaced.get(shard["framework"], 0) + shard["cache_replaced"]
    for fw, n in replaced.items():
        print(f"compile cache: {fw}: replaced {n} damaged cache file(s) and compiled those programs again")
    if naive:
        print(f"{naive} naive-formula record(s) failed (the textbook formulas, expected to break): "
              + ("counted in the exit status (--include-naive)" if include_naive else "not counted in the exit status (--include-naive counts them)"))
    if outcome.environment:
        print(f"conformance: environment: {outcome.environment}; the run stopped, results.json holds what finished (incomplete)",
              file=sys.stderr)
        return 4
    if not outcome.complete:
        lost = "; ".join(f"{x['shard']}: {x['why']}" for x in outcome.lost) or "nothing finished"
        print(f"INCOMPLETE run ({'interrupted; ' if outcome.interrupted else ''}lost {lost}): results.json holds what finished "
              "and says what is missing", file=sys.stderr)
        return 3
    return 1 if bad else 0
