"""`conformance gate`: compare a current run with a baseline and say whether anything regressed.

The verdict is complete or it is a FAIL. The gate fails when:
  incomplete  the current run was interrupted, lost a worker (crash, hang, time-out), or is missing records the
              baseline has, a framework the baseline ran included, unless the current run's recorded selection
              explains the gap (`--frameworks X` is then compared on X alone, and the gate says so);
  status      a record got worse: pass -> anything else (fail, error, known, unsupported, skip), or anything ->
              fail/error (a new fail/error record counts too);
  behaviour   a record that is known or non-finite in either run (where ULPs of a NaN mean nothing) changed its
              behaviour (finite / nonfinite / all_nan / error) for the worse, or gained NaN/inf elements;
  answer      a record with the same status in both runs whose answer changed by behaviour or beyond its tolerance
              (diff.answer_move: never by bits), where the verdict does not measure it: an invalid input's, a registered
              divergence's, an error's or a non-finite answer; unless the current record is explained by a registry
              entry other than the one that explained the baseline's and scoped from a release on (an entry
              written for the change). Between two CPUs, answers and pass -> known moves are listed as notes, not
              gated: another CPU sums in another order and flushes subnormals on other vector paths, which no
              change under test did (the status rule still gates anything -> fail/error, the accuracy rule its envelope);
  property    a record that was batch-invariant or deterministic (bitwise, or within tolerance: run/properties.py)
              and is no longer, to that level; between two CPUs it is listed, not gated (which vector path a kernel
              takes for each batch size is the CPU's);
  accuracy    a finite, passing record whose worst error, as a share of its tolerance (tol_ratio), grew by more
              than the envelope of the environment change between the runs (ENVELOPES), so far only for the
              fused implementations (the naive formulas are reported, and gated with --include-naive);
  stale       a known-divergence entry that the current run shows to be out of date and whose records ran;
  speed       see speed/gate.py.

The accuracy envelopes (ENVELOPES) are sized from measured noise, given with its figures in the README ("The gate
in CI", "Accuracy envelopes"); tests/test_gate_upgrade.py replays the committed upgrade data:
  same environment   same CPU (model, vector extensions, cores) and package versions: 2x and 5% of the tolerance
                     (re-runs are bit-identical except where a cold and a warm compile pick other kernels);
  version change     same CPU, other package versions: 2x and a quarter of the tolerance;
  CPU change         other CPU, same versions: 2x and half the tolerance. Across CPUs a record must also stay inside
                     its tolerance (the status rule).
A 40x loss of accuracy (e.g. 2% -> 80% of the tolerance) fails in every environment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..model.record import Record
from ..model.selection import left_out_by
from ..model.status import Status
from ..report import diff as diff_mod
from ..report.diff import Attribution, Move, MoveKind
from ..run import output
from ..run import results as results_io
from ..run.environment import kernel_fingerprint
from ..speed.documents import BENCH_FILE
from . import speed as speed_gate
from .outcome import GateReport, Regression, RegressionKind, render

__all__ = ["BENCH_FILE", "GateReport", "gate", "render", "compare_records", "decide", "ENVELOPES", "RULES"]
INCOMPLETE, STATUS, BEHAVIOUR, ANSWER, ACCURACY, STALE = (RegressionKind.INCOMPLETE, RegressionKind.STATUS, RegressionKind.BEHAVIOUR,
                                                          RegressionKind.ANSWER, RegressionKind.ACCURACY, RegressionKind.STALE)


@dataclass(frozen=True)
class Envelope:
    factor: float  # the error may grow by this factor ...
    budget: float  # ... or by this share of the tolerance, whichever allows more


ENVELOPES = {"same environment": Envelope(2.0, 0.05), "version change": Envelope(2.0, 0.25), "CPU change": Envelope(2.0, 0.5)}


def envelope_for(attribution: Attribution) -> tuple[str, Envelope]:
    """The widest envelope the environment change calls for (a CPU change outweighs a version change)."""
    if attribution.cpu_changed:
        return "CPU change", ENVELOPES["CPU change"]
    if attribution.version_changed:
        return "version change", ENVELOPES["version change"]
    return "same environment", ENVELOPES["same environment"]


def _completeness(base: dict[tuple, Record], cur: dict[tuple, Record], cur_doc: dict, report: GateReport) -> None:
    if cur_doc.get("complete") is False or cur_doc.get("interrupted") or cur_doc.get("incomplete"):
        lost = (cur_doc.get("incomplete") or {}).get("lost") or []
        what = "; ".join(f"{x.get('shard')}: {x.get('why')}" for x in lost[:5] if isinstance(x, dict)) or "interrupted"
        report.fail(INCOMPLETE, f"the current run did not finish ({what}); its verdict would be partial")
    env = (cur_doc.get("environment") or {}).get("frameworks") or {}
    for fw, info in sorted(env.items()):
        if isinstance(info, dict) and info.get("crash"):
            report.fail(INCOMPLETE, f"{fw} crashed in the current run: {str(info['crash']).strip().splitlines()[-1]}")
    selection = cur_doc.get("selection")
    machine = (selection or {}).get("machine")
    if isinstance(machine, dict):  # one machine's share of a split run says nothing about the others' records
        report.fail(INCOMPLETE, f"the current file is share {machine.get('index')}/{machine.get('count')} of a run split "
                                  "across machines; merge every share (conformance report FILES... --out DIR) and gate DIR/merged.json")
        return
    suites = set(selection["suites"]) if selection and selection.get("suites") else None
    missing: dict[str, list[Record]] = {}
    explained: Counter = Counter()
    for k, b in base.items():
        if k in cur:
            continue
        why = left_out_by(selection, b, suites)
        if why:
            explained[why] += 1
        else:
            missing.setdefault(b.framework, []).append(b)
    for fw, recs in sorted(missing.items()):
        info = env.get(fw) if isinstance(env.get(fw), dict) else None
        cause = f"absent ({info['absent']})" if info and info.get("absent") else ("not in the current run" if info is None else "ran")
        report.fail(INCOMPLETE, f"{len(recs)} baseline record(s) of {fw} missing from the current run ({fw} {cause}); "
                                  f"e.g. {diff_mod.describe(recs[0])}")
    if explained:
        scope = ", ".join(f"{why}: {n} baseline records not compared" for why, n in explained.most_common())
        report.notes.append(f"narrowed run, compared within its selection ({scope})")


@dataclass(frozen=True)
class Decided:
    """What a rule made of one move: a regression, a note, an improvement, or (all None) nothing to say."""
    regression: Regression | None = None
    note: str | None = None
    improvement: str | None = None


NOTHING = Decided()
_AS_REGRESSION = {MoveKind.STATUS: STATUS, MoveKind.NEW: STATUS, MoveKind.BEHAVIOUR: BEHAVIOUR, MoveKind.NONFINITE: BEHAVIOUR,
                  MoveKind.ANSWER: ANSWER, MoveKind.ACCURACY: ACCURACY, MoveKind.PROPERTY: RegressionKind.PROPERTY}


def _text(move: Move) -> str:
    return f"{move.record}: {move.before} -> {move.after}"


def _gated(move: Move, include_naive: bool) -> bool:
    """The naive formulas' moves are reported, and gated only with --include-naive."""
    return include_naive or not move.naive


