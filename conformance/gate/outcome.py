"""The gate's one report: the regressions that fail it, the notes and improvements that do not, what changed in the
environment, and how much was compared; both halves of the gate (records, speed) write into it. A regression is typed
by the rule that found it (RegressionKind), so what counts them reads the kind, never the sentence."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class RegressionKind(StrEnum):
    """What a regression is about (the gate's rules, gate/records.py and gate/speed.py)."""
    INCOMPLETE = "incomplete"  # the current run is partial: interrupted, lost a worker, missing records, stale, a share
    STATUS = "status"  # a record got worse, or a new record fails
    BEHAVIOUR = "behaviour"  # same status, a worse behaviour or more NaN/inf
    ANSWER = "answer"  # same status, an answer the verdict does not measure changed
    ACCURACY = "accuracy"  # a passing record used more of its tolerance than the environment change explains
    PROPERTY = "property"  # a record lost batch invariance or determinism (bitwise, or within tolerance)
    STALE = "stale"  # a registry entry the current run shows out of date
    SPEED = "speed"  # a benchmark slower beyond this machine's noise


@dataclass(frozen=True)
class Regression:
    kind: RegressionKind
    text: str  # what moved and why it counts, for people

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass
class GateReport:
    regressions: list[Regression] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)  # version and CPU changes between the runs
    compared: int = 0
    benchmarks_compared: int = 0

    @property
    def ok(self) -> bool:
        return not self.regressions

    def fail(self, kind: RegressionKind, text: str) -> None:
        self.regressions.append(Regression(kind, text))


def render(report: GateReport, limit: int = 200) -> str:
    lines = [f"gate: compared {report.compared} records and {report.benchmarks_compared} benchmarks"]
    lines += [f"environment: {e}" for e in report.environment]
    lines += [f"note: {n}" for n in report.notes]
    if report.improvements:
        lines.append(f"improved: {len(report.improvements)} record(s), e.g. " + "; ".join(report.improvements[:3]))
    if report.ok:
        lines.append("gate: PASS, no regression")
    else:
        kinds = Counter(r.kind.value for r in report.regressions)
        lines.append(f"gate: FAIL, {len(report.regressions)} regression(s) ({', '.join(f'{n} {k}' for k, n in kinds.most_common())}):")
        lines += [f"  - {r}" for r in report.regressions[:limit]]
        if len(report.regressions) > limit:
            lines.append(f"  ... and {len(report.regressions) - limit} more")
    return "\n".join(lines)
