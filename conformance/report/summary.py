"""The Markdown summary written beside results.json: what agreed, what did not, and why."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from ..model.names import STATUSES as COUNTED
from ..model.record import message, unexplained
from ..model.status import Status
from ..run import repro
from . import choose, cross_backend
from .findings import Findings
from .markdown import md_cell, table
from .notes import case_notes

GRADIENTS = ("grad_logits", "grad_labels", "hvp")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def status_counts(records: list[dict]) -> Counter:
    return Counter(r.status for r in records)


def overview(records: list[dict]) -> list[str]:
    """framework / implementation x op: counts per status."""
    groups: dict[tuple, Counter] = defaultdict(Counter)
    for r in records:
        groups[(r.framework, r.impl, r.op)][r.status] += 1
    rows = [[fw, impl, op, *(c.get(s, 0) for s in COUNTED)] for (fw, impl, op), c in sorted(groups.items())]
    return table(["framework", "implementation", "op", *COUNTED], rows)


def failures(records: list[dict], limit: int = 60, naive: bool = False) -> list[str]:
    """The unexplained fails and errors of the fused implementations (`naive`: of the naive formulas, which are
    expected to break and are listed apart)."""
    bad = [r for r in records if unexplained(r) and bool(r.naive) == naive]
    if not bad:
        return ["No unexplained fail or error: every divergence is either fixed or registered in known/divergences.yaml."
                if not naive else "None."]
    rows = [[r.case, r.framework, r.impl, r.quantity, r.dtype, r.mode, r.device, r.status,
             _fmt(r.max_ulp), message(r)[:140]]
            for r in bad[:limit]]
    lines = table(["case", "framework", "implementation", "quantity", "dtype", "mode", "device", "status", "max ulp", "detail"], rows)
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more in results.json.")
    return lines


def _fenced(text: str, lang: str = "") -> list[str]:
    """A fenced block that no run of backticks inside the text can close early."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + lang, text.rstrip("\n"), fence]


def reruns(records: list[dict], limit: int = 10) -> list[str]:
    """For the first unexplained fails: the command that re-runs each, and a Python snippet that prints the value,
    the oracle, the tolerance and the verdict (both work from any folder: the case file is named by its path)."""

    bad = [r for r in records if unexplained(r)]
    notes = case_notes(bad[:limit])
    lines = []
    for r in bad[:limit]:
        lines += ["", f"**{md_cell(r.case)}** {md_cell(r.framework)} {md_cell(r.impl)} {r.quantity} {r.dtype} {r.mode}:", ""]
        if notes.get(r.case, {}).get("source"):
            lines += [f"Source: {md_cell(notes[r.case]['source'])}", ""]
        lines += _fenced(repro.command(r), "sh") + [""] + _fenced(repro.snippet(r), "python")
    return lines or ["Nothing to re-run: no unexplained fail or error."]


def naive_vs_fused(records: list[dict]) -> list[str]:
    """The classic question: on which cases does softmax-then-log break where the fused function holds?"""
    by_case: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: {"fused": [], "naive": []})
    for r in records:
        if r.quantity != "value" or not r.status.ran or r.invalid:
            continue
        ok = r.status is Status.PASS
        by_case[(r.case, r.op, r.dtype)]["naive" if r.naive else "fused"].append("ok" if ok else r.framework)
    rows = []
    for (case, op, dtype), groups in sorted(by_case.items()):
        naive_bad = [x for x in groups["naive"] if x != "ok"]
        if naive_bad:
            fused_bad = sorted({x for x in groups["fused"] if x != "ok"})
            rows.append([case, op, dtype, f"{len(groups['naive']) - len(naive_bad)}/{len(groups['naive'])}",
                         f"{len(groups['fused']) - len(fused_bad)}/{len(groups['fused'])}" + (f" (not: {', '.join(fused_bad)})" if fused_bad else "")])
    if not rows:
        return ["No case separates the naive formula from the fused functions."]
    return table(["case", "op", "dtype", "naive implementations within tolerance", "fused implementations within tolerance"], rows)


def agreement_data(records: list[dict], quantity: str) -> tuple[list[str], dict[str, dict[str, tuple[int, int]]]]:
    """Pairwise: of the (case, op, dtype, mode, device) both frameworks ran, in how many did both match the oracle?
    Returns the frameworks and (agree, shared) per pair."""
    outcome: dict[str, dict[tuple, bool]] = defaultdict(dict)
    for r in records:
        if r.quantity != quantity or r.naive or r.invalid or not r.status.ran:
            continue
        k = (r.case, r.op, r.dtype, r.mode, r.device)
        outcome[r.framework][k] = outcome[r.framework].get(k, True) and r.status is Status.PASS
    frameworks = sorted(outcome)
    cells = {a: {b: (sum(1 for k in set(outcome[a]) & set(outcome[b]) if outcome[a][k] and outcome[b][k]),
                     len(set(outcome[a]) & set(outcome[b]))) for b in frameworks} for a in frameworks}
    return frameworks, cells


