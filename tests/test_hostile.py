"""Hostile input, second round: results files, registry links and release pins that a careless or malicious hand
wrote. Each is refused with one line and exit 2, or rendered inert (a link that is not http(s) stays text, every
field of a pasted re-run command is quoted); nothing hostile reaches a renderer, a file name or a shell."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from results_factory import load as load_results
from results_factory import record, write

from conformance.app.cli import main
from conformance.app.history import HistoryError, parse_release
from conformance.run import check as check_mod
from conformance.run import repro
from conformance.run import results as results_io


def _doc(tmp_path: Path) -> dict:
    return load_results(write(tmp_path, "good", [record()]))


def _raw(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def _spliced(tmp_path: Path, name: str, field: str, raw_value: str) -> Path:
    """A results file whose first record's `field` is replaced by raw JSON text (what json.dump could not write)."""
    doc = _doc(tmp_path)
    doc["records"][0][field] = "@@PLACEHOLDER@@"
    return _raw(tmp_path, name, json.dumps(doc).replace('"@@PLACEHOLDER@@"', raw_value))


HOSTILE = {
    "duplicate-key": lambda tmp: _raw(tmp, "dup", json.dumps(_doc(tmp)).replace('"status": "pass"', '"status": "fail", "status": "pass"')),
    "nan-token": lambda tmp: _spliced(tmp, "nan", "max_abs_err", "NaN"),
    "infinity-token": lambda tmp: _spliced(tmp, "inf", "tol_ratio", "-Infinity"),
    "huge-integer": lambda tmp: _spliced(tmp, "int", "size", "9" * 5000),
    "lone-surrogate": lambda tmp: _spliced(tmp, "sur", "case", '"s/\\ud800"'),
    "id-longer-than-a-file-name": lambda tmp: _spliced(tmp, "long", "case", json.dumps("s/" + "a" * 5000)),
    "control-character-in-id": lambda tmp: _spliced(tmp, "ctl", "impl", json.dumps("torch.softmax\x1b[2J")),
    "error-type-not-text": lambda tmp: _spliced(tmp, "err", "error", '{"type": 1}'),
}


def _hostile_doc(tmp_path: Path, name: str, mutate) -> Path:
    doc = _doc(tmp_path)
    mutate(doc)
    return _raw(tmp_path, name, json.dumps(doc))


NESTED = {
    "stale-entry-without-link": lambda d: d.update(stale_known=[{"id": "x", "why": "w"}]),
    "packages-not-a-mapping": lambda d: d["environment"].update(frameworks={"torch": {"packages": [1]}}),
    "lost-not-a-list": lambda d: d.update(incomplete={"lost": "x"}),
    "timing-not-an-object": lambda d: d.update(timing="x"),
    "timing-of-numbers": lambda d: d.update(timing={"torch/eager": 1}),
    "selection-of-numbers": lambda d: d.update(selection={"cases": [1]}),
    "wall-seconds-text": lambda d: d.update(wall_seconds="soon"),
}


def test_an_empty_environment_is_read_and_rendered(tmp_path):
    path = _hostile_doc(tmp_path, "env", lambda d: d.update(environment={}))
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 0
    assert main(["rejudge", str(path), "--out", str(tmp_path / "rj")]) == 0


@pytest.mark.parametrize("command", ["gate", "report", "diff"])
@pytest.mark.parametrize("name", [*HOSTILE, *NESTED])
def test_a_hostile_results_file_is_one_line_and_exit_2(tmp_path, capsys, command, name):
    bad = HOSTILE[name](tmp_path) if name in HOSTILE else _hostile_doc(tmp_path, name, NESTED[name])
    good = write(tmp_path, "base", [record()])
    argv = {"gate": ["gate", "--baseline", str(good), "--current", str(bad)], "report": ["report", str(bad), "--out", str(tmp_path / "r")],
            "diff": ["diff", str(good), str(bad), "--out", str(tmp_path / "d")]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0], err


def test_a_duplicate_status_never_reads_as_pass(tmp_path):
    with pytest.raises(results_io.ResultsError, match="appears twice"):
        results_io.read(HOSTILE["duplicate-key"](tmp_path))


LINKS = ["javascript:alert(document.domain)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
         "vbscript:msgbox(1)", "//evil.example/x"]


@pytest.mark.parametrize("link", LINKS)
def test_a_link_that_is_not_http_never_becomes_a_live_link(tmp_path, link):
    doc = _doc(tmp_path)
    doc["records"][0].update(status="known", known=link, known_id="entry", known_status="fail")
    doc["known_divergences"] = [{"id": "entry", "link": link, "reason": "r", "kind": "bug"}]
    doc["stale_known"] = [{"id": "stale", "link": link, "why": "w", "exercised": 0}]
    path = _raw(tmp_path, "links", json.dumps(doc))
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 0
    pages = [tmp_path / "r" / "index.html", *sorted((tmp_path / "r" / "cases").glob("*.html"))]
    html = "\n".join(p.read_text() for p in pages)
    assert "entry" in html  # the entry is still named ...
    for scheme in ("javascript:", "data:", "vbscript:", "//evil"):  # ... but never as a link target
        assert f'href="{scheme}' not in html.lower() and f'href=" {scheme}' not in html.lower()


