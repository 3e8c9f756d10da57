"""What a run found, in the order a reader needs it: silent wrong answers, unexplained fails, registered divergences
by kind, calls judged differently across modes or devices, then agreement; and the run at a glance as a heatmap
(framework x implementation against case suite, coloured by the worst status and the share of tolerance used).
The HTML report and report.md both start with these.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..model.record import UNEXPLAINED, unexplained
from ..model.status import Status


def severity(kind: str) -> int:
    """Worst first: a silent wrong answer, then by Status.severity (the status a heatmap cell shows is the worst of its
    records)."""
    return -1 if kind == SILENT else Status(kind).severity


SILENT = "silent"  # a heatmap count of its own, beside the statuses


def silent(r: dict) -> bool:
    """A finite answer to a question that has none (invalid input), registered or not."""
    return bool(r.invalid) and r.behaviour == "finite" and r.quantity == "value"


@dataclass
class Findings:
    silent: list[dict] = field(default_factory=list)  # one per (case, op, dtype, framework, impl): where and which modes
    unexplained: list[dict] = field(default_factory=list)  # fail/error records of the fused implementations
    naive: list[dict] = field(default_factory=list)  # fail/error records of the naive formulas: expected to break, counted apart
    divergences: dict[str, list[dict]] = field(default_factory=dict)  # kind -> [{id, reason, link, records, frameworks}]
    disagreements: int = 0
    judged: int = 0  # records with a verdict (not unsupported/skip)
    passed: int = 0
    incomplete: list[str] = field(default_factory=list)


def collect(doc: dict, disagreements: int = 0) -> Findings:
    records = doc["records"]
    f = Findings(disagreements=disagreements)
    by_call: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if silent(r):
            by_call[(r.case, r.op, r.dtype, r.framework, r.impl)].append(r)
    for (case, op, dtype, fw, impl), rs in sorted(by_call.items()):
        f.silent.append({"case": case, "op": op, "dtype": dtype, "framework": fw, "impl": impl,
                         "where": ", ".join(sorted({f"{r.mode} {r.device}" for r in rs})),
                         "known": next((r.known_id for r in rs if r.known_id), None),
                         "link": next((r.known for r in rs if r.known), None)})
    f.unexplained = [r for r in records if unexplained(r) and not r.naive]
    f.naive = [r for r in records if unexplained(r) and r.naive]
    entries = {e["id"]: e for e in doc.get("known_divergences", [])}
    hits: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        if r.status is Status.KNOWN and r.known_id:
            hits[r.known_id][r.framework] += 1
    for entry_id, frameworks in sorted(hits.items(), key=lambda kv: -sum(kv[1].values())):
        e = entries.get(entry_id, {})
        f.divergences.setdefault(e.get("kind", "unclassified"), []).append(
            {"id": entry_id, "reason": e.get("reason", ""), "link": e.get("link", ""), "records": sum(frameworks.values()),
             "frameworks": ", ".join(sorted(frameworks))})
    f.judged = sum(r.status.ran for r in records)
    f.passed = sum(r.status is Status.PASS for r in records)
    lost = (doc.get("incomplete") or {}).get("lost") or []
    if doc.get("complete") is False or doc.get("interrupted"):
        f.incomplete = [f"{x.get('shard')}: {x.get('why')}" for x in lost if isinstance(x, dict)] or ["interrupted"]
    return f


KNOWN_COLOUR = "#d9cbb8"  # registered divergences: muted, apart from the reds of what nobody explained


@dataclass
class Cell:
    status: str  # the worst of its records (silent counts as worse than fail)
    ratio: float | None  # the largest share of tolerance used by a passing record
    counts: Counter

    @property
    def colour(self) -> str:
        if self.status == "silent":
            return "#67000d"
        if self.status in UNEXPLAINED:
            return "#d73027"
        if self.status is Status.KNOWN:
            return KNOWN_COLOUR
        if self.status is Status.PASS:  # the best outcome is the brightest: vivid green far inside the tolerance, pale near it
            share = min(1.0, self.ratio or 0.0)
            return f"hsl({125 - 55 * share:.0f},{62 - 20 * share:.0f}%,{46 + 36 * share:.0f}%)"
        return "#e0e0e0"

    @property
    def ink(self) -> str:
        return "#fff" if self.status in ("silent", *UNEXPLAINED) else "#222"

    @property
    def text(self) -> str:
        parts = [f"{n} {s}" for s, n in sorted(self.counts.items(), key=lambda kv: severity(kv[0]))]
        ratio = f"; worst passing error {self.ratio:.0%} of tolerance" if self.ratio is not None else ""
        return ", ".join(parts) + ratio


def heatmap(records: list[dict]) -> tuple[list[tuple[str, str]], list[str], dict[tuple, Cell]]:
    """Rows (framework, implementation; fused before naive), columns (case suites), and a cell per pair that ran."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    naive: dict[tuple[str, str], bool] = {}
    for r in records:
        row = (r.framework, r.impl)
        naive[row] = bool(r.naive)
        groups[(row, r.case.split("/")[0])].append(r)
    cells = {}
    for key, rs in groups.items():
        # An unregistered silent answer is the worst a cell can show; a registered one is a known divergence, drawn
        # muted like the others (the Findings list says which are silent).
        counts = Counter(SILENT if silent(r) and unexplained(r) else r.status for r in rs)
        worst = min(counts, key=lambda s: severity(s))
        ratios = [r.tol_ratio for r in rs if r.status is Status.PASS and r.tol_ratio is not None]
        cells[key] = Cell(worst, max(ratios) if ratios else None, counts)
    rows = sorted(naive, key=lambda row: (naive[row], row))
    columns = sorted({k[1] for k in cells})
    return rows, columns, cells


def verdict_line(f: Findings) -> str:
    """The run in one line, what a reader must know first: unexplained fails of the fused implementations (the naive
    formulas apart), and the silent answers to invalid input with how many are registered, so that "0 fail" and
    "N silent answers" never stand side by side unexplained."""
    fused, naive = f.unexplained, len(f.naive)
    registered = sum(1 for s in f.silent if s["known"])
    parts = [f"{'INCOMPLETE run; ' if f.incomplete else ''}{len(fused)} unexplained fail/error record(s) of the fused implementations"
             + (f" ({naive} of the naive formulas, which are expected to break)" if naive else "")]
    if f.silent:
        parts.append(f"{len(f.silent)} silent answer(s) to invalid input (a finite value where none exists), "
                     + ("all registered" if registered == len(f.silent) else f"{registered} registered, {len(f.silent) - registered} not")
                     + ": see Findings")
    return "; ".join(parts) + "."
