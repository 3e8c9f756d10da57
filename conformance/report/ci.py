"""What a CI system reads: JUnit XML (GitLab, Jenkins, Azure and most dashboards), GitHub Actions annotations and
job summary, and one machine-readable line. A test case is one record group: one call of one implementation
(case, op, dtype, mode, device), its quantities the records inside it; it fails where one of them is an unexplained
fail or error, carrying the message and the command that re-runs it, and is skipped where every record is
unsupported. Registered divergences pass, and say so."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

from ..adapters import user as user_adapter
from ..model.names import STATUSES
from ..model.record import message, unexplained
from ..model.status import Status
from ..run import check as check_mod
from ..run import repro

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # not allowed in XML 1.0


def _text(value: object) -> str:
    return _XML_BAD.sub("?", str(value))


def rerun(r: dict) -> str:
    """The command that re-runs one record: `conformance check` for a user's function, `conformance run` otherwise."""
    return check_mod.command(r) if r.framework == user_adapter.NAME else repro.command(r)


def _counted(r: dict, include_naive: bool) -> bool:
    return include_naive or not r.naive


def groups(records: list[dict]) -> dict[tuple, list[dict]]:
    """Records by call: (framework, implementation id, case, op, dtype, mode, device)."""
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        out[(r.framework, r.impl_id or r.impl, r.case, r.op, r.dtype, r.mode, r.device)].append(r)
    return out


def junit_xml(doc: dict, suite_name: str = "conformance", include_naive: bool = False) -> str:
    """The run as JUnit XML: a <testsuite> per framework, a <testcase> per record group."""
    by_framework: dict[str, list[tuple[tuple, list[dict]]]] = defaultdict(list)
    for key, records in sorted(groups(doc["records"]).items()):
        by_framework[key[0]].append((key, records))
    root = ET.Element("testsuites", name=_text(suite_name))
    totals: Counter = Counter()
    for framework, calls in sorted(by_framework.items()):
        suite = ET.SubElement(root, "testsuite", name=_text(f"{suite_name}.{framework}"))
        counts: Counter = Counter()
        for (_, impl_id, case, op, dtype, mode, device), records in calls:
            case_el = ET.SubElement(suite, "testcase", classname=_text(f"{framework}.{impl_id}"), name=_text(f"{case} {op} {dtype} {mode} {device}"),
                                    time=f"{max(float(r.seconds or 0) for r in records):.6f}")
            counts["tests"] += 1
            bad = [r for r in records if unexplained(r) and _counted(r, include_naive)]
            if bad:
                kind = "failure" if any(r.status is Status.FAIL for r in bad) else "error"
                counts["failures" if kind == "failure" else "errors"] += 1
                first = bad[0]
                el = ET.SubElement(case_el, kind, message=_text(f"{first['quantity']}: {message(first)}"[:500]), type=_text(first["status"]))
                el.text = _text("\n".join(f"{r.status} {r.quantity}: {message(r)}\n  re-run: {rerun(r)}" for r in bad))
            elif all(not r.status.ran for r in records):
                counts["skipped"] += 1
                ET.SubElement(case_el, "skipped", message=_text(records[0].get("reason") or "unsupported"))
            else:
                known = sorted({r.known_id for r in records if r.status is Status.KNOWN and r.known_id})
                if known:
                    ET.SubElement(case_el, "system-out").text = _text(f"registered divergence: {', '.join(known)}")
        for name in ("tests", "failures", "errors", "skipped"):
            suite.set(name, str(counts[name]))
        totals.update(counts)
    for name in ("tests", "failures", "errors", "skipped"):
        root.set(name, str(totals[name]))
    if doc.get("complete") is False:
        # an incomplete run is never green: one test case says what was lost
        suite = ET.SubElement(root, "testsuite", name=_text(f"{suite_name}.completeness"), tests="1", failures="1", errors="0", skipped="0")
        lost = "; ".join(f"{x.get('shard')}: {x.get('why')}" for x in (doc.get("incomplete") or {}).get("lost", [])) or "interrupted"
        ET.SubElement(ET.SubElement(suite, "testcase", classname="conformance", name="the run completed"), "failure",
                      message=_text(f"incomplete run: {lost}"[:500]))
        root.set("tests", str(totals["tests"] + 1))
        root.set("failures", str(totals["failures"] + 1))
    return _document(root)


def gate_junit_xml(regressions: list[tuple[str, str]], compared: int) -> str:
    """The gate's verdict as JUnit XML: a failing test case per regression, given as (kind, text) (its kind the
    class), or one passing case."""
    root = ET.Element("testsuites", name="conformance gate", tests=str(max(1, len(regressions))), failures=str(len(regressions)))
    suite = ET.SubElement(root, "testsuite", name="conformance gate", tests=root.get("tests"), failures=root.get("failures"),
                          errors="0", skipped="0")
    for i, (kind, what) in enumerate(regressions):
        regression = f"{kind}: {what}"
        case = ET.SubElement(suite, "testcase", classname=_text(f"gate.{kind}"), name=_text(f"{i + 1}: {what[:200]}"))
        ET.SubElement(case, "failure", message=_text(regression[:500]), type=_text(kind)).text = _text(regression)
    if not regressions:
        ET.SubElement(suite, "testcase", classname="gate", name=f"no regression in {compared} records")
    return _document(root)


def _document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def annotation(title: str, body: str, level: str = "error") -> str:
    """One GitHub workflow command, escaped as GitHub reads it: % and newlines in the body, also : and , in the title."""
    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    return f"::{level} title={escape(title).replace(':', '%3A').replace(',', '%2C')}::{escape(body)}"


def github_annotations(doc: dict, include_naive: bool = False, limit: int = 50) -> list[str]:
    """One `::error` line per failing record group (at most `limit`, then one line saying how many more)."""
    lines = []
    failing = [(key, [r for r in rs if unexplained(r) and _counted(r, include_naive)]) for key, rs in sorted(groups(doc["records"]).items())]
    failing = [(key, bad) for key, bad in failing if bad]
    for (framework, impl_id, case, op, dtype, mode, device), bad in failing[:limit]:
        body = f"{op} {dtype} {mode} {device}: " + "; ".join(f"{r.quantity}: {message(r)}" for r in bad) + f"\nre-run: {rerun(bad[0])}"
        lines.append(annotation(f"{bad[0]['status']}: {framework} {impl_id} on {case}", body))
    if len(failing) > limit:
        lines.append(annotation("conformance", f"{len(failing) - limit} more failing record groups in results.json", "warning"))
    if doc.get("complete") is False:
        lines.append(annotation("conformance", "incomplete run: results.json holds what finished and says what is missing"))
    return lines


def machine_summary(doc: dict, exit_code: int, command: str = "run", include_naive: bool = False) -> str:
    """One line of JSON: what a script needs without reading results.json."""
    counts = Counter(r.status for r in doc["records"])
    counted = [r for r in doc["records"] if unexplained(r) and _counted(r, include_naive)]
    return json.dumps({"command": command, "exit": exit_code, "complete": doc.get("complete", True) is not False,
                       "records": len(doc["records"]), **{s: counts.get(s, 0) for s in STATUSES},
                       "unexplained": len(counted), "naive_unexplained": sum(1 for r in doc["records"] if unexplained(r) and r.naive)},
                      separators=(",", ":"))
