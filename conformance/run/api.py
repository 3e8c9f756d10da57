"""The library behind `conformance run`: a corpus through the frameworks, judged, with the registry applied.

`run_corpus` (and `rejudge`, the registry over a finished run) is what `run.folder` and the command line call: they parse
arguments before and print after. `judge_case` (one case in this process, before the registry) is what the corpus
tests, `conformance fuzz` and the repro snippets call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..adapters import registered
from ..corpus import bundled
from ..corpus import conditions as case_conditions
from ..corpus.cases import Case, load, materialize
from ..corpus.inputs import build
from ..judge import known as known_registry
from ..judge.compare import judge
from ..model.record import OPTIONAL, Record, Verdict, unjudged
from ..model.selection import matches
from . import results as results_io
from . import shard_costs
from .config import WorkerConfig
from .events import Event, Finished, Info, Planned, RecordMade
from .pool import DEFAULT_TIMEOUT_S, Outcome, run, run_inline
from .runner import Selection, judge_case, references, units

__all__ = ["Corpus", "SelectionError", "judge_case", "prepare", "rejudge", "run_corpus"]


class SelectionError(ValueError):
    """A selection that would run nothing it names (a --case or --impl pattern that matches nothing)."""


def check_cases(cases: list[Case], patterns: tuple[str, ...]) -> None:
    """Every case glob must match a case of the corpus being run: a typo would otherwise run nothing and pass."""
    ids = [c.full_id for c in cases]
    for pattern in patterns:
        if not any(matches(i, (pattern,)) for i in ids):
            suites = sorted({i.split("/")[0] for i in ids})
            raise SelectionError(f"--case {pattern!r} matches no case; suites: {', '.join(suites)} (e.g. --case '{suites[0]}/*')")


def _check_impls(patterns: tuple[str, ...], info: dict) -> None:
    offered = sorted({name for i in info.values() if isinstance(i, dict) for entry in i.get("implementations", []) for name in entry[1:]})
    for pattern in patterns:
        if offered and not any(matches(n, (pattern,)) for n in offered):
            raise SelectionError(f"--impl {pattern!r} matches no implementation of the frameworks run; known: {', '.join(offered)}")


def _entry_summary(e: known_registry.Entry, tally: known_registry.Tally) -> dict:
    """A registry entry as results.json lists it: with its version ranges, which the gate reads (an entry scoped from
    a release on is one written for a change in that release)."""
    out = {"id": e.id, "kind": e.kind, "reason": e.reason, "link": e.link, "records": tally.matched, "beyond": tally.beyond}
    if e.versions:
        out["versions"] = {package: str(spec) for package, spec in e.versions.items()}
    if e.varies:
        out["varies"] = True
    return out


def _registry_outcome(records: list[Record], entries: list, tallies: known_registry.Tallies, info: dict, selection: dict,
                      corpus: set[str], selected: set[str] | None = None) -> tuple[list[dict], list[dict]]:
    """(stale entries, matched entries) for results.json, once every record went through the registry.

    `selected` (the case ids of the whole selection) marks a machine's share of a split run: whether an entry's
    divergence is gone can only be said once every machine's records are merged (report.html.merge), so every entry
    is listed with its counts and whether the whole selection covers it, and only a renamed implementation, which
    any share shows, is stale here."""
    ran_cases = {r.case for r in records}
    tally = {e.id: tallies.get(e.id, known_registry.Tally()) for e in entries}
    offered = {n: {name for entry in i.get("implementations", []) for name in entry[1:]}  # labels and stable ids
               for n, i in info.items() if isinstance(i, dict) and i.get("implementations")}
    if selected is None:
        selection = {**selection, "frameworks": sorted(offered)}  # the frameworks that ran, not the ones asked for
        stale = known_registry.stale(entries, tallies, selection, ran_cases, corpus, offered)
        matched = [_entry_summary(e, tally[e.id]) for e in entries if tally[e.id].matched or tally[e.id].beyond]
        return stale, matched
    stale = [e for e in known_registry.stale(entries, tallies, selection, set(), corpus, offered) if "renamed" in e["why"]]
    every = [_entry_summary(e, tally[e.id]) | {"exercised": tally[e.id].exercised, "covered": e.covered_by(selection, selected, corpus),
                                               "file": e.origin}
             for e in entries]
    return stale, every


@dataclass
class Corpus:
    """Case files checked and loaded, with the registry that will judge them: all bad input is found here, before
    anything runs or is written."""
    paths: list[Path]
    cases: list[Case]
    ids: set[str]  # the case ids registry patterns may name: these cases' and the bundled corpus's
    entries: list


def bundled_ids() -> set[str]:
    """The bundled corpus's case ids: a registry entry may name any of them whatever a run selected."""
    return {c.full_id for c in load([bundled.cases_dir()])}