def agreement_matrix(records: list[dict], quantity: str) -> list[str]:
    frameworks, cells = agreement_data(records, quantity)
    if len(frameworks) < 2:
        return [f"Fewer than two frameworks produced {quantity}."]
    rows = [[a, *(f"{cells[a][b][0]}/{cells[a][b][1]}" if cells[a][b][1] else "-" for b in frameworks)] for a in frameworks]
    return table([quantity, *frameworks], rows)


def disagreement_rows(records: list[dict]) -> list[list[str]]:
    """The same call judged differently in another mode (eager / compiled) or on another device (CPU / GPU): e.g. an
    error eagerly and NaN compiled for the same input. One row per (case, op, quantity, dtype, implementation)."""
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in records:
        if not r.status.ran:
            continue
        groups[(r.case, r.op, r.quantity, r.dtype, r.framework, r.impl)][f"{r.mode} {r.device}"] = r
    rows = []
    for (case, op, q, dtype, fw, impl), by in sorted(groups.items()):
        outcomes = {k: (r.known_status or r.status, r.behaviour) for k, r in by.items()}
        if len(set(outcomes.values())) > 1:
            rows.append([case, fw, impl, op, q, dtype, "; ".join(f"{k}: {st} ({bh})" for k, (st, bh) in sorted(outcomes.items()))])
    return rows


def mode_device_disagreements(records: list[dict], limit: int = 100) -> list[str]:
    rows = disagreement_rows(records)
    if not rows:
        return ["Every implementation is judged the same in every mode and on every device it ran."]
    lines = [f"{len(rows)} call(s) judged differently across modes or devices (status before the registry, behaviour):", ""]
    lines += table(["case", "framework", "implementation", "op", "quantity", "dtype", "mode device: status (behaviour)"], rows[:limit])
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more in results.json.")
    return lines


def gradient_data(records: list[dict]) -> dict[str, list[list]]:
    """Per gradient quantity: (framework, mode, counts per status) rows."""
    out = {}
    for q in GRADIENTS:
        by_fw: dict[tuple, Counter] = defaultdict(Counter)
        for r in records:
            if r.quantity == q and not r.invalid:
                by_fw[(r.framework, r.mode)][r.status] += 1
        if by_fw:
            out[q] = [[fw, mode, *(c.get(s, 0) for s in COUNTED)] for (fw, mode), c in sorted(by_fw.items())]
    return out


def gradient_section(records: list[dict]) -> list[str]:
    lines = []
    for q, rows in gradient_data(records).items():
        lines += [f"### {q}", "", *table(["framework", "mode", *COUNTED], rows), ""]
    return lines or ["No gradient quantities in this run."]


def invalid_data(records: list[dict]) -> tuple[list[str], list[tuple[str, str, str, dict[str, str]]]]:
    """What each implementation does on input with no valid answer: columns (implementation and mode) and rows
    (case, op, dtype, cell per column: 'error: Type', 'nonfinite', 'all_nan', or 'SILENT finite')."""
    rows_by: dict[tuple, dict[str, str]] = defaultdict(dict)
    columns: set[str] = set()
    for r in records:
        if not r.invalid or r.quantity != "value" or not r.status.ran:
            continue
        col = f"{r.framework}: {r.impl} ({r.mode}{'' if r.device == 'cpu' else ', ' + r.device})"
        columns.add(col)
        cell = r.behaviour
        if cell == "error":
            cell = f"error: {(r.error or {}).get('type', '?')}"
        if r.behaviour == "finite":
            cell = "SILENT finite"
        rows_by[(r.case, r.op, r.dtype)][col] = cell
    return sorted(columns), [(case, op, dtype, cells) for (case, op, dtype), cells in sorted(rows_by.items())]


def invalid_behaviour(records: list[dict]) -> list[str]:
    columns, rows = invalid_data(records)
    if not rows:
        return ["No invalid-input cases in this run."]
    return [f"- {md_cell(case)} {op} {dtype}: " + "; ".join(md_cell(f"{c} -> {cells[c]}") for c in sorted(cells)) for case, op, dtype, cells in rows]