def test_an_http_link_stays_a_link(tmp_path):
    doc = _doc(tmp_path)
    doc["records"][0].update(status="known", known="https://github.com/o/r/issues/1", known_id="entry", known_status="fail")
    doc["known_divergences"] = [{"id": "entry", "link": "https://github.com/o/r/issues/1", "reason": "r", "kind": "bug"}]
    path = _raw(tmp_path, "ok", json.dumps(doc))
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 0
    assert 'href="https://github.com/o/r/issues/1"' in (tmp_path / "r" / "cases" / "s.html").read_text()


SHELL = "softmax$(touch PWNED)`touch PWNED2`;touch PWNED3"


@pytest.mark.parametrize("field", ["case", "framework", "impl", "op", "quantity", "dtype", "mode", "device"])
def test_every_field_of_a_rerun_command_is_quoted(field):
    r = record(impl_id="torch/softmax", **{field: SHELL})
    mine = r.but(impl_id="user/torch/softmax", impl=SHELL if field == "impl" else "mine:f")
    for command in (repro.command(r, compile_cache="/tmp/cache $(x)"), check_mod.command(mine)):
        words = shlex.split(command, comments=True)  # what a shell hands the command: each field one word, as written
        assert [w for w in words if "PWNED" in w] in ([SHELL], [])  # [] where the command names the impl by its id, or is a comment
        assert "/tmp/cache $(x)" in words or command.startswith(("conformance check", "# none:"))


@pytest.mark.parametrize("pin", ["pkg==1.0.zip", "pkg==1.0.tar.gz", "pkg==../../x", "pkg==1.0+local", "pkg==file:///x", "pkg==1.0;x",
                                 "pkg==https://e.x/p.whl", "-e==1.0"])
def test_history_takes_registry_versions_only(pin):
    with pytest.raises(HistoryError, match="exact pin"):
        parse_release(pin)


def test_history_keeps_real_versions():
    assert parse_release("jax==0.4.38 jaxlib==0.4.38").requirements == ["jax==0.4.38", "jaxlib==0.4.38"]
    assert parse_release("keras==3.10.0rc1").requirements == ["keras==3.10.0rc1"]


# --- Stale results: an output folder has one owner at a time, and no command removes a marker it did not write ---

SMALL = ["--frameworks", "numpy", "--modes", "eager", "--case", "published-values/*", "--jobs", "1"]


