"""After `run`, `check` or `gate`: what CI reads besides the person's lines. `--junit FILE` writes JUnit XML; under
GitHub Actions (GITHUB_ACTIONS=true) the failing record groups become `::error` annotations and the summary is
appended to the job summary ($GITHUB_STEP_SUMMARY); the last line on stdout is one line of JSON
(`conformance-summary {...}`), which `--quiet` leaves alone on stdout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..gate.outcome import GateReport
from ..report import ci
from ..run import results as results_io

SUMMARY_PREFIX = "conformance-summary "


def emit(doc: dict, code: int, command: str, junit: Path | None = None, include_naive: bool = False,
         job_summary: str | None = None) -> None:
    """JUnit XML where asked, GitHub annotations and job summary where running under GitHub Actions, then the one
    machine-readable line. Raises OSError where a file cannot be written (the command line says it: exit 4)."""
    if junit is not None:
        results_io.write_text(Path(junit), ci.junit_xml(doc, f"conformance {command}", include_naive))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in ci.github_annotations(doc, include_naive):
            print(line)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary and job_summary:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(job_summary.rstrip() + "\n")
    print(SUMMARY_PREFIX + ci.machine_summary(doc, code, command, include_naive), flush=True)


def emit_gate(report: GateReport, junit: Path | None = None) -> None:
    """The gate's verdict for CI: a JUnit test case per regression (one passing case where there is none), `::error`
    annotations under GitHub Actions, and the one machine-readable line."""
    if junit is not None:
        results_io.write_text(Path(junit), ci.gate_junit_xml([(r.kind.value, r.text) for r in report.regressions], report.compared))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for regression in report.regressions[:50]:
            print(ci.annotation("conformance gate", str(regression)))
    print(SUMMARY_PREFIX + json.dumps({"command": "gate", "exit": 0 if report.ok else 1, "compared": report.compared,
                                       "regressions": len(report.regressions), "notes": len(report.notes),
                                       "improvements": len(report.improvements)}, separators=(",", ":")), flush=True)
