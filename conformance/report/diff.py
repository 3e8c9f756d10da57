"""What moved between two runs: status, behaviour, NaN/inf counts and accuracy, record by record, with the
environment change (package versions, CPU) each move can be attributed to. `conformance diff` writes it;
the gate (gate.py) judges it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from ..corpus.cases import materialize
from ..judge.compare import answer_tolerance
from ..model import dtypes as dt
from ..model.names import PROPERTIES
from ..model.record import IDENTITY, PROPERTY_LEVELS, Record, property_level, unexplained
from ..model.record import message as reason
from ..model.status import Status
from ..run import results as results_io
from ..run.environment import kernel_fingerprint
from .markdown import md_cell

ANSWER_SHARE = 0.25  # an accurate answer "changed" when its error moved by a quarter of its tolerance or more
ACCURACY_MOVE = 2.0  # a record's error (share of its tolerance) moved by more than this factor either way
ACCURACY_FLOOR = 0.01  # ... and one side used at least 1% of its tolerance: below that, moves are sub-ulp noise


class MoveKind(StrEnum):
    """How a record moved between two runs."""
    STATUS = "status"  # its status changed
    BEHAVIOUR = "behaviour"  # same status, another behaviour (finite / nonfinite / all_nan / error)
    NONFINITE = "nonfinite"  # same status and behaviour, other NaN/inf counts
    ACCURACY = "accuracy"  # a finite record's share of its tolerance moved by more than ACCURACY_MOVE either way
    ANSWER = "answer"  # same status, another answer (answer_move)
    PROPERTY = "property"  # batch invariance or determinism held in one run and not in the other (property_moves)
    MISSING = "missing"  # in the baseline, not in the current run
    NEW = "new"  # in the current run, not in the baseline


@dataclass(frozen=True)
class Attribution:
    """What changed in the environment between two runs of one framework: its package versions, and the CPU (None
    where both runs recorded the same one)."""
    versions: tuple[str, ...] = ()  # "numpy 2.3.0 -> 2.4.6", one per package that changed
    cpu: tuple[str, str] | None = None  # (before, after); "unrecorded" where a file lacks it

    @property
    def cpu_changed(self) -> bool:
        return self.cpu is not None

    @property
    def version_changed(self) -> bool:
        return bool(self.versions)

    def __str__(self) -> str:
        parts = [f"version change ({', '.join(self.versions)})"] if self.versions else []
        if self.cpu is not None:
            parts.append(f"CPU change ({self.cpu[0]} -> {self.cpu[1]})")
        return " and ".join(parts) or "same environment"


@dataclass
class Move:
    kind: MoveKind
    record: str  # the record's identity, readable
    framework: str
    before: str
    after: str
    worse: bool
    naive: bool
    attribution: Attribution
    detail: str = ""
    before_ratio: float | None = None
    after_ratio: float | None = None
    accepted_by: str = ""  # an answer move: the registry entry that explains the new answer and not the old one
    statuses: tuple[Status, Status] | None = None  # a status move: (before, after)
    varies: str = ""  # the registry entry marked `varies` that explains the record (and neither run is unexplained)

    def to_json(self) -> dict:
        out = {**asdict(self), "kind": self.kind.value, "attribution": str(self.attribution)}
        out["statuses"] = [s.value for s in self.statuses] if self.statuses else None
        return out


def describe(r: Record) -> str:
    return " ".join(str(getattr(r, k)) for k in IDENTITY)


def index(doc: dict, where: str, by_id: bool = True) -> dict[tuple, Record]:
    """Records by identity; two records with one identity (a merge of two versions) cannot be compared."""
    out: dict[tuple, Record] = {}
    for r in doc["records"]:
        k = results_io.key(r, by_id)
        if k in out:
            raise results_io.ResultsError(f"{where}: two records for {describe(r)} (two versions merged?): compare one run at a time")
        out[k] = r
    return out


def packages(doc: dict, framework: str) -> dict[str, str]:
    """The framework's package versions; older files recorded only a version string."""
    info = (doc.get("environment") or {}).get("frameworks", {}).get(framework) or {}
    if not isinstance(info, dict):
        return {}
    return info.get("packages") or ({framework: str(info["version"])} if info.get("version") else {})


