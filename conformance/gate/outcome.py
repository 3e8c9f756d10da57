"""The gate's one report: the regressions that fail it, the notes and improvements that do not, what changed in the
environment, and how much was compared; both halves of the gate (records, speed) write into it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class GateReport:
    regressions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)  # version and CPU changes between the runs
    compared: int = 0
    benchmarks_compared: int = 0

    @property
    def ok(self) -> bool:
        return not self.regressions


def render(report: GateReport, limit: int = 200) -> str:
    lines = [f"gate: compared {report.compared} records and {report.benchmarks_compared} benchmarks"]
    lines += [f"environment: {e}" for e in report.environment]
    lines += [f"note: {n}" for n in report.notes]
    if report.improvements:
        lines.append(f"improved: {len(report.improvements)} record(s), e.g. " + "; ".join(report.improvements[:3]))
    if report.ok:
        lines.append("gate: PASS, no regression")
    else:
        kinds = Counter(r.split(":", 1)[0] for r in report.regressions)
        lines.append(f"gate: FAIL, {len(report.regressions)} regression(s) ({', '.join(f'{n} {k}' for k, n in kinds.most_common())}):")
        lines += [f"  - {r}" for r in report.regressions[:limit]]
        if len(report.regressions) > limit:
            lines.append(f"  ... and {len(report.regressions) - limit} more")
    return "\n".join(lines)
