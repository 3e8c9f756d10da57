"""A broken framework costs only its own records: a worker that hangs (at import or in a kernel), exits, segfaults
or is killed outright is stopped or noticed, the other frameworks' records are written, and the run exits 3 (incomplete)
saying what was lost. A framework named with --frameworks that cannot be imported is bad input: exit 2, one line.
Every run here is bounded by a short --timeout and the subprocess time-out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from results_factory import load as load_results

from conformance.corpus import bundled

ROOT = Path(__file__).resolve().parent.parent
CASES = bundled.cases_dir() / "published-values.yaml"


def _env(fault: str) -> dict:
    return {**os.environ, "CONFORMANCE_ADAPTERS": "fault=fault_adapter", "CONFORMANCE_FAULT": fault,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}


def _run(tmp_path: Path, fault: str, *extra: str, frameworks: str = "numpy,fault") -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--cases", str(CASES), "--frameworks", frameworks,
                          "--modes", "eager", "--out", str(tmp_path / "out"), "--timeout", "8", *extra],
                         capture_output=True, text=True, cwd=ROOT, env=_env(fault), timeout=180)
    return res, time.monotonic() - started


def test_a_worker_hung_outside_any_call_costs_only_its_own_records(tmp_path):
    """A framework whose import hangs: no call was made, so nothing can be recorded for it; the run is incomplete (3)
    and says so, everybody else's records are there."""
    res, seconds = _run(tmp_path, "hang-import")
    why = "no progress for 8 s"
    assert res.returncode == 3, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is False and {x["framework"] for x in doc["incomplete"]["lost"]} == {"fault"}
    assert why in doc["incomplete"]["lost"][0]["why"] and "INCOMPLETE" in res.stderr and why in res.stderr
    assert "numpy" in {r["framework"] for r in doc["records"]}
    assert "Traceback" not in res.stderr and seconds < 120


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_a_call_that_never_returns_is_a_finding_and_the_run_completes(tmp_path, jobs):
    """The fault adapter's second call in every worker sleeps for an hour: after --timeout the watchdog kills the
    worker, that call's records are errors saying it hung (ProcessHang), a new worker takes the rest, and the run
    completes (exit 1), with one job too."""
    res, seconds = _run(tmp_path, "hang", "--jobs", jobs)
    assert res.returncode == 1, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is True and "incomplete" not in doc
    hung = [r for r in doc["records"] if (r.get("error") or {}).get("type") == "ProcessHang"]
    assert hung and all("never returned" in r["error"]["message"] and r["framework"] == "fault" for r in hung)
    numpy_calls = {(r["case"], r["op"], r["quantity"], r["dtype"]) for r in doc["records"] if r["framework"] == "numpy"}
    fault_calls = {(r["case"], r["op"], r["quantity"], r["dtype"]) for r in doc["records"] if r["framework"] == "fault"}
    assert fault_calls == numpy_calls  # every call answered: by its value, or by its hang
    assert "Traceback" not in res.stderr and "INCOMPLETE" not in res.stderr