def _marker_of(pid: int, out: Path) -> None:
    from conformance.run import output

    (out / output.MARKER).write_text(json.dumps({"pid": pid, "ticks": output._start_ticks(pid), "host": None, "token": "someone-else",
                                                 "started": "2026-01-01T00:00:00Z"}))


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_rejudge_after_a_killed_run_leaves_the_folder_stale_for_gate_and_report(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", *SMALL, "--out", str(out)]) == 0
    _marker_of(_dead_pid(), out)  # what SIGKILL during a second run leaves
    assert main(["rejudge", str(out / "results.json")]) in (0, 1)
    assert (out / "run-in-progress.json").exists()  # not rejudge's marker to remove
    capsys.readouterr()
    assert main(["gate", "--baseline", str(out / "results.json"), "--current", str(out / "results.json")]) == 1
    assert "is from an earlier run" in capsys.readouterr().out
    assert main(["report", str(out / "results.json"), str(out / "results.json"), "--on-duplicate", "later", "--out", str(tmp_path / "r")]) in (0, 1, 3)
    assert load_results(tmp_path / "r" / "merged.json")["complete"] is False


def test_a_second_run_into_a_folder_a_live_run_holds_is_refused(tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "out"
    assert main(["run", *SMALL, "--out", str(out)]) == 0
    before = (out / "results.json").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _marker_of(holder.pid, out)
        capsys.readouterr()
        assert main(["run", *SMALL, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"another run (pid {holder.pid}" in err[0], err
        assert main(["rejudge", str(out / "results.json")]) == 2  # nor rewritten under the live run's feet
        assert (out / "results.json").read_bytes() == before and json.loads((out / "run-in-progress.json").read_text())["token"] == "someone-else"
    finally:
        holder.kill()
        holder.wait()
    assert main(["run", *SMALL, "--out", str(out)]) == 0  # its holder dead, the folder is taken over ...
    assert not (out / "run-in-progress.json").exists()  # ... and released by the run that took it
    capsys.readouterr()
    assert main(["gate", "--baseline", str(out / "results.json"), "--current", str(out / "results.json")]) == 0


def test_a_run_whose_summary_failed_is_its_own_results_not_stale(tmp_path):
    from conformance.run import output

    out = tmp_path / "out"
    out.mkdir()
    token = output.start(out)
    doc = {"records": [], "run_token": token}
    results_io.write(doc, out / "results.json")
    assert output.stale_note(out / "results.json") is None  # written by the marker's own run
    output.finish(out, "another token")
    assert (out / output.MARKER).exists()  # only the holder releases the folder
    output.finish(out, token)
    assert not (out / output.MARKER).exists()


# --- `check` on a module that ends the process, and the command line's other doors ---

@pytest.mark.parametrize("body, said", [("import sys\nsys.exit(0)\n", "called sys.exit(0)"), ("import os\nos._exit(0)\n", "ended the process (exit code 0)")])
def test_check_of_a_module_that_exits_at_import_is_exit_2_and_leaves_the_folder_as_it_was(tmp_path, capsys, body, said):
    (tmp_path / "mine.py").write_text(body + "def f(x, axis=-1):\n    return x\n")
    out = tmp_path / "out"
    assert main(["check", f"{tmp_path / 'mine.py'}:f", "--op", "softmax", "--framework", "numpy", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err
    assert not out.exists() or not any(out.iterdir())  # no marker, no partial log: nothing ran


def test_a_file_target_imports_the_modules_beside_it(tmp_path, capsys):
    (tmp_path / "my_glue.py").write_text("import numpy as np\n\ndef stable(x, axis):\n    e = np.exp(x - x.max(axis, keepdims=True))\n"
                                         "    return e / e.sum(axis, keepdims=True)\n")
    (tmp_path / "mine.py").write_text("import my_glue\n\ndef f(x, axis=-1):\n    return my_glue.stable(x, axis)\n")
    assert main(["check", f"{tmp_path / 'mine.py'}:f", "--op", "softmax", "--framework", "numpy", "--case", "published-values/*",
                 "--modes", "eager", "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize("command", ["report", "diff"])
def test_an_output_folder_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys, command):
    good = write(tmp_path, "base", [record()])
    (tmp_path / "afile").write_text("")
    argv = {"report": ["report", str(good)], "diff": ["diff", str(good), str(good)]}[command] + ["--out", str(tmp_path / "afile")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not a folder" in err[0]


@pytest.mark.parametrize("where", ["under-a-file", "a-folder", "under-proc"])
def test_a_junit_file_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, capsys, where):
    """--junit names a file: under a file, a folder itself, or under /proc (where root passes every permission test
    and only the write says no) is one line and exit 2, never a traceback."""
    if where == "under-proc" and not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    good = write(tmp_path, "base", [record()])
    (tmp_path / "afile").write_text("")
    junit = {"under-a-file": tmp_path / "afile" / "j.xml", "a-folder": tmp_path, "under-proc": Path("/proc/conformance-junit/j.xml")}[where]
    assert main(["gate", "--baseline", str(good), "--current", str(good), "--junit", str(junit)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    named = "/proc/conformance-junit" if where == "under-proc" else str(junit)  # as root the write names the folder
    assert len(err) == 1 and err[0].startswith("conformance: error:") and named in err[0], err


def test_a_run_whose_junit_file_cannot_be_written_is_refused_before_it_runs(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "out"
    assert main(["run", "--frameworks", "numpy", "--case", "published-values/*", "--junit", str(tmp_path / "afile" / "j.xml"), "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "is a file, not a folder" in err[0], err
    assert not out.exists()  # nothing ran


def test_an_output_folder_that_only_the_write_refuses_is_one_line_and_exit_2(capsys):
    """As root, os.access says yes to /proc; mkdir says no. `bench` and `run` say so in one line, exit 2."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    assert main(["bench", "--quick", "--frameworks", "numpy", "--out", "/proc/conformance-bench"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "/proc/conformance-bench" in err[0] and err[0].startswith("conformance: error:"), err


def test_a_full_disk_under_report_is_exit_4_naming_the_environment(tmp_path, capsys, monkeypatch):
    import errno

    good = write(tmp_path, "base", [record()])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "index.html"))

    monkeypatch.setattr(results_io, "write_text", full)
    assert main(["report", str(good), "--out", str(tmp_path / "r")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "environment: No space left on device" in err[0]


@pytest.mark.parametrize("command", [["history", "--framework", "numpy", "--release", "numpy==2.0.0", "--release", "numpy==2.0.1"],
                                     ["timing", "--measure"]])
def test_run_args_with_an_unbalanced_quote_are_one_line_and_exit_2(tmp_path, capsys, command):
    assert main([*command, "--run-args", "--modes 'eager", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No closing quotation" in err[0]