def prepare(case_paths: list[Path] | None, sel: Selection, known: Path | list[Path] | None = None) -> Corpus:
    """Load and check the case files (default: the bundled corpus) and the registry files (default: the bundled
    registry). Raises CaseFileError, RegistryError or SelectionError (bad input: exit 2)."""
    case_paths = list(case_paths or [bundled.cases_dir()])
    cases = load(case_paths)
    check_cases(cases, sel.cases)
    only_bundled = [Path(p) for p in case_paths] == [bundled.cases_dir()]  # then `cases` are the bundled corpus already
    ids = {c.full_id for c in cases} | (set() if only_bundled else bundled_ids())
    return Corpus(list(case_paths), cases, ids, known_registry.load(known, registered(), ids))


def run_corpus(corpus: Corpus, sel: Selection, jobs: int = 2, timeout: float = DEFAULT_TIMEOUT_S,
               absent: dict[str, str] | None = None, on_event: Callable[[Event], None] = lambda msg: None,
               machine: tuple[int, int] | None = None, inline: bool = False, config: WorkerConfig | None = None) -> tuple[dict, Outcome]:
    """Run a prepared corpus through the selected frameworks (`jobs` worker processes, each framework call under the
    watchdog and a crash isolated to its call; `inline`: in this process instead, for a function object that cannot
    be sent to a worker, with neither), every
    record through the registry as it arrives (so `on_event` sees final statuses), and return the results document
    (not yet written) with the run's Outcome. `absent`: frameworks left out because they are not installed, and why.
    `on_event` first gets ("planned", units of work over every framework and mode), then the workers' messages.
    Raises FrameworkBroken for a named framework that cannot be loaded, SelectionError for an --impl that matches
    nothing that ran. `machine` (K, N): run only machine K's share of the run split across N machines; `conformance
    report` merges the N results files into one run, complete when every share is there. `config`: how every worker
    is set up (run/config.py; None: the defaults); an inline run applies it in this process for the run (None: this
    process as it is)."""
    case_paths, cases, entries = corpus.paths, corpus.cases, corpus.entries
    absent = absent or {}
    on_event(Planned(units(cases, sel) * len(sel.frameworks) * len(sel.modes)))
    for name, why in absent.items():
        on_event(Info(name, {"absent": why}))
    started, packages = time.monotonic(), {}
    conditions = {c.full_id: case_conditions.of(c) for c in cases}  # what `when:` entries ask of a record's case
    tallies, records = known_registry.Tallies(), []

    def judged(msg: Event) -> None:
        """Each record through the registry as it arrives, so the progress counts final statuses."""
        if isinstance(msg, Info) and "packages" in msg.info:
            packages[msg.framework] = msg.info["packages"]
        elif isinstance(msg, RecordMade):
            record, touch = known_registry.judge(msg.record, entries, packages.get(msg.record.framework), conditions.get(msg.record.case))
            tallies.add(touch)
            records.append(record)
            msg = RecordMade(record)
        on_event(msg)

    if inline and not machine:
        with config.applied() if config else contextlib.nullcontext():
            outcome = run_inline(case_paths, sel, judged)
    else:
        outcome = run(case_paths, sel, jobs, judged, timeout, cases, machine, config or WorkerConfig())
    on_event(Finished())
    info = outcome.info
    assert len(records) == len(outcome.records), "every record the pool kept went through the registry"
    _check_impls(sel.impls, info)
    info.update({name: {"absent": why} for name, why in absent.items()})
    records = [r.but(framework_version=(info.get(r.framework) or {}).get("version")) for r in records]
    selected = {c.full_id for c in cases if sel.wants_case(c.full_id)} if machine else None
    stale, matched = _registry_outcome(records, entries, tallies, info, sel.to_json(), corpus.ids, selected)
    selection = {**sel.to_json(), "case_files": [str(Path(p).resolve()) for p in case_paths], "suites": sorted({c.suite for c in cases})}
    if machine:
        selection["machine"] = {"index": machine[0], "count": machine[1], "plan": outcome.plan_id, "shards": outcome.shards}
    extra = {"stale_known": stale, "known_divergences": matched, "wall_seconds": round(time.monotonic() - started, 1),
             "selection": selection,
             "complete": outcome.complete, "timing": outcome.timing}
    if not outcome.complete:
        extra["incomplete"] = {"interrupted": outcome.interrupted, "lost": outcome.lost,
                               **({"environment": outcome.environment} if outcome.environment else {})}
    doc = results_io.document(records, {**info, "_interrupted": outcome.interrupted}, extra)
    _remember_costs(doc, outcome, sel, cases, whole=outcome.complete and not machine)
    return doc, outcome