@pytest.mark.parametrize("fault, why", [
    ("exit", "worker exited with code 7"),
    ("segv", "killed by signal SIGSEGV"),
    ("sigkill", "killed by signal SIGKILL"),
])
@pytest.mark.parametrize("jobs", ["2", "1"])
def test_a_framework_that_kills_its_process_is_a_finding_and_the_run_completes(tmp_path, fault, why, jobs):
    """The fault adapter exits, segfaults or is killed on every sparse cross-entropy, in whichever process: each such
    call's records are errors naming the signal, the case, and that it died again when run first in a fresh worker; a
    new worker takes the rest, and the run completes (exit 1, not 3): with one job too, since every framework call runs
    in a worker under the watchdog."""
    res, seconds = _run(tmp_path, fault, "--jobs", jobs)
    assert res.returncode == 1, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is True and "incomplete" not in doc
    crashed = [r for r in doc["records"] if (r.get("error") or {}).get("type") == "ProcessCrash"]
    assert crashed and all(why in r["error"]["message"] and r["status"] == "error" and r["framework"] == "fault"
                           and "again when it ran first in a fresh worker" in r["error"]["message"] for r in crashed)
    assert {r["op"] for r in crashed} == {"sparse_softmax_cross_entropy"}
    calls = {(r["case"], r["impl_id"], r["dtype"], r["mode"]) for r in crashed}
    keys = [(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"]) for r in doc["records"]]
    assert len(keys) == len(set(keys))  # a resumed worker never makes a record twice
    numpy_calls = {(r["case"], r["op"], r["quantity"], r["dtype"]) for r in doc["records"] if r["framework"] == "numpy"}
    fault_calls = {(r["case"], r["op"], r["quantity"], r["dtype"]) for r in doc["records"] if r["framework"] == "fault"}
    assert fault_calls == numpy_calls and len(calls) >= 2  # every call answered: by its value, or by its crash
    assert "Traceback" not in res.stderr and seconds < 150


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_a_crash_that_an_earlier_call_caused_is_not_the_later_calls_finding(tmp_path, jobs):
    """Every dense cross-entropy answers rightly but damages its process, and the sparse cross-entropy that follows in
    that process dies (Paddle's negative ignore_index: a write past the buffer, an abort calls later): the call that
    died is run again first in a fresh worker, answers there, and that answer is its record. No call is blamed for a
    crash it did not cause, and the run completes with every call answered."""
    res, _ = _run(tmp_path, "damage", "--jobs", jobs)
    assert res.returncode == 0, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is True
    assert not [r for r in doc["records"] if r["status"] == "error"]
    assert "pass" in {r["status"] for r in doc["records"] if r["op"] == "sparse_softmax_cross_entropy" and r["framework"] == "fault"}
    fault_calls = {(r["case"], r["op"], r["quantity"], r["dtype"]) for r in doc["records"] if r["framework"] == "fault"}
    numpy_calls = {(r["case"], r["op"], r["quantity"], r["dtype"]) for r in doc["records"] if r["framework"] == "numpy"}
    assert fault_calls == numpy_calls
    keys = [(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"]) for r in doc["records"]]
    assert len(keys) == len(set(keys))
    assert "run again first in a new worker" in res.stderr and "Traceback" not in res.stderr


def test_a_process_that_dies_between_two_calls_goes_on_in_a_new_worker(tmp_path):
    """A process damaged by an earlier call (a kernel that wrote past its buffer and answered) may die between two
    calls, where no call is running: the case it was on goes on in a new worker, its calls already made skipped, and the
    run completes with every call answered (before, the shard was lost and the run incomplete)."""
    res, _ = _run(tmp_path, "damage-between", "--jobs", "1")
    assert res.returncode == 0, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is True and not [r for r in doc["records"] if r["status"] == "error"]
    assert "between calls of case" in res.stderr
    keys = [(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"]) for r in doc["records"]]
    assert len(keys) == len(set(keys))  # no call made twice


def test_a_process_that_dies_between_two_records_of_one_call_makes_no_record_twice(tmp_path):
    """The first record of a call arrives, then the process dies (Paddle's nll_loss: its value judged, then glibc's
    heap check aborting): the crash answers only the quantities still unanswered, so every record is made once and the
    gate can read the run."""
    res, _ = _run(tmp_path, "exit-after-first-record", "--quantity", "value,grad_logits")
    assert res.returncode in (0, 1), res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    keys = [(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"]) for r in doc["records"]]
    assert len(keys) == len(set(keys)) and doc["complete"] is True
    crashed = [r for r in doc["records"] if (r.get("error") or {}).get("type") == "ProcessCrash"]
    assert crashed and all(r["quantity"] == "grad_logits" for r in crashed)
    siblings = {(r["case"], r["dtype"], r["impl_id"]) for r in crashed}
    assert any((r["case"], r["dtype"], r["impl_id"]) in siblings and r["quantity"] == "value" and r["status"] != "error"
               for r in doc["records"])  # the value of the crashed call kept its own verdict


def test_a_call_that_died_after_its_first_record_once_is_answered_by_a_fresh_worker(tmp_path):
    """A crash in a call's backward, once, after its value was sent (Paddle's SIGSEGV in a float64 gradient, met once in
    a full run): the call runs again first in a fresh worker, which answers it; the value sent before the crash stands,
    the fresh worker's copy is dropped, so every record is made once and none is an error."""
    res, _ = _run(tmp_path, "flaky-after-first-record", "--quantity", "value,grad_logits")
    assert res.returncode in (0, 1), res.stderr
    assert "run again first in a new worker" in res.stderr, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    keys = [(r["case"], r["op"], r["quantity"], r["dtype"], r["impl_id"], r["mode"]) for r in doc["records"]]
    assert len(keys) == len(set(keys)) and doc["complete"] is True
    assert not [r for r in doc["records"] if (r.get("error") or {}).get("type") == "ProcessCrash"]
    sparse = [r for r in doc["records"] if r["op"] == "sparse_softmax_cross_entropy" and r["framework"] == "fault"]
    assert {r["quantity"] for r in sparse} == {"value", "grad_logits"} and all(r["status"] != "error" for r in sparse)


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_a_full_disk_under_a_framework_is_the_environment_not_a_framework_record(tmp_path, jobs):
    """The fault adapter's second call fails with ENOSPC (its compile cache's disk is full): exit 4, one line naming the
    environment, no error record blaming the framework; what finished is kept, marked incomplete."""
    res, _ = _run(tmp_path, "enospc", "--jobs", jobs)
    assert res.returncode == 4, res.stderr
    said = [line for line in res.stderr.splitlines() if line.startswith("conformance:")]
    assert len(said) == 1 and "environment" in said[0] and "No space left on device" in said[0], res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is False and "No space left" in doc["incomplete"]["environment"]
    assert not [r for r in doc["records"] if "No space" in json.dumps(r.get("error"))]


def test_a_named_framework_that_fails_to_import_is_exit_2(tmp_path):
    res, _ = _run(tmp_path, "raise-import")
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "fault failed to import: RuntimeError: the framework's import raised (injected)" in lines[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_an_unnamed_framework_that_fails_to_import_is_lost_not_absent(tmp_path, monkeypatch):
    """Only a framework whose package is missing is 'absent'; one that is installed and raises is a lost shard."""
    from conformance.run import pool, runner

    for key, value in _env("raise-import").items():
        monkeypatch.setenv(key, value)
    sel = runner.Selection(("fault",), ("float32",), ("cpu",), ("eager",))
    outcome = pool.run([CASES], sel, jobs=1, on_event=lambda msg: None, timeout=30)
    assert not outcome.complete and "failed to import: RuntimeError" in outcome.lost[0]["why"]


def test_a_worker_that_cannot_import_the_core_leaves_its_traceback_in_the_log(tmp_path, monkeypatch, capfd):
    """A release whose NumPy is broken (`conformance history` puts the release's folder first on the workers' path):
    each worker dies importing the core. Its traceback goes to run.log, not the terminal, which says once per worker
    that it died before it started, and where to look; the run is incomplete (exit 3)."""
    from conformance.app.cli import main

    broken = tmp_path / "release" / "numpy"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('this release of numpy is broken')\n")
    monkeypatch.syspath_prepend(str(broken.parent))  # this process has NumPy already; its spawned workers start from this path
    out = tmp_path / "out"
    assert main(["run", *SMALL, "--compile-cache", str(tmp_path / "cache"), "--out", str(out)]) == 3
    terminal = capfd.readouterr()
    assert "Traceback" not in terminal.out + terminal.err
    assert "before it started (run.log says why)" in terminal.err
    assert "this release of numpy is broken" in (out / "run.log").read_text()


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_jobs_1_keeps_what_finished_on_sigterm(tmp_path):
    (tmp_path / "slow.yaml").write_text(SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "conformance.app.cli", "run", "--cases", str(tmp_path / "slow.yaml"), "--frameworks", "numpy",
                             "--jobs", "1", "--out", str(tmp_path / "out")], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        if "% overall" in line and "(0 records" not in line:  # records have come (the share moves with the clock too)
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    doc = load_results(tmp_path / "out" / "results.json")
    assert proc.returncode == 3 and doc["interrupted"] is True and doc["complete"] is False and doc["records"]


SLOW = """suite: slow
description: Large enough that the run is still busy when it is stopped.
cases:
""" + "".join(f"""  - id: big-{i}
    description: A wide batch, to keep the run busy.
    ops: [softmax, log_softmax]
    dtypes: [float32, float64]
    logits: {{generate: normal, shape: [64, 65536], seed: {i}}}
""" for i in range(8))


def test_a_memory_error_in_one_case_costs_that_case_only(tmp_path, monkeypatch, capsys):
    """The harness's own reference computation runs out of memory on one case among 50 healthy ones: that case's
    records are `error`s that name it and say the harness raised, the 50 others are kept and judged, exit 1."""
    from conformance.judge import oracle

    healthy = [{"id": f"row-{i}", "description": "a healthy softmax", "ops": ["softmax"], "logits": [[float(i), 0.5, -1.0]]}
               for i in range(50)]
    doomed = {"id": "too-big-for-the-oracle", "description": "pretends to exhaust memory", "ops": ["softmax"],
              "logits": [[0.0] * 7]}
    (tmp_path / "cases.yaml").write_text(json.dumps({"suite": "many", "description": "x", "cases": [*healthy[:25], doomed, *healthy[25:]]}))
    real = oracle.compute

    def compute(inputs, quantity):
        if inputs.logits.shape[-1] == 7:
            raise MemoryError("Unable to allocate 12.0 GiB")
        return real(inputs, quantity)

    monkeypatch.setattr(oracle, "compute", compute)  # in this process: the run is made inline (workers would not see it)
    from conformance.run import api
    from conformance.run.runner import Selection

    sel = Selection(("numpy",), ("float32",), ("cpu",), ("eager",))
    doc, outcome = api.run_corpus(api.prepare([tmp_path / "cases.yaml"], sel), sel, jobs=1, inline=True)
    records = doc["records"]
    doomed_records = [r for r in records if r["case"] == "many/too-big-for-the-oracle"]
    others = [r for r in records if r["case"] != "many/too-big-for-the-oracle"]
    assert outcome.complete
    assert {r["case"] for r in others if r["status"] == "pass"} == {f"many/row-{i}" for i in range(50)}
    assert all(r["status"] in ("pass", "unsupported") for r in others)  # NumPy has no autodiff: grad_logits unsupported
    assert doomed_records and all(r["status"] == "error" and r["error"]["where"] == "harness/oracle" for r in doomed_records)
    assert all("MemoryError in the harness (oracle of many/too-big-for-the-oracle" in r["detail"] for r in doomed_records)


SMALL = ["--frameworks", "numpy", "--modes", "eager", "--case", "published-values/*", "--jobs", "1"]


def _first_run(out: Path) -> tuple[bytes, bytes]:
    from conformance.app.cli import main

    assert main(["run", *SMALL, "--out", str(out)]) == 0
    return (out / "results.json").read_bytes(), (out / "summary.md").read_bytes()


@pytest.mark.parametrize("failing", ["results", "summary"])
def test_a_full_disk_keeps_the_previous_files_and_says_where_the_records_are(tmp_path, monkeypatch, capsys, failing):
    import errno
    import tempfile as tempfile_mod

    from conformance.app.cli import main
    from conformance.run import results as results_io

    out = tmp_path / "out"
    before = _first_run(out)
    rescue_dir = tmp_path / "rescue"
    rescue_dir.mkdir()
    monkeypatch.setattr(tempfile_mod, "tempdir", str(rescue_dir))
    real_write = Path.write_text

    def full(self, *args, **kwargs):  # the disk fills while the temporary file is written
        if self.parent == out and failing == "summary" and self.name.startswith(".summary"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, *args, **kwargs)

    real_gzip_write = results_io.gzip.GzipFile.write

    def gzip_write(self, data):  # results.json is written gzip-compressed (results.compressed)
        if failing == "results" and Path(self.fileobj.name).parent == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_gzip_write(self, data)

    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr(results_io.gzip.GzipFile, "write", gzip_write)
    capsys.readouterr()
    assert main(["run", *SMALL, "--out", str(out)]) == 4
    text = capsys.readouterr().err
    err = [line for line in text.splitlines() if line.startswith("conformance:")]  # the rest is the progress display
    assert len(err) == 1 and "No space left on device" in err[0] and "Traceback" not in text, err
    if failing == "results":
        assert (out / "results.json").read_bytes() == before[0] and (out / "summary.md").read_bytes() == before[1]
        (kept,) = rescue_dir.glob("conformance-results-*.json")
        assert str(kept) in err[0] and load_results(kept)["records"]
    else:
        assert load_results(out / "results.json")["records"] and (out / "summary.md").read_bytes() == before[1]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no hidden fragment left behind


@pytest.mark.parametrize("layout, needle", [
    ("file", "exists and is not a folder"),
    ("under-a-file", "is a file, not a folder"),
    ("results-is-a-folder", "results.json is a folder"),
    ("dev-null", "exists and is not a folder"),
    ("under-proc", "/proc/conformance-out"),  # root passes os.access there, and only mkdir says no: still exit 2
])
def test_an_output_folder_that_cannot_hold_a_run_is_exit_2_before_anything_runs(tmp_path, capsys, layout, needle):
    from conformance.app.cli import main

    out = {"file": tmp_path / "f", "under-a-file": tmp_path / "f" / "out", "results-is-a-folder": tmp_path / "out",
           "dev-null": Path("/dev/null"), "under-proc": Path("/proc/conformance-out")}[layout]
    if layout == "under-proc" and not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    if layout in ("file", "under-a-file"):
        (tmp_path / "f").write_text("a file")
    if layout == "results-is-a-folder":
        (out / "results.json").mkdir(parents=True)
    assert main(["run", *SMALL, "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and needle in err[0], err


def test_a_killed_run_leaves_no_old_results_posing_as_its_own(tmp_path):
    """The parent is killed outright mid-run: the marker stays, so the gate refuses the earlier results.json beside it
    and the previous run.log is kept."""
    from conformance.gate import records as gate

    out = tmp_path / "out"
    _first_run(out)
    old_log = (out / "run.log").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "conformance.app.cli", "run", "--frameworks", "numpy", "--out", str(out)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "run-in-progress.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=30)
    assert (out / "run-in-progress.json").exists() and (out / "run.log").read_bytes() == old_log
    report = gate.gate(out / "results.json", out / "results.json")
    assert not report.ok and any("is from an earlier run" in r for r in map(str, report.regressions))
    assert any("same file" in n for n in report.notes)


def test_the_largest_case_the_default_limits_accept_stays_under_the_memory_budget(tmp_path):
    """The heaviest op (softmax: value and gradient, the oracle's extended-precision copies) at the default element
    limit, in a worker of its own: its peak resident memory is under the stated budget, and one element more is
    refused at load."""
    from conformance.corpus.safe_yaml import DEFAULT_MAX_ELEMENTS, MEMORY_BUDGET_GB

    rows = 16
    case = {"id": "at-the-limit", "description": "the largest accepted", "ops": ["softmax"], "quantities": ["value", "grad_logits"],
            "logits": {"generate": "normal", "shape": [rows, DEFAULT_MAX_ELEMENTS // rows], "seed": 1}}
    (tmp_path / "big.yaml").write_text(json.dumps({"suite": "big", "description": "x", "cases": [case]}))
    # The worker's peak is its ru_maxrss as a child; the CLI's own is its VmHWM, not RUSAGE_SELF: Linux carries
    # ru_maxrss over exec, so RUSAGE_SELF would report the pytest worker this probe was forked from (2 GB and more
    # after the framework tests), not the probe.
    probe = ("import re, resource, sys; from conformance.app.cli import main; code = main(sys.argv[1:]); "
             "own = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
             "print('PEAK', max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)")
    res = subprocess.run([sys.executable, "-c", probe, "run", "--cases", str(tmp_path / "big.yaml"), "--frameworks", "numpy",
                          "--modes", "eager", "--jobs", "1", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    peak_gb = int(res.stdout.split("PEAK ")[1].split()[0]) / 2 ** 20  # ru_maxrss is in kB on Linux
    assert peak_gb < MEMORY_BUDGET_GB, peak_gb
    case["logits"]["shape"] = [rows + 1, DEFAULT_MAX_ELEMENTS // rows]
    (tmp_path / "big.yaml").write_text(json.dumps({"suite": "big", "description": "x", "cases": [case]}))
    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--cases", str(tmp_path / "big.yaml"), "--frameworks", "numpy",
                          "--out", str(tmp_path / "out2")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "over the limit" in res.stderr


def test_a_worker_that_dies_on_a_kind_of_input_costs_those_calls_only(tmp_path):
    """The fault worker exits on every dense cross-entropy: those calls are error records naming the exit, every other
    call of every case (the dense case's other quantities included) is answered, and the run completes."""
    res, _ = _run(tmp_path, "exit-on-dense-labels", frameworks="fault")
    assert res.returncode == 1, res.stderr
    doc = load_results(tmp_path / "out" / "results.json")
    assert doc["complete"] is True
    crashed = {r["op"] for r in doc["records"] if (r.get("error") or {}).get("type") == "ProcessCrash"}
    assert crashed == {"softmax_cross_entropy"}
    cases = {r["case"] for r in doc["records"] if r["status"] == "pass"}
    assert {"published-values/softmax-four-logits", "published-values/mean-sparse-cross-entropy-two-rows"} <= cases, cases


@pytest.mark.slow
def test_a_damaged_compile_cache_heals(tmp_path):
    """A fifth of a warm torch.compile cache emptied, halved or overwritten (and every shared object among them):
    the run discards it, compiles again and writes the same records as with the clean cache, and says so."""
    pytest.importorskip("torch")
    import shutil

    sel = ["--frameworks", "torch", "--modes", "compiled", "--dtypes", "float32", "--case", "published-values/*",
           "--case", "sparse-labels/ignore-index-*"]
    clean = tmp_path / "clean"
    first = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", *sel, "--compile-cache", str(clean), "--out", str(tmp_path / "a")],
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    damaged = tmp_path / "damaged"
    shutil.copytree(clean, damaged)
    files = sorted(p for p in (damaged / "torchinductor").rglob("*") if p.is_file() and "precompiled_headers" not in p.parts)
    chosen = [p for i, p in enumerate(files) if i % 5 == 0 or p.suffix == ".so"]
    for i, p in enumerate(chosen):
        data = p.read_bytes()
        p.write_bytes([b"", data[: len(data) // 2], b"\x00garbage\xff" * 8][i % 3])
    # and every generated module replaced by one that imports but holds none of the compiled code, so that the damage
    # is met whichever entries Inductor reads first (it recompiles by itself past some kinds of damage)
    modules = [p for p in files if p.suffix == ".py"]
    for p in modules:
        p.write_text("damaged = True\n")
    assert chosen and modules
    second = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", *sel, "--compile-cache", str(damaged), "--out", str(tmp_path / "b")],
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:]  # Inductor recovers from some damage itself; the rest is healed

    def records(name: str) -> dict:
        return {(r.case, r.op, r.quantity, r.impl_id): r for r in read(tmp_path / name / "results.json")["records"]}

    from conformance.run.results import read

    clean, healed = records("a"), records("b")
    assert {k: r.status for k, r in clean.items()} == {k: r.status for k, r in healed.items()}
    # and the same answers, digest for digest: a healed cache must never serve another graph's program (a naive
    # softmax answering with the fused one's values), nor programs that Inductor made scalar because its probe of the
    # vector ISA, found damaged in the cache, would not load (1 float32 ulp apart), which statuses alone would not show
    moved = [k for k in clean if clean[k].answer != healed[k].answer]
    assert not moved, moved


def test_what_counts_as_a_damaged_cache(tmp_path, monkeypatch):
    """Load failures of cached files count (a truncated shared object, a generated module without its code, a
    truncated pickle, g++ failing on a cached source); a compiled kernel's own bounds check, which names its source
    file in the cache too, is the framework's answer and never discards the cache (seen in a cold run: every
    out-of-range label in compiled mode discarded it)."""
    torch_adapter = pytest.importorskip("conformance.adapters.torch")
    cache = tmp_path / "torchinductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))
    monkeypatch.setattr(torch_adapter, "_heals", 0)
    CppCompileError = type("CppCompileError", (RuntimeError,), {})
    damaged = [ImportError(f"{cache}/ab/cabc.main.so: file too short"), EOFError("Ran out of input"),
               AttributeError("module 'torch._inductor.runtime.compile_tasks.cabcdefghijklmnopqrstuvwxyz0123' has no attribute 'call'"),
               CppCompileError(f"C++ compile error: g++ {cache}/f2/cf2o.main.cpp")]
    garbage = SyntaxError("invalid syntax")
    garbage.filename = f"{cache}/xy/cxyz.py"  # a generated module overwritten with garbage
    wrapped = RuntimeError("BackendCompilerFailed: backend='inductor' raised")
    wrapped.__cause__ = garbage
    damaged += [garbage, wrapped]
    user_code = SyntaxError("invalid syntax")
    user_code.filename = str(tmp_path / "mine.py")  # a syntax error of the user's own file is not the cache's
    program = [RuntimeError(f"kernel, {cache}/gt/cgtm.main.cpp:82, index out of bounds: 0 <= tmp3 < 4"), user_code,
               RuntimeError("Expected all tensors to be on the same device"), AttributeError("'NoneType' object has no attribute 'exp'")]
    assert all(torch_adapter.cache_damaged(e) for e in damaged)
    assert not any(torch_adapter.cache_damaged(e) for e in program)
    monkeypatch.setattr(torch_adapter, "_heals", torch_adapter.HEALS_PER_WORKER)  # a worker's budget spent: no more
    assert not torch_adapter.cache_damaged(damaged[0])
