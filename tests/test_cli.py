"""The command line end to end: exit codes, one-line errors, nothing already written is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from results_factory import load as load_results
from results_factory import outcomes

from conformance.app.cli import main
from conformance.corpus import bundled

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, "-m", "conformance.app.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_version():
    out = run("--version")
    assert out.returncode == 0 and "conformance" in out.stdout


@pytest.mark.parametrize("body, needle", [
    ("suite: s\ncases:\n  - {id: a, ops: [softmax], logits: [1.0]}\n", "field 'description'"),
    ("suite: s\ncases: [\n", "not valid YAML"),
])
def test_bad_case_file_exits_2_with_one_line(tmp_path, body, needle):
    (tmp_path / "bad.yaml").write_text(body)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{\"keep\": true}")
    res = run("run", "--cases", str(tmp_path), "--frameworks", "numpy", "--out", str(out))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr
    assert load_results(out / "results.json") == {"keep": True}  # untouched


@pytest.mark.parametrize("args, needle", [
    (("run", "--jobs", "0"), "jobs must be a whole number of at least 1"),
    (("run", "--dtypes", "float8"), "unknown dtype 'float8'"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
])
def test_bad_usage_exits_2_with_one_line(args, needle):
    res = run(*args)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0] and "--help" in lines[0], res.stderr


def test_unknown_framework_exits_2():
    res = run("run", "--frameworks", "mxnet", "--out", "/nonexistent")
    assert res.returncode == 2 and "unknown framework 'mxnet'" in res.stderr and "Traceback" not in res.stderr


def test_missing_framework_exits_2(monkeypatch, capsys):
    import conformance.app.cli as cli

    monkeypatch.setattr(cli, "missing_packages", lambda name: ["torch"] if name == "torch" else [])
    assert main(["run", "--frameworks", "torch", "--out", "/nonexistent"]) == 2
    assert "torch is not installed" in capsys.readouterr().err


def test_absent_framework_is_skipped_not_a_crash(monkeypatch, tmp_path):
    import conformance.app.cli as cli

    monkeypatch.setattr(cli, "missing_packages", lambda name: [] if name == "numpy" else [name])
    code = main(["run", "--cases", str(bundled.cases_dir() / "published-values.yaml"), "--out", str(tmp_path), "--jobs", "1"])
    doc = load_results(tmp_path / "results.json")
    assert code == 0
    assert "absent" in doc["environment"]["frameworks"]["torch"]
    assert {r["framework"] for r in doc["records"]} == {"numpy"}


def test_run_writes_spec_results(tmp_path):
    res = run("run", "--cases", str(bundled.cases_dir() / "extreme-logits.yaml"), "--frameworks", "numpy", "--out", str(tmp_path))
    doc = load_results(tmp_path / "results.json")
    assert doc["schema"] == "softmax-conformance/results/1"
    rec = doc["records"][0]
    for field in ("case", "op", "quantity", "dtype", "framework", "impl", "mode", "device", "status", "behaviour",
                  "max_abs_err", "max_rel_err", "max_ulp", "size", "nan_count", "inf_count", "error", "known"):
        assert field in rec
    # the naive formula overflows on huge logits, and the bundled registry explains it (so the run exits 0)
    naive = [r for r in doc["records"] if r["naive"] and r["quantity"] == "value" and r["mode"] == "eager" and r["case"].endswith("huge-positive-row")
             and r["op"] == "softmax"]
    assert naive and all(r["status"] == "known" and r["known_id"] == "naive-formula-on-extreme-logits" for r in naive), naive
    fused = [r for r in doc["records"] if not r["naive"] and r["quantity"] == "value" and r["mode"] == "eager"]
    assert fused and all(r["status"] == "pass" for r in fused)
    assert res.returncode == 0, res.stderr[-600:]
    assert (tmp_path / "summary.md").exists()


@pytest.mark.parametrize("framework,folder", [("jax", "jax"), ("torch", "torchinductor"), ("tensorflow", "tensorflow"), ("mlx", "mlx-tmp")])
def test_a_warm_compile_cache_changes_nothing_but_the_time(tmp_path, framework, folder, selected_frameworks):
    """The same records from a cold and a warm persistent compilation cache, and the cache is really written."""
    if framework not in selected_frameworks:
        pytest.skip(f"{framework} not selected or not installed")
    cases = str(bundled.cases_dir() / "published-values.yaml")
    cache = tmp_path / "cache"
    for out in ("cold", "warm"):
        res = run("run", "--cases", cases, "--case", "published-values/softmax-four-logits", "--quantity", "value", "--frameworks", framework,
                  "--dtypes", "float32", "--compile-cache", str(cache), "--out", str(tmp_path / out))
        assert res.returncode == 0, res.stdout + res.stderr
    assert outcomes(tmp_path / "cold" / "results.json") == outcomes(tmp_path / "warm" / "results.json")
    written = [p for p in (cache / folder).rglob("*") if p.is_file()]
    assert written, f"nothing was cached under {cache / folder}"
    assert load_results(tmp_path / "warm" / "results.json")["environment"]["frameworks"][framework]["compile_cache"] == str(cache)


def test_a_failure_can_be_rerun_from_another_folder(tmp_path):
    """Without the registry's naive-formula entries the NumPy naive softmax fails on huge logits: the FAIL line carries
    the command, details.md (linked from report.md) the snippet; both work from another folder and say the verdict."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("divergences: []\n")
    res = run("run", "--cases", str(bundled.cases_dir() / "extreme-logits.yaml"), "--case", "extreme-logits/huge-positive-row",
              "--frameworks", "numpy", "--modes", "eager", "--out", str(tmp_path / "out"), "--known", str(empty), "--include-naive")
    assert res.returncode == 1, res.stderr
    command = next(line.split("re-run: ", 1)[1] for line in res.stdout.splitlines() if "re-run: " in line)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rerun = subprocess.run(command.replace("conformance run", f"{sys.executable} -m conformance.app.cli run", 1), shell=True,
                           capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert rerun.returncode == 0 and "1 records" in rerun.stdout, rerun.stdout + rerun.stderr  # the registry explains it there
    assert main(["report", str(tmp_path / "out" / "results.json"), "--out", str(tmp_path / "rep")]) == 0
    assert "details.md" in (tmp_path / "rep" / "report.md").read_text()
    md = (tmp_path / "rep" / "details.md").read_text()
    snippet = md.split("```python\n", 1)[1].split("\n```", 1)[0]
    (elsewhere / "snippet.py").write_text(snippet)
    out = subprocess.run([sys.executable, "snippet.py"], capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "verdict   fail" in out.stdout and "oracle" in out.stdout and "tolerance" in out.stdout, out.stdout


def test_list_groups_each_framework_by_op_with_every_door_and_naive_last():
    from conformance.adapters.catalogue import describe
    from conformance.app.cli import _listing

    lines = _listing(describe("numpy")).splitlines()
    assert lines[0].startswith("numpy ") and "devices: cpu" in lines[0]
    headers = [line.strip() for line in lines if line.startswith("  ") and not line.startswith("    ")]
    assert headers == ["softmax", "log_softmax", "softmax_cross_entropy", "sparse_softmax_cross_entropy", "masked_softmax", "masked_log_softmax",
                       "masked_softmax_cross_entropy", "masked_sparse_softmax_cross_entropy", "linear_cross_entropy", "logsumexp"]
    softmax = lines[lines.index("  softmax") + 1:lines.index("  log_softmax")]
    assert [line.split()[0] for line in softmax] == ["numpy/scipy/softmax", "numpy/naive/softmax"]


def test_timing_prints_where_a_runs_time_went_and_refuses_bad_input(tmp_path, capsys):
    cases = bundled.cases_dir() / "published-values.yaml"
    assert main(["run", "--cases", str(cases), "--frameworks", "numpy", "--modes", "eager", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["timing", str(tmp_path / "results.json")]) == 0
    out = capsys.readouterr().out
    assert "worker-seconds in 1 workers" in out and "| oracle |" in out and "| numpy/eager |" in out
    assert main(["timing"]) == 2 and "name results.json files, or --measure" in capsys.readouterr().err
    (tmp_path / "cache").mkdir()
    assert main(["timing", "--measure", "--out", str(tmp_path)]) == 2  # a cold run needs an empty cache folder


def test_timing_measure_makes_a_cold_and_two_warm_runs_each_in_a_fresh_process(tmp_path, capsys):
    """--measure runs `conformance run` three times into OUT (cold, warm, warm-planned), each with the --run-args,
    sharing one compile cache that the cold run starts empty, and breaks each down."""
    cases = bundled.cases_dir() / "published-values.yaml"
    run_args = f"--cases {cases} --frameworks numpy --modes eager --dtypes float32"
    assert main(["timing", "--measure", "--out", str(tmp_path), "--run-args", run_args]) == 0
    out = capsys.readouterr().out
    for name in ("cold", "warm", "warm-planned"):
        doc = load_results(tmp_path / name / "results.json")
        assert doc["complete"] and {r["framework"] for r in doc["records"]} == {"numpy"} and {r["dtype"] for r in doc["records"]} == {"float32"}
        assert f"timing: {name}: into {tmp_path / name}" in out and f"{tmp_path / name / 'results.json'}" in out
    assert (tmp_path / "cache").is_dir()
    assert main(["timing", "--measure", "--out", str(tmp_path / "again"), "--run-args", "--frameworks nope"]) == 2


def test_the_rerun_command_carries_the_compile_cache(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("divergences: []\n")
    cache = tmp_path / "my cache"
    res = run("run", "--case", "extreme-logits/huge-positive-row", "--frameworks", "numpy", "--modes", "eager", "--out", str(tmp_path / "out"),
              "--known", str(empty), "--include-naive", "--compile-cache", str(cache))
    assert res.returncode == 1
    command = next(line.split("re-run: ", 1)[1] for line in res.stdout.splitlines() if "re-run: " in line)
    assert f"--compile-cache '{cache}'" in command and "--cases" not in command  # a bundled case needs no --cases


def test_help_version_and_a_typo_import_nothing_heavy():
    """`--help`, `--version` and a mistyped command are answered by the light parser (app/parser.py): no framework,
    no NumPy, no ml_dtypes is imported (docs/performance.md has the measured times)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom conformance.app.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
             "heavy = sorted(m for m in ('numpy', 'ml_dtypes', 'torch', 'jax', 'tensorflow', 'yaml', 'scipy', 'matplotlib') if m in sys.modules)\n"
             "print('HEAVY', heavy, code, file=sys.stderr)\n")
    for argv, code in ((["--help"], 0), (["--version"], 0), (["rnu"], 2), (["run", "--help"], 0), (["check", "--help"], 0)):
        res = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60)
        last = res.stderr.strip().splitlines()[-1]
        assert last == f"HEAVY ['yaml'] {code}" or last == f"HEAVY [] {code}", (argv, res.stderr[-500:])


def test_a_worker_imports_ml_dtypes_only_for_a_bfloat16_array():
    """ml_dtypes 0.7's import takes 1.0-1.2 s: `conformance run` and each of its workers imported it at start, though a
    run without bfloat16 never makes such an array. It is now imported by the first bfloat16 array, and the format's
    constants are the library's own."""
    import subprocess
    import sys

    probe = ("import sys\nimport conformance.run.pool\nimport conformance.corpus.cases\nprint('BEFORE', 'ml_dtypes' in sys.modules)\n"
             "from conformance.model import dtypes as dt\nimport ml_dtypes\n"
             "print('MAX', dt.fmt('bfloat16').max == float(ml_dtypes.finfo(ml_dtypes.bfloat16).max))\n"
             "print('DTYPE', dt.fmt('bfloat16').np_dtype == ml_dtypes.bfloat16)\n")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["BEFORE", "False", "MAX", "True", "DTYPE", "True"], res.stderr[-800:]


def test_list_reuses_a_description_while_what_it_depends_on_is_the_same(tmp_path, monkeypatch):
    """`conformance list` keeps each framework's description in the cache folder: the next list reads it instead of
    importing the framework (10 frameworks' imports take 13 s on 2 cores); a change to a setting that picks devices
    or backends, or a damaged file, describes it afresh."""
    from conformance.adapters.catalogue import describe_all

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr("conformance.adapters.catalogue.accelerator_possible", lambda: True)  # a GPU machine: imported or kept
    (first,) = describe_all(["numpy"], cache=tmp_path)
    kept = tmp_path / "numpy.json"
    doc = json.loads(kept.read_text())
    assert doc["description"]["version"] == first.version and first.implementations
    doc["description"]["version"] = "planted"  # what a reuse would show, and a fresh description never
    kept.write_text(json.dumps(doc))
    (again,) = describe_all(["numpy"], cache=tmp_path)
    assert again.version == "planted" and again.implementations == first.implementations
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    (changed,) = describe_all(["numpy"], cache=tmp_path)
    assert changed.version == first.version
    kept.write_text("{not json")
    (damaged,) = describe_all(["numpy"], cache=tmp_path)
    assert damaged.version == first.version and json.loads(kept.read_text())["description"]["version"] == first.version


def test_list_reads_a_framework_without_importing_it_where_that_says_the_same(monkeypatch):
    """Where no GPU can be, `list` describes a framework from its adapter and the package metadata: the same
    implementations and devices as importing it in a process of its own, and none of the frameworks imported. Where a
    GPU may be, or where an adapter's implementations need its framework, the framework is asked."""
    import subprocess
    import sys

    from conformance.adapters import catalogue

    monkeypatch.setattr(catalogue, "accelerator_possible", lambda: False)
    light, (asked,) = catalogue.described_without_import("numpy"), catalogue.describe_all(["numpy"], imported=True)
    assert light is not None and light.implementations == asked.implementations and light.devices == asked.devices == ("cpu",)
    assert "numpy " in light.version and "scipy " in light.version
    monkeypatch.setattr("conformance.adapters.numpy.implementations", lambda: 1 / 0)  # needs what only a load sets
    assert catalogue.described_without_import("numpy") is None
    monkeypatch.setattr(catalogue, "accelerator_possible", lambda: True)
    assert catalogue.described_without_import("torch") is None
    if sys.platform.startswith("linux") and not _gpu_files():  # the CLI itself, on a machine like CI's
        probe = ("import sys\nfrom conformance.app.main import main\nmain(['list'])\n"
                 "print('HEAVY', sorted(m for m in ('torch', 'jax', 'tensorflow', 'paddle', 'mlx', 'tinygrad', 'onnxruntime', 'keras') "
                 "if m in sys.modules), file=sys.stderr)\n")
        res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert res.stderr.strip().splitlines()[-1] == "HEAVY []", res.stderr[-500:]
        assert "numpy/scipy/softmax" in res.stdout


def _gpu_files() -> bool:
    from pathlib import Path

    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/kfd").exists() or Path("/dev/dxg").exists()


def test_list_of_an_unknown_framework_is_one_line_and_exit_2(capsys):
    assert main(["list", "nosuchframework"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown framework 'nosuchframework'" in err[0]


def test_no_naive_leaves_the_formulas_out_and_the_gate_compares_the_rest(tmp_path, capsys):
    """`run --no-naive` (CI's gate run) writes the frameworks' own functions only; gated against a run that has the
    naive formulas, it is complete within its selection and says what it left out."""
    common = ["--frameworks", "numpy", "--case", "extreme-logits/*", "--jobs", "1", "--quiet"]
    assert main(["run", *common, "--out", str(tmp_path / "all")]) == 0
    assert main(["run", *common, "--no-naive", "--out", str(tmp_path / "own")]) == 0
    every, own = (load_results(tmp_path / n / "results.json")["records"] for n in ("all", "own"))
    assert any(r["naive"] for r in every) and own and not any(r["naive"] for r in own)
    assert len(own) == sum(not r["naive"] for r in every)
    capsys.readouterr()
    assert main(["gate", "--baseline", str(tmp_path / "all" / "results.json"), "--current", str(tmp_path / "own" / "results.json")]) == 0
    assert "--no-naive or --quick (the naive formulas left out)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["run", *common, "--no-naive", "--include-naive", "--out", str(tmp_path / "both")])
    assert refused.value.code == 2