def cross_backend_section(records: list[dict], limit: int = 60) -> list[str]:

    counts = cross_backend.pair_counts(records)
    if not counts:
        return ["No public call ran on two or more backends in this run."]
    lines = ["Verdict before the registry and behaviour, for every call both backends ran (two passes agree within "
             "the oracle's tolerance of each other):", ""]
    lines += table(["call", "backends", "both ran", "judged the same", "part ways"], counts)
    rows = cross_backend.partings(records)
    if rows:
        lines += ["", f"{len(rows)} call(s) where the backends part ways:", ""]
        lines += table(["call", "case", "quantity", "dtype", "mode", "backend: status (behaviour)"], rows[:limit])
        if len(rows) > limit:
            lines.append(f"... and {len(rows) - limit} more in results.json.")
    return lines


def known_section(records: list[dict], stale_entries: list[dict], entries: list[dict] | None = None) -> list[str]:
    """Each matched divergence: what the framework computes instead, why, and where upstream says so."""
    hits = Counter((r.known_id, r.known) for r in records if r.status is Status.KNOWN)
    reasons = {e["id"]: e for e in entries or []}
    lines = []
    for (entry_id, link), n in sorted(hits.items()):
        e = reasons.get(entry_id, {})
        lines += [f"- **{md_cell(entry_id)}** ({md_cell(e.get('kind', '?'))}, {n} records, {md_cell(link)}): {md_cell(e.get('reason', ''))}"]
    if not hits:
        lines.append("No record matched a registered divergence.")
    if stale_entries:
        lines += ["", "**Stale entries** (out of date: update or remove them):", ""]
        lines += [f"- {md_cell(e['id'])} ({md_cell(e['link'])}): {md_cell(e.get('why', ''))}" for e in stale_entries]
    return lines


def findings_section(f: Findings, limit: int = 20) -> list[str]:
    """What diverges, where and why, before any table: silent wrong answers, unexplained fails, registered divergences
    by kind (bug / design) with their links, calls judged differently across modes or devices, then agreement."""
    lines = []
    if f.incomplete:
        lines += [f"**Incomplete run**: {md_cell('; '.join(f.incomplete))}. The findings below cover what finished.", ""]
    lines.append(f"1. **Silent wrong answers** (a finite answer where none exists): {len(f.silent)}"
                 + ("" if f.silent else ". None."))
    for x in f.silent[:limit]:
        known = f" (registered: {md_cell(x['known'])}, {md_cell(x['link'])})" if x["known"] else " (**unexplained**)"
        lines.append(f"   - {md_cell(x['case'])} {x['op']} {x['dtype']}: {md_cell(x['framework'])} {md_cell(x['impl'])}, {md_cell(x['where'])}{known}")
    if len(f.silent) > limit:
        lines.append(f"   - ... and {len(f.silent) - limit} more in the invalid-input section")
    lines.append(f"2. **Unexplained fails and errors** of the fused implementations: {len(f.unexplained)}"
                 + (" (listed below, each with the command that re-runs it)." if f.unexplained else ". None."))
    if f.naive:
        lines.append(f"   - apart: {len(f.naive)} fail/error records of the naive formulas, which are expected to break "
                     "(the textbook formulas, run to show what the fused functions protect against; in details.md)")
    n = sum(d["records"] for ds in f.divergences.values() for d in ds)
    lines.append(f"3. **Registered divergences**: {n} records explained by {sum(len(ds) for ds in f.divergences.values())} entries of the registry.")
    for kind in sorted(f.divergences):
        lines.append(f"   - {kind}:")
        lines += [f"     - {md_cell(d['id'])} ({d['records']} records; {md_cell(d['frameworks'])}): {md_cell(d['link'])}" for d in f.divergences[kind]]
    lines.append(f"4. **Calls judged differently across modes or devices**: {f.disagreements}.")
    lines.append(f"5. **Agreement**: {f.passed} of {f.judged} judged records pass the oracle within tolerance.")
    return lines


def which_function(chosen: dict[tuple[str, str, str, str], list[choose.Choice]]) -> str:
    """which-function.md: every (op, dtype, mode, device) table of choose.choices(), the long form."""
    lines = ["# Which function should I use?", ""]
    for (op, dtype, mode, device), cs in chosen.items():
        lines += [f"## {op}, {dtype}, {mode}, {device}", "", *table(choose.HEADER, [choose.row(c) for c in cs]), ""]
    return "\n".join(lines)


DETAILS = "details.md"  # the long tables, beside summary.md and report.md
