"""A GitHub-style CI job replayed here: `conformance check` and `gate` under GITHUB_ACTIONS=true with --junit write
JUnit XML whose structure is what CI tools read (testsuites > testsuite > testcase, counts that add up, a failure
with its message and re-run command), `::error` annotations, the job summary, and one machine-readable last line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from results_factory import record, write

from conformance.app.main import main

WRONG = "import numpy as np\n\ndef f(x, axis=-1):\n    e = np.exp(x)\n    return e / e.sum(axis, keepdims=True) * 1.01\n"


def _junit_is_well_formed(path: Path) -> ET.Element:
    """The shape Jenkins' and GitLab's JUnit readers take: numeric counts that add up, every testcase named and classed,
    at most one failure, error or skipped element in each."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    total = 0
    for suite in root.findall("testsuite"):
        assert suite.get("name")
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        for name in ("failures", "errors", "skipped"):
            tag = name.rstrip("s") if name != "skipped" else "skipped"
            assert int(suite.get(name)) == sum(1 for c in cases if c.find(tag) is not None), (name, suite.get("name"))
        for case in cases:
            assert case.get("name") and case.get("classname")
            assert sum(case.find(t) is not None for t in ("failure", "error", "skipped")) <= 1
        total += len(cases)
    assert int(root.get("tests")) == total
    return root


def test_a_github_style_check_job(tmp_path, capsys, monkeypatch):
    (tmp_path / "mine.py").write_text(WRONG)
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    junit = tmp_path / "junit.xml"
    code = main(["check", f"{tmp_path / 'mine.py'}:f", "--op", "softmax", "--framework", "numpy", "--case", "published-values/*",
                 "--modes", "eager", "--dtypes", "float32", "--junit", str(junit), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    errors = [line for line in out if line.startswith("::error title=")]
    assert errors and "re-run: conformance check" in errors[0].replace("%0A", "\n")
    assert "YOURS FAIL" in step_summary.read_text()
    summary = json.loads(out[-1].removeprefix("conformance-summary "))
    assert out[-1].startswith("conformance-summary ") and summary["exit"] == 1 and summary["command"] == "check"
    root = _junit_is_well_formed(junit)
    failures = root.findall(".//testcase/failure")
    assert failures and "re-run: conformance check" in failures[0].text and failures[0].get("message")


def test_quiet_leaves_only_the_machine_line(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(WRONG)
    code = main(["check", f"{tmp_path / 'mine.py'}:f", "--op", "softmax", "--framework", "numpy", "--case", "published-values/*",
                 "--modes", "eager", "--dtypes", "float32", "--quiet", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert code == 1 and len(lines) == 1 and json.loads(lines[0].removeprefix("conformance-summary "))["fail"] >= 1
    assert captured.err == ""  # no progress either


def test_a_github_style_gate_job(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    base = write(tmp_path, "base", [record()])
    worse = write(tmp_path, "cur", [record(status="fail", detail="at [0]: got 1, oracle 2")])
    junit = tmp_path / "gate.xml"
    assert main(["gate", "--baseline", str(base), "--current", str(worse), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("::error title=conformance gate::status") for line in out)
    assert json.loads(out[-1].removeprefix("conformance-summary "))["regressions"] == 1
    root = _junit_is_well_formed(junit)
    assert root.get("failures") == "1" and root.find(".//failure").get("type") == "status"
    assert main(["gate", "--baseline", str(base), "--current", str(base), "--junit", str(junit), "--quiet"]) == 0
    assert _junit_is_well_formed(junit).get("failures") == "0"


def test_an_incomplete_run_is_never_green_in_junit():
    from conformance.report.ci import junit_xml

    doc = {"records": [record()], "complete": False, "incomplete": {"lost": [{"shard": "torch/eager", "why": "killed by signal SIGKILL"}]}}
    root = ET.fromstring(junit_xml(doc))
    assert int(root.get("failures")) == 1 and "SIGKILL" in root.find(".//failure").get("message")