def _remember_costs(doc: dict, outcome: Outcome, sel: Selection, cases: list[Case], whole: bool) -> None:
    """What each part cost, kept in the compile cache: the next run here plans from it, per unit as the planner counts
    them where every shard of the selection ran here (`whole`)."""
    shard_costs.remember(sel.compile_cache, doc["environment"]["cpu"], outcome.timing,
                         (lambda dtype: units(cases, replace(sel, dtypes=(dtype,)))) if whole else None, sel.naive)


def _paths(known: Path | list[Path] | None) -> list[Path]:
    return [bundled.registry_file()] if known is None else [known] if isinstance(known, (str, Path)) else list(known)


def rejudge(doc: dict, known: Path | list[Path] | None = None, oracle: bool = False) -> dict:
    """The registry at `known` over a finished run's document, without running anything: for a run made where it cannot
    be made again (a lent GPU), or a registry that learned a divergence since. The oracle's judgement is kept, except
    with `oracle`: then every record whose output the file holds (small outputs) is judged again by today's oracle
    first, from its stored answer (an oracle that learned a definition since; the other records keep theirs)."""
    records, again = _judge_again(doc["records"]) if oracle else (doc["records"], None)
    corpus = bundled_ids() | {r.case for r in records}
    entries = known_registry.load(known, registered(), corpus)
    info = {k: v for k, v in doc.get("environment", {}).get("frameworks", {}).items() if isinstance(v, dict)}
    conditions = {case_id: case_conditions.of(c) for case_id, c in _cases_of(records).items()}
    records, tallies = known_registry.apply(map(unjudged, records), entries, {n: i.get("packages") or {} for n, i in info.items()}, conditions)
    stale, matched = _registry_outcome(records, entries, tallies, info, doc.get("selection") or {}, corpus)
    doc.update(records=records, stale_known=stale, known_divergences=matched,
               rejudged={"registry": [str(Path(p).resolve()) for p in _paths(known)], "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         **({"oracle_records": again} if oracle else {})})
    return doc


def _cases_of(records: list[Record]) -> dict[str, Case]:
    """The cases a run's records name, by id: the bundled corpus and the run's own case files where they still exist."""
    bundled_dir = bundled.cases_dir().resolve()
    # a run's own case files, beside the bundled corpus (whose files the records of a bundled run name too)
    named = {Path(r.case_file) for r in records if r.case_file}  # each file once: a run's records name a few files thousands of times
    own = {p.resolve() for p in named if p.is_file() and not _bundled_copy(p, bundled_dir)}
    return {c.full_id: c for c in load([bundled_dir, *sorted(own)])}


def _bundled_copy(path: Path, bundled_dir: Path) -> bool:
    """A bundled case file, or the same file of another copy of the package (a results file made from another
    checkout, or from the wheel): the bundled corpus has it already, and loading both would name each suite twice."""
    twin = bundled_dir / path.name
    return path.resolve().parent == bundled_dir or (twin.is_file() and twin.read_bytes() == path.read_bytes())


def _judge_again(records: list[Record]) -> tuple[list[Record], int]:
    """Each record with a stored output judged again, by today's oracle on its case (bundled, or its case file where
    that still exists): the records, and how many were judged again."""
    cases = _cases_of(records)
    out, count, built, refs = [], 0, {}, {}  # a (case, op, dtype)'s inputs and references serve every implementation and mode
    for r in records:
        case = cases.get(r.case)
        if case is None or r.output is None or not r.status.ran or r.error or r.overwritten:
            out.append(r)
            continue
        call = (r.case, r.op, r.dtype)
        inputs = built[call] if call in built else built.setdefault(call, build(case, r.op, r.dtype))
        if (*call, r.quantity) not in refs:
            refs[(*call, r.quantity)] = references(case, inputs, (r.quantity,)).get(r.quantity)
        ref = refs[(*call, r.quantity)]
        values = np.asarray(materialize(r.output), dtype=np.float64)
        if ref is not None and values.size == ref.value.size:
            values = values.reshape(ref.value.shape)  # JSON keeps no shape for an empty array ([] for a [0, C] output)
        v = judge(values, None, ref, r.quantity, r.dtype, inputs.classes, case.invalid, case.expect, accumulates_in=r.accumulates_in)
        # every figure and flag of the new judgement, as the runner writes them (runner.make_record); the old
        # judgement's flags go with it
        new = {f.name: getattr(v, f.name) for f in fields(Verdict) if getattr(v, f.name) is not None or f.name not in OPTIONAL}
        out.append(unjudged(r).but(**({f.name: None for f in fields(Verdict) if f.name in OPTIONAL} | new)))
        count += 1
    return out, count