def version_changes(base: dict, cur: dict, framework: str) -> list[str]:
    old, new = packages(base, framework), packages(cur, framework)
    return [f"{p} {old.get(p, 'absent')} -> {new.get(p, 'absent')}" for p in sorted(set(old) | set(new)) if old.get(p) != new.get(p)]


def attribution(base: dict, cur: dict, framework: str) -> Attribution:
    """The environment change a move of this framework's records can be attributed to (an unrecorded CPU counts as
    a change: nothing says it is the same)."""
    b_cpu, c_cpu = kernel_fingerprint(base, framework), kernel_fingerprint(cur, framework)
    cpu = None if b_cpu is not None and b_cpu == c_cpu else (b_cpu or "unrecorded", c_cpu or "unrecorded")
    return Attribution(tuple(version_changes(base, cur, framework)), cpu)


def _counts(r: Record) -> str:
    return f"{(r.nan_count or 0)} NaN, {(r.inf_count or 0)} inf"


def _ratio(r: Record) -> float | None:
    """The share of its tolerance a finite record used; None where accuracy is not the measure (non-finite, known)."""
    if r.status not in (Status.PASS, Status.FAIL) or r.behaviour != "finite" or r.invalid:
        return None
    return r.tol_ratio


def _accurate(r: Record) -> bool:
    """An answer the oracle measured: its error, a share of the tolerance, is what can move. That includes an answer
    whose infinities are the oracle's own (-inf for a masked log-probability): its finite part is measured."""
    ratio = r.tol_ratio
    return not r.invalid and r.behaviour in ("finite", "nonfinite") and ratio is not None and math.isfinite(ratio)


def shown(r: Record) -> str:
    """A record's answer for people: the exception's type, else the values where they are small, else the digest."""
    if r.behaviour == "error" or (r.error and not r.answer):
        return f"raises {(r.error or {}).get('type', '?')}"
    if r.output is not None:
        text = str(r.output)
        return text if len(text) <= 120 else text[:117] + "..."
    return f"{r.size} values, {_counts(r)} (digest {r.answer})"


def answer_move(b: Record, c: Record) -> tuple[bool, bool, str] | None:
    """(changed, gated, how) where both runs recorded the answer. An accurate answer (the oracle measures it) changed
    when its error moved by ANSWER_SHARE of its tolerance or more (listed; gated only inside a registered bound, away
    from the oracle: the accuracy rule gates the rest). An answer the oracle does not measure (an invalid input's
    entries without an answer, an error, a non-finite answer) changed when its behaviour did (the exception's type, the
    NaN/inf pattern) or a value moved beyond the record's tolerance (gated); never on a last-bit change, and never on
    the digest alone (`unmeasured_change`)."""
    if b.status != c.status:
        return None  # the status move says it
    if not (b.answer or b.error) or not (c.answer or c.error):
        return None  # a file written before answers were fingerprinted, or a record with no answer (unsupported)
    same = b.answer == c.answer and (b.error or {}).get("type") == (c.error or {}).get("type")
    if same:
        return None
    if _accurate(b) and _accurate(c):  # gated here only inside a registered bound, and only when it moved away from the oracle
        moved = abs(c.tol_ratio - b.tol_ratio)
        return (moved >= ANSWER_SHARE, c.status is Status.KNOWN and c.tol_ratio > b.tol_ratio, f"the answer changed by {moved:.0%} of the tolerance")
    if _accurate(c) and b.behaviour in ("nonfinite", "all_nan"):
        return (True, False, f"the answer changed ({b.behaviour} -> {c.behaviour}, now measured by the oracle)")
    how, certain = unmeasured_change(b, c)
    return (True, certain, how) if how else None