# The rules over one move, in order: the first that speaks for a move decides it (None: not this rule's move).
# Adding a rule is one function here, its place in RULES, and its test.

def missing_is_judged_with_the_selection(move: Move, include_naive: bool) -> Decided | None:
    """A baseline record the current run lacks is judged with the run's selection (_completeness)."""
    return NOTHING if move.kind is MoveKind.MISSING else None


def accuracy_within_its_envelope(move: Move, include_naive: bool) -> Decided | None:
    """A passing record's error may grow by the envelope of the environment change (ENVELOPES), not beyond."""
    if move.kind is not MoveKind.ACCURACY:
        return None
    text = _text(move)
    if not move.worse:
        return Decided(improvement=f"accuracy: {text} of its tolerance")
    name, env = envelope_for(move.attribution)
    grew = move.after_ratio - move.before_ratio
    if grew > env.budget and move.after_ratio > env.factor * move.before_ratio and _gated(move, include_naive):
        return Decided(Regression(ACCURACY, f"{text} of its tolerance ({move.detail}; beyond the {name} envelope "
                                            f"{env.factor:g}x and +{env.budget:.0%}; {move.attribution})"))
    return NOTHING


def answers_that_vary_from_run_to_run(move: Move, include_naive: bool) -> Decided | None:
    """A record that a registry entry marked `varies` explains (a kernel that reads memory it does not own answers
    differently each time: a NaN that passes one run, a finite value the entry explains the next, or a killed process):
    its moves are listed, not gated, while neither run is unexplained (diff.record_moves); a fail or an error still
    gates."""
    if not move.varies or move.kind in (MoveKind.MISSING, MoveKind.NEW):
        return None
    return Decided(note=f"{move.kind}: {_text(move)}: varies from run to run (registry entry {move.varies})" if move.worse else None)


