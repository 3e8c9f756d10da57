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

from ..model.selection import left_out_by
from ..report import diff as diff_mod
from ..run import output
from ..run import results as results_io
from ..run.environment import kernel_fingerprint
from ..speed.documents import BENCH_FILE
from . import speed as speed_gate
from .outcome import GateReport, render

__all__ = ["BENCH_FILE", "GateReport", "gate", "render", "compare_records", "ENVELOPES"]


@dataclass(frozen=True)
class Envelope:
    factor: float  # the error may grow by this factor ...
    budget: float  # ... or by this share of the tolerance, whichever allows more


ENVELOPES = {"same environment": Envelope(2.0, 0.05), "version change": Envelope(2.0, 0.25), "CPU change": Envelope(2.0, 0.5)}


def envelope_for(attribution: str) -> tuple[str, Envelope]:
    """The widest envelope the environment change calls for (a CPU change outweighs a version change)."""
    for name in ("CPU change", "version change"):
        if name in attribution:
            return name, ENVELOPES[name]
    return "same environment", ENVELOPES["same environment"]


def _completeness(base: dict, cur: dict, base_doc: dict, cur_doc: dict, report: GateReport) -> None:
    if cur_doc.get("complete") is False or cur_doc.get("interrupted") or cur_doc.get("incomplete"):
        lost = (cur_doc.get("incomplete") or {}).get("lost") or []
        what = "; ".join(f"{x.get('shard')}: {x.get('why')}" for x in lost[:5] if isinstance(x, dict)) or "interrupted"
        report.regressions.append(f"incomplete: the current run did not finish ({what}); its verdict would be partial")
    env = (cur_doc.get("environment") or {}).get("frameworks") or {}
    for fw, info in sorted(env.items()):
        if isinstance(info, dict) and info.get("crash"):
            report.regressions.append(f"incomplete: {fw} crashed in the current run: {str(info['crash']).strip().splitlines()[-1]}")
    selection = cur_doc.get("selection")
    machine = (selection or {}).get("machine")
    if isinstance(machine, dict):  # one machine's share of a split run says nothing about the others' records
        report.regressions.append(f"incomplete: the current file is share {machine.get('index')}/{machine.get('count')} of a run split "
                                  "across machines; merge every share (conformance report FILES... --out DIR) and gate DIR/merged.json")
        return
    suites = set(selection["suites"]) if selection and selection.get("suites") else None
    missing: dict[str, list[dict]] = {}
    explained: Counter = Counter()
    for k, b in base.items():
        if k in cur:
            continue
        why = left_out_by(selection, b, suites)
        if why:
            explained[why] += 1
        else:
            missing.setdefault(b["framework"], []).append(b)
    for fw, recs in sorted(missing.items()):
        info = env.get(fw) if isinstance(env.get(fw), dict) else None
        cause = f"absent ({info['absent']})" if info and info.get("absent") else ("not in the current run" if info is None else "ran")
        report.regressions.append(f"incomplete: {len(recs)} baseline record(s) of {fw} missing from the current run ({fw} {cause}); "
                                  f"e.g. {diff_mod.describe(recs[0])}")
    if explained:
        scope = ", ".join(f"{why}: {n} baseline records not compared" for why, n in explained.most_common())
        report.notes.append(f"narrowed run, compared within its selection ({scope})")


def _judge(move: diff_mod.Move, report: GateReport, include_naive: bool) -> None:
    text = f"{move.record}: {move.before} -> {move.after}"
    if move.kind == "accuracy":
        name, env = envelope_for(move.attribution)
        grew = move.after_ratio - move.before_ratio
        if not move.worse:
            report.improvements.append(f"accuracy: {text} of its tolerance")
        elif grew > env.budget and move.after_ratio > env.factor * move.before_ratio and (include_naive or not move.naive):
            report.regressions.append(f"accuracy: {text} of its tolerance ({move.detail}; beyond the {name} envelope "
                                      f"{env.factor:g}x and +{env.budget:.0%}; {move.attribution})")
        return
    if move.kind in ("missing",):
        return  # judged with the run's selection in _completeness
    cpu_changed = "CPU change" in move.attribution
    if move.kind == "answer":
        if not move.worse:
            return  # an accurate answer that moved within the accuracy rule's reach: diff lists it
        if cpu_changed:  # another CPU sums in another order and flushes subnormals on other paths: not the change's doing
            report.notes.append(f"answer: {text}: differs on this CPU ({move.attribution}); not gated across CPUs")
        elif move.accepted_by:
            report.notes.append(f"answer: {text}: accepted by registry entry {move.accepted_by}, which explains the new answer")
        elif include_naive or not move.naive:
            report.regressions.append(f"answer: {text} (an invalid input's, a registered divergence's or an error's answer "
                                      f"changed with its verdict unchanged; {move.attribution})")
        return
    if cpu_changed and move.kind == "status" and (move.before, move.after) == ("pass", "known"):
        report.notes.append(f"status: {text}: explained by the registry on this CPU ({move.attribution}); not gated across CPUs")
        return
    if move.worse and (include_naive or not move.naive or move.kind in ("status", "new")):
        detail = f": {move.detail}" if move.detail else ""
        label = {"new": "status", "nonfinite": "behaviour"}.get(move.kind, move.kind)
        report.regressions.append(f"{label}: {text}{detail} ({move.attribution})")
    elif not move.worse and move.kind in ("status", "behaviour", "nonfinite"):
        report.improvements.append(f"{move.kind}: {text}")


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
    _completeness(base, cur, baseline, current, report)
    naive_worse = 0
    for move in diff_mod.diff(baseline, current):
        before = len(report.regressions)
        _judge(move, report, include_naive)
        naive_worse += move.naive and move.worse and len(report.regressions) == before and move.kind != "missing"
    if naive_worse:
        report.notes.append(f"{naive_worse} move(s) of the naive formulas for the worse, reported, not gated (--include-naive gates them; "
                            "`conformance diff` lists them)")
    for entry in current.get("stale_known", []):
        if entry.get("exercised", 1):
            report.regressions.append(f"stale: known divergence {entry['id']}: {entry.get('why', 'matched nothing')} ({entry['link']}); "
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
        report.regressions.append(f"incomplete: {stale}")
    compare_records(baseline, current, report, include_naive)
    b_bench, c_bench = Path(baseline_path).with_name(BENCH_FILE), Path(current_path).with_name(BENCH_FILE)
    if b_bench.exists() and c_bench.exists():
        speed_gate.compare_benchmarks(b_bench, c_bench, report, confirm)
    elif b_bench.exists() or c_bench.exists():
        report.notes.append(f"speed not compared: {BENCH_FILE} is beside only one of the two results files")
    return report