def unmeasured_change(b: Record, c: Record) -> tuple[str | None, bool]:
    """How an answer the oracle does not measure changed between two runs, or None where it did not: (how, certain).
    Compared by behaviour and by value within the record's tolerance: an invalid input's entries without an answer
    (`unanswered`, from files that record it), else the stored output entry by entry; where neither side stored its
    values (an older file, a large output) only the behaviour and NaN/inf counts are compared, and a changed digest is
    listed as uncertain (not gated: it may be a last-bit change)."""
    b_err, c_err = (b.error or {}).get("type"), (c.error or {}).get("type")
    if b_err or c_err:
        return (None, True) if b_err == c_err else (f"raises {b_err}" if b_err else "an answer") + " -> " + (f"raises {c_err}" if c_err else "an answer"), True
    bu, cu = b.unanswered, c.unanswered
    if isinstance(bu, dict) and isinstance(cu, dict):
        return _summaries_differ(bu, cu), True
    bo, co = b.output, c.output
    if bo is not None and co is not None:
        rtol = answer_tolerance(c.quantity, c.dtype, _classes_bound(co))
        return _values_differ(bo, co, rtol, _tiny(c.dtype)), True
    if (b.behaviour, b.nan_count, b.inf_count) != (c.behaviour, c.nan_count, c.inf_count):
        return f"{b.behaviour}, {_counts(b)} -> {c.behaviour}, {_counts(c)}", True
    return "the digest changed; neither file stored the values (run both with this version to compare them by value)", False


def _tiny(dtype: str) -> float:
    try:
        return float(dt.fmt(dtype).smallest_normal)
    except (KeyError, ValueError):
        return 0.0


def _array(stored) -> np.ndarray:
    """A stored output or list of values (JSON: nested lists, "nan"/"inf" strings, or one number) as float64."""
    return np.asarray(materialize(stored if isinstance(stored, list) else [stored]), dtype=np.float64)


def _classes_bound(output) -> int:
    """An upper bound on the classes behind a stored output, for its tolerance: its last axis, else its size (the
    bound enters the tolerance as 2 ceil(log2 C): a generous bound widens it by a few units of roundoff)."""
    values = _array(output)
    return int(values.shape[-1] if values.ndim > 1 else max(values.size, 1))


def _values_differ(before, after, rtol: float, atol: float) -> str | None:
    """Entry by entry: the same shape, NaN where NaN, the same infinities, finite values within rtol of the larger
    magnitude (plus atol); None where they agree."""
    b, a = _array(before), _array(after)
    if b.shape != a.shape:
        return f"shape {list(b.shape)} -> {list(a.shape)}"
    if np.any(np.isnan(b) != np.isnan(a)) or np.any(np.isinf(b) != np.isinf(a)) or np.any(b[np.isinf(b)] != a[np.isinf(a)]):
        return "the NaN/inf pattern changed"
    both = np.isfinite(b) & np.isfinite(a)
    gap = np.abs(a[both] - b[both])
    allowed = rtol * np.maximum(np.abs(a[both]), np.abs(b[both])) + atol
    if np.any(gap > allowed):
        worst = int(np.argmax(gap / allowed))
        return f"a value moved by {gap[worst]:.3g}, beyond the tolerance {allowed[worst]:.3g} (relative {rtol:.2g})"
    return None


def _summaries_differ(b: dict, c: dict) -> str | None:
    """Two runs' entries without an answer (judge.compare.unanswered_summary), compared by behaviour and value."""
    pattern = ("entries", "nan", "posinf", "neginf")
    if tuple(b.get(k) for k in pattern) != tuple(c.get(k) for k in pattern):
        return "entries without an answer: " + ", ".join(f"{k} {b.get(k)} -> {c.get(k)}" for k in pattern if b.get(k) != c.get(k))
    rtol, atol = max(b.get("rtol") or 0.0, c.get("rtol") or 0.0), max(b.get("atol") or 0.0, c.get("atol") or 0.0)
    if "values" in b and "values" in c:
        differ = _values_differ(b["values"], c["values"], rtol, atol)
        return f"entries without an answer: {differ}" if differ else None
    # Each value within rtol of its magnitude moves the min and max by as much, and the sum by rtol of the sum of
    # magnitudes (plus atol per entry).
    sum_room = rtol * max(abs(b.get("abs_sum") or 0.0), abs(c.get("abs_sum") or 0.0)) + atol * (b.get("entries") or 1)
    for name in ("min", "max", "sum"):
        x, y = b.get(name), c.get(name)
        if (x is None) != (y is None):
            return f"entries without an answer: {name} {x} -> {y}"
        room = sum_room if name == "sum" else rtol * max(abs(x or 0.0), abs(y or 0.0)) + atol
        if x is not None and abs(x - y) > room:
            return f"entries without an answer: {name} {x:.9g} -> {y:.9g}"
    return None