def answers_differ_across_cpus(move: Move, include_naive: bool) -> Decided | None:
    """Another CPU sums in another order and flushes subnormals on other vector paths: an answer that moved with the
    CPU, its verdict unchanged, is not the change under test's doing (the status rule still gates anything -> fail)."""
    if move.kind is not MoveKind.ANSWER or not move.worse or not move.attribution.cpu_changed:
        return None
    return Decided(note=f"answer: {_text(move)}: differs on this CPU ({move.attribution}); not gated across CPUs")


def properties_differ_across_cpus(move: Move, include_naive: bool) -> Decided | None:
    """Batch invariance rests on which vector path a kernel takes for each batch size, and that is the CPU's: a
    property lost on another CPU is listed, not gated (the same CPU gates it: worse_is_a_regression)."""
    if move.kind is not MoveKind.PROPERTY or not move.worse or not move.attribution.cpu_changed:
        return None
    return Decided(note=f"property: {_text(move)}: differs on this CPU ({move.attribution}); not gated across CPUs")


def answer_accepted_by_a_release_entry(move: Move, include_naive: bool) -> Decided | None:
    """A registry entry scoped from a release on that explains the new answer (and not the old) was written for it."""
    if move.kind is not MoveKind.ANSWER or not move.worse or not move.accepted_by:
        return None
    return Decided(note=f"answer: {_text(move)}: accepted by registry entry {move.accepted_by}, which explains the new answer")


def answer_changed(move: Move, include_naive: bool) -> Decided | None:
    """An answer the verdict does not measure (an invalid input's, a registered divergence's, an error's) changed."""
    if move.kind is not MoveKind.ANSWER:
        return None
    if not move.worse or not _gated(move, include_naive):
        return NOTHING  # an accurate answer that moved within the accuracy rule's reach: diff lists it
    return Decided(Regression(ANSWER, f"{_text(move)} (an invalid input's, a registered divergence's or an error's answer "
                                      f"changed with its verdict unchanged; {move.attribution})"))


def pass_to_known_across_cpus(move: Move, include_naive: bool) -> Decided | None:
    """A pass that the registry explains on another CPU (its error crossed the tolerance there) is that CPU's."""
    if move.kind is MoveKind.STATUS and move.attribution.cpu_changed and move.statuses == (Status.PASS, Status.KNOWN):
        return Decided(note=f"status: {_text(move)}: explained by the registry on this CPU ({move.attribution}); not gated across CPUs")
    return None


def worse_is_a_regression(move: Move, include_naive: bool) -> Decided | None:
    """A record that got worse: any status move is gated, a naive formula's other moves only with --include-naive."""
    if not move.worse or not (_gated(move, include_naive) or move.kind in (MoveKind.STATUS, MoveKind.NEW)):
        return None
    detail = f": {move.detail}" if move.detail else ""
    return Decided(Regression(_AS_REGRESSION[move.kind], f"{_text(move)}{detail} ({move.attribution})"))


