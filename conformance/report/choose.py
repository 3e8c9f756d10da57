""""Which function should I use?": for each op, dtype, mode and device, every implementation with what a user
choosing one needs: whether it passes every valid case, its worst share of the tolerance, what it does with invalid
input (raises, NaN, or a silent finite answer), whether it is batch-invariant and deterministic where a case asked,
and its speed where benchmarks were given. The naive formulas are
listed last, for contrast, never as a choice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..model.names import PROPERTIES
from ..model.record import property_level, weakest
from ..model.status import Status
from .findings import silent

# How an implementation answers invalid input, worst first: a finite answer to a question with none is the one
# a user cannot see.
INVALID_ORDER = ("silent", "nan", "raises")


@dataclass
class Choice:
    framework: str
    impl: str
    impl_id: str
    naive: bool
    valid: int = 0  # judged records on valid input
    passed: int = 0
    known: int = 0  # registered divergences on valid input
    failed: int = 0  # unexplained fail/error
    worst: float = 0.0  # worst share of the tolerance among the passing records
    invalid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVALID_ORDER, 0))
    seconds: float | None = None  # benchmark median, where given
    # peak memory of a training step (forward+backward) at the largest benchmarked size, where it was measured (the
    # fused linear cross-entropy: what chunking saves), and that size
    peak_bytes: int | None = None
    peak_at: str | None = None
    # how far each property held on the cases that ask for it (model.record.property_level), the weakest record's
    properties: dict[str, str] = field(default_factory=dict)

    def hold(self, name: str, level: str | None) -> None:
        if level is not None:
            self.properties[name] = weakest([level, self.properties.get(name, level)])

    @property
    def properties_text(self) -> str:
        """"bitwise / within tolerance": batch invariance, then determinism; "-" where no case asked."""
        if not self.properties:
            return "-"
        return " / ".join(self.properties.get(n, "-") for n in PROPERTIES)

    @property
    def passes_everything(self) -> bool:
        return self.valid > 0 and self.passed == self.valid

    @property
    def verdict(self) -> str:
        if self.passes_everything:
            return "passes every valid case"
        parts = [f"{n} {what}" for n, what in ((self.failed, "fail"), (self.known, "registered")) if n]
        return f"{self.passed}/{self.valid} pass" + (f" ({', '.join(parts)})" if parts else "")

    @property
    def on_invalid(self) -> str:
        seen = [f"{what} {self.invalid[what]}" for what in INVALID_ORDER if self.invalid[what]]
        return ", ".join(seen) or "-"


def _invalid_kind(r: dict) -> str | None:
    if r.quantity != "value" or not r.invalid:
        return None
    if silent(r):
        return "silent"
    return "raises" if r.behaviour == "error" else "nan"


def choices(records: list[dict], benchmarks: list[dict] | None = None) -> dict[tuple[str, str, str, str], list[Choice]]:
    """(op, dtype, mode, device) -> the implementations, best first: passing everything, then fewest registered
    divergences and fails, then the smallest worst share of the tolerance; naive formulas last."""
    table: dict[tuple, dict[str, Choice]] = defaultdict(dict)
    for r in records:
        if not r.status.ran:
            continue
        key = (r.op, r.dtype, r.mode, r.device)
        ident = r.impl_id or f"{r.framework}/{r.impl}"
        c = table[key].setdefault(ident, Choice(r.framework, r.impl, ident, bool(r.naive)))
        for name in PROPERTIES:
            c.hold(name, property_level(getattr(r, name)))
        kind = _invalid_kind(r)
        if kind:
            c.invalid[kind] += 1
        if r.invalid:
            continue
        c.valid += 1
        if r.status is Status.PASS:
            c.passed += 1
            c.worst = max(c.worst, r.tol_ratio or 0.0)
        elif r.status is Status.KNOWN:
            c.known += 1
        else:
            c.failed += 1
    speed, peaks = _speeds(benchmarks or []), _peaks(benchmarks or [])
    out = {}
    for key, by_id in table.items():
        for c in by_id.values():
            c.seconds = speed.get((c.impl_id, key[1], key[2], key[3]))
            c.peak_bytes, c.peak_at = peaks.get((c.impl_id, key[1], key[2], key[3]), (None, None))
        out[key] = sorted(by_id.values(), key=lambda c: (c.naive, not c.passes_everything, c.failed, c.known, c.worst, c.impl_id))
    return dict(sorted(out.items()))


def _speeds(benchmarks: list[dict]) -> dict[tuple[str, str, str, str], float]:
    """Benchmark medians by (implementation id, dtype, mode, device): the fastest shape's figure is not a speed for
    every shape, so the median over the benchmarked shapes of the forward pass is given, and said so."""
    times: dict[tuple, list[float]] = defaultdict(list)
    for b in benchmarks:
        info = b.get("extra_info") or {}
        if info.get("impl_id") and info.get("pass", "forward") == "forward" and b.get("stats", {}).get("median"):
            times[(info["impl_id"], info.get("dtype"), info.get("mode"), info.get("device", "cpu"))].append(b["stats"]["median"])
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def _peaks(benchmarks: list[dict]) -> dict[tuple[str, str, str, str], tuple[int, str]]:
    """Peak memory of the forward+backward pass at the largest shape it was measured at, by (implementation id, dtype,
    mode, device): the size a user choosing a chunked kernel cares about."""
    out: dict[tuple, tuple[int, int, str]] = {}
    for b in benchmarks:
        info = b.get("extra_info") or {}
        if info.get("pass") != "forward+backward" or info.get("peak_bytes") is None:
            continue
        key = (info["impl_id"], info.get("dtype"), info.get("mode"), info.get("device", "cpu"))
        size = info["shape"][0] * info["shape"][1]
        if key not in out or size > out[key][0]:
            out[key] = (size, info["peak_bytes"], "x".join(str(n) for n in info["shape"]))
    return {k: (peak, shape) for k, (_, peak, shape) in out.items()}


def row(c: Choice) -> list[str]:
    speed = f"{c.seconds * 1e6:.0f} us" if c.seconds is not None else "-"
    name = f"{c.impl} (naive, for contrast)" if c.naive else c.impl
    return [c.framework, name, c.verdict, f"{c.worst:.0%}" if c.passed else "-", c.on_invalid, c.properties_text, speed, _peak_text(c) or "-"]


def _peak_text(c: Choice) -> str:
    return f"{c.peak_bytes / 2 ** 20:.1f} MiB at {c.peak_at}" if c.peak_bytes is not None else ""


HEADER = ["framework", "implementation", "valid cases", "worst share of tolerance", "invalid input (value records)",
          "batch-invariant / deterministic", "speed (median)", "peak memory (training step)"]


FILE = "which-function.md"  # beside report.md


def short(records: list[dict]) -> list[str]:
    """For report.md: per op and dtype, how many implementations pass every valid case in every mode and device
    they ran in, and the three with the smallest worst share of the tolerance."""
    ok: dict[tuple[str, str], dict[str, tuple[bool, float]]] = defaultdict(dict)
    for (op, dtype, _mode, _device), cs in choices(records).items():
        for c in cs:
            if not c.naive:
                passed, worst = ok[(op, dtype)].get(c.impl_id, (True, 0.0))
                ok[(op, dtype)][c.impl_id] = (passed and c.passes_everything, max(worst, c.worst))
    lines = ["Per op and dtype: the implementations that pass every valid case in every mode and device they ran in, "
             "the most accurate first (`which-function.md`: each mode and device, with the worst share of tolerance, "
             "what each does with invalid input, and speed).", ""]
    for (op, dtype), by_id in sorted(ok.items()):
        good = sorted((worst, i) for i, (passed, worst) in by_id.items() if passed)
        best = ", ".join(f"`{i}` ({w:.0%})" for w, i in good[:3])
        lines.append(f"- **{op}, {dtype}**: {len(good)} of {len(by_id)}" + (f"; {best}" if best else ""))
    return lines


def pivot(chosen: dict[tuple[str, str, str, str], list[Choice]]) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """The compact form for the HTML page: a row per (op, implementation), a column per (dtype, mode, device), so
    that "bfloat16, compiled" is one column. Rows best first within each op: the most columns passed."""
    widest_first = ("float64", "float32", "float16", "bfloat16")
    columns = sorted({(dtype, mode, device) for _op, dtype, mode, device in chosen},
                     key=lambda c: (c[2], c[1], widest_first.index(c[0]) if c[0] in widest_first else len(widest_first)))
    rows: dict[tuple[str, str], dict] = {}
    for (op, dtype, mode, device), cs in chosen.items():
        for c in cs:
            row = rows.setdefault((op, c.impl_id), {"op": op, "choice": c, "cells": {}, "invalid": dict.fromkeys(INVALID_ORDER, 0)})
            row["cells"][(dtype, mode, device)] = c
            for k, n in c.invalid.items():
                row["invalid"][k] += n
    for row in rows.values():
        row["passed"] = sum(c.passes_everything for c in row["cells"].values())
        row["on_invalid"] = ", ".join(f"{k} {row['invalid'][k]}" for k in INVALID_ORDER if row["invalid"][k]) or "-"
    ordered = sorted(rows.values(), key=lambda r: (r["op"], r["choice"].naive, -r["passed"], r["choice"].impl_id))
    return columns, ordered


def cell_text(c: Choice | None) -> tuple[str, str, str]:
    """(text, css class, hover) of one pivot cell."""
    if c is None:
        return "", "", "not run"
    hover = (f"{c.verdict}; worst {c.worst:.0%} of tolerance" + (f"; {c.seconds * 1e6:.0f} us median" if c.seconds is not None else "")
             + (f"; peak {_peak_text(c)}" if c.peak_bytes is not None else "")
             + (f"; batch-invariant / deterministic: {c.properties_text}" if c.properties else ""))
    if c.passes_everything:
        return f"ok {c.worst:.0%}", "pass", hover
    if c.failed:
        return f"{c.failed} fail", "fail", hover
    return f"{c.known} known", "known", hover