def record_moves(b: Record, c: Record, why: Attribution, written_for_a_release: frozenset[str] = frozenset(),
                 varying: frozenset[str] = frozenset()) -> list[Move]:
    """Every way one record moved between two runs. `written_for_a_release`: the current run's registry entries
    scoped from a release on (from_a_release); one of them that explains the new answer, and did not explain the
    old, accepts the change. `varying`: the entries whose records' answers vary from run to run (`varies`)."""
    # a record that such an entry explains in either run, and that is not unexplained in the other (a pass there:
    # NaN one time, a finite answer the next)
    same_entry = next((r.known_id for r in (c, b) if r.known_id in varying), "") if not (b.status.unexplained or c.status.unexplained) else ""
    base = dict(record=describe(c), framework=c.framework, naive=bool(c.naive), attribution=why, varies=same_entry)
    moves = []
    if b.status != c.status:
        worse = c.status.worse_than(b.status)
        moves.append(Move(MoveKind.STATUS, before=b.status.value, after=c.status.value, worse=worse, detail=reason(c) if worse else "",
                          statuses=(b.status, c.status), **base))
    if b.status != c.status:
        pass  # the status move says it; the behaviour moved with it
    elif b.behaviour != c.behaviour:
        moves.append(Move(MoveKind.BEHAVIOUR, before=str(b.behaviour), after=str(c.behaviour),
                          worse=c.behaviour != "finite" and b.behaviour == "finite", **base))
    elif ((b.nan_count or 0), (b.inf_count or 0)) != ((c.nan_count or 0), (c.inf_count or 0)):
        grew = (c.nan_count or 0) + (c.inf_count or 0) > (b.nan_count or 0) + (b.inf_count or 0)
        moves.append(Move(MoveKind.NONFINITE, before=_counts(b), after=_counts(c), worse=grew, **base))
    answer = answer_move(b, c)
    if answer and answer[0]:
        new_entry = c.known_id and c.known_id != b.known_id and c.known_id in written_for_a_release
        accepted = c.known_id if new_entry else ""
        moves.append(Move(MoveKind.ANSWER, before=shown(b), after=shown(c), worse=answer[1], accepted_by=accepted or "",
                          detail=answer[2],
                          **base))
    moves += [Move(MoveKind.PROPERTY, **base, **found) for found in property_moves(b, c)]
    bt, ct = _ratio(b), _ratio(c)
    if bt is not None and ct is not None and max(bt, ct) >= ACCURACY_FLOOR and (ct > ACCURACY_MOVE * bt or bt > ACCURACY_MOVE * ct):
        moves.append(Move(MoveKind.ACCURACY, before=f"{bt:.2%}", after=f"{ct:.2%}", worse=ct > bt, before_ratio=bt, after_ratio=ct,
                          detail=f"{b.max_ulp or 0:.3g} -> {c.max_ulp or 0:.3g} ulp", **base))
    return moves


def property_moves(b: Record, c: Record) -> list[dict]:
    """Each property that both runs measured and that holds to another level now: bitwise -> within tolerance is worse,
    and so is anything -> neither. A property only one run measured (an older file) is not a move."""
    out = []
    for name in PROPERTIES:
        before, after = property_level(getattr(b, name)), property_level(getattr(c, name))
        if before is None or after is None or before == after:
            continue
        worse = PROPERTY_LEVELS.index(after) < PROPERTY_LEVELS.index(before)
        differs = ", ".join((getattr(c, name) or {}).get("differs", []))
        out.append({"before": f"{name.replace('_', ' ')}: {before}", "after": after, "worse": worse,
                    "detail": f"now differs: {differs}" if worse and differs else ""})
    return out