def better_is_an_improvement(move: Move, include_naive: bool) -> Decided | None:
    if move.worse or move.kind not in (MoveKind.STATUS, MoveKind.BEHAVIOUR, MoveKind.NONFINITE, MoveKind.PROPERTY):
        return None
    return Decided(improvement=f"{move.kind}: {_text(move)}")


RULES = (missing_is_judged_with_the_selection, answers_that_vary_from_run_to_run, accuracy_within_its_envelope, answers_differ_across_cpus,
         properties_differ_across_cpus, answer_accepted_by_a_release_entry, answer_changed, pass_to_known_across_cpus, worse_is_a_regression,
         better_is_an_improvement)


def decide(move: Move, include_naive: bool = False) -> Decided:
    """The first rule that speaks for the move decides it."""
    return next((d for rule in RULES if (d := rule(move, include_naive)) is not None), NOTHING)


def compare_records(baseline: dict, current: dict, report: GateReport, include_naive: bool = False) -> None:
    ids = results_io.by_id(baseline, current)
    base, cur = diff_mod.index(baseline, "baseline", ids), diff_mod.index(current, "current", ids)
    report.compared = len(set(base) & set(cur))
    for fw in sorted({k[4] for k in base} | {k[4] for k in cur}):
        changes = diff_mod.version_changes(baseline, current, fw)
        if changes:
            report.environment.append(f"{fw}: {', '.join(changes)}")
    b_cpu, c_cpu = kernel_fingerprint(baseline), kernel_fingerprint(current)
    report.environment.append(f"CPU: {b_cpu or 'unrecorded'}" + ("" if b_cpu == c_cpu and b_cpu else f" -> {c_cpu or 'unrecorded'}"))
    for fw in sorted({k[4] for k in base}):
        own = kernel_fingerprint(baseline, fw)
        if own != b_cpu:  # a baseline assembled from two machines says whose records came from which
            report.environment.append(f"CPU of {fw}'s baseline records: {own or 'unrecorded'}")
    _completeness(base, cur, current, report)
    naive_worse = 0
    for move in diff_mod.diff(baseline, current):
        decided = decide(move, include_naive)
        if decided.regression:
            report.regressions.append(decided.regression)
        if decided.note:
            report.notes.append(decided.note)
        if decided.improvement:
            report.improvements.append(decided.improvement)
        naive_worse += move.naive and move.worse and decided.regression is None and move.kind is not MoveKind.MISSING
    if naive_worse:
        report.notes.append(f"{naive_worse} move(s) of the naive formulas for the worse, reported, not gated (--include-naive gates them; "
                            "`conformance diff` lists them)")
    for entry in current.get("stale_known", []):
        if entry.get("exercised", 1):
            report.fail(STALE, f"known divergence {entry['id']}: {entry.get('why', 'matched nothing')} ({entry['link']}); "
                                      "remove or update it")
        else:
            report.notes.append(f"known divergence {entry['id']} is out of date but none of its records ran: {entry.get('why')}")


def gate(baseline_path: Path, current_path: Path, confirm: speed_gate.Confirm | None = None, include_naive: bool = False) -> GateReport:
    baseline, current = results_io.read(baseline_path), results_io.read(current_path)
    report = GateReport()
    if Path(baseline_path).resolve() == Path(current_path).resolve():
        report.notes.append(f"WARNING: the baseline and the current run are the same file ({current_path}): nothing is compared")
    elif baseline.get("created") == current.get("created") and len(baseline["records"]) == len(current["records"]):
        report.notes.append("WARNING: the baseline and the current run look like one run (same creation time and records): "
                            "nothing is compared")
    stale = output.stale_note(Path(current_path), current)
    if stale:
        report.fail(INCOMPLETE, stale)
    compare_records(baseline, current, report, include_naive)
    b_bench, c_bench = Path(baseline_path).with_name(BENCH_FILE), Path(current_path).with_name(BENCH_FILE)
    if b_bench.exists() and c_bench.exists():
        speed_gate.compare_benchmarks(b_bench, c_bench, report, confirm)
    elif b_bench.exists() or c_bench.exists():
        report.notes.append(f"speed not compared: {BENCH_FILE} is beside only one of the two results files")
    return report