def from_a_release(entry: dict) -> bool:
    """Whether a results file's registry entry is scoped to begin at a release (a lower bound: `>=3.10`), so that it
    speaks for a change that release made. An entry bounded only from above describes the releases before a change:
    on a downgrade it explains the old answer, it does not accept losing the new one."""
    return any(re.search(r"(>=|>|==|~=)\s*\d", spec) for spec in (entry.get("versions") or {}).values())


def diff(base_doc: dict, cur_doc: dict) -> list[Move]:
    """Every record that moved, appeared or disappeared between two results documents."""
    ids = results_io.by_id(base_doc, cur_doc)
    base, cur = index(base_doc, "baseline", ids), index(cur_doc, "current", ids)
    why = {fw: attribution(base_doc, cur_doc, fw) for fw in {k[4] for k in base} | {k[4] for k in cur}}
    scoped = frozenset(e["id"] for e in cur_doc.get("known_divergences", []) if from_a_release(e))
    varying = frozenset(e["id"] for e in cur_doc.get("known_divergences", []) if e.get("varies"))
    moves = []
    for k, c in cur.items():
        b = base.get(k)
        if b is None:
            moves.append(Move(MoveKind.NEW, describe(c), c.framework, "-", c.status.value, unexplained(c),
                              bool(c.naive), why[c.framework], reason(c)))
        else:
            moves += record_moves(b, c, why[c.framework], scoped, varying)
    for k, b in base.items():
        if k not in cur:
            moves.append(Move(MoveKind.MISSING, describe(b), b.framework, b.status.value, "-", True, bool(b.naive), why[b.framework]))
    return moves


def render_markdown(moves: list[Move], base_doc: dict, cur_doc: dict, limit: int = 300) -> str:
    """A GitHub-flavoured summary: environment changes, then the moves, worse first (escaped: case text is data)."""
    frameworks = sorted({m.framework for m in moves} | set((cur_doc.get("environment") or {}).get("frameworks", {})))
    lines = ["# What moved between the two runs", ""]
    for fw in frameworks:
        changes = version_changes(base_doc, cur_doc, fw)
        lines.append(f"- **{md_cell(fw)}**: " + (md_cell(", ".join(changes)) if changes else "same versions"))
    b_cpu, c_cpu = kernel_fingerprint(base_doc), kernel_fingerprint(cur_doc)
    lines += [f"- **CPU**: {md_cell(b_cpu or 'unrecorded')}" + ("" if b_cpu == c_cpu else f" -> {md_cell(c_cpu or 'unrecorded')}"), ""]
    if not moves:
        return "\n".join(lines + ["No record moved.", ""])
    counts: dict[str, list[int]] = {}
    for m in moves:
        counts.setdefault(m.kind, [0, 0])[0 if m.worse else 1] += 1
    lines += ["| kind | worse | better or neutral |", "|---|---|---|"]
    lines += [f"| {k} | {w} | {b} |" for k, (w, b) in sorted(counts.items())]
    ordered = sorted(moves, key=lambda m: (not m.worse, m.naive, m.kind, m.record))
    lines += ["", "| record | kind | before | after | worse | naive | attributed to | detail |", "|---|---|---|---|---|---|---|---|"]
    for m in ordered[:limit]:
        lines.append("| " + " | ".join(md_cell(x) for x in (m.record, m.kind, m.before, m.after, "yes" if m.worse else "no",
                                                               "yes" if m.naive else "no", str(m.attribution), m.detail[:160])) + " |")
    if len(ordered) > limit:
        lines.append(f"\n... and {len(ordered) - limit} more in diff.json.")
    return "\n".join(lines) + "\n"


def write(moves: list[Move], base_doc: dict, cur_doc: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"schema": "softmax-conformance/diff/1", "moves": [m.to_json() for m in moves],
           "baseline_created": base_doc.get("created"), "current_created": cur_doc.get("created")}
    results_io.write(doc, out / "diff.json")
    results_io.write_text(out / "diff.md", render_markdown(moves, base_doc, cur_doc))
    return [out / "diff.json", out / "diff.md"]
