"""The GPU code paths that can run without a GPU: the CuPy adapter against a NumPy stand-in for CuPy (tests/fake_cupy),
and the prepared GPU command's dry run. On a machine with a GPU, `pytest -m gpu` runs the real thing."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from results_factory import load as load_results

from conformance.adapters.base import Unsupported
from conformance.corpus import bundled
from conformance.corpus.cases import load
from conformance.run.api import judge_case
from conformance.run.runner import Selection

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def stand_in_cupy(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fake_cupy"))
    for name in [m for m in sys.modules if m.split(".")[0] in ("cupy", "cupyx")]:
        monkeypatch.delitem(sys.modules, name)
    adapter = importlib.reload(importlib.import_module("conformance.adapters.cupy"))
    adapter.load(None)
    return adapter


def test_cupy_adapter_computes_what_the_oracle_says(stand_in_cupy):
    adapter = stand_in_cupy
    assert adapter.devices() == ["gpu"] and "cpu" in adapter.device_problems()
    cases = load([bundled.cases_dir() / "published-values.yaml", bundled.cases_dir() / "reductions.yaml", bundled.cases_dir() / "masked-softmax.yaml"])
    records = [r for c in cases for r in judge_case(adapter, c, Selection(("cupy",), ("float32", "float64", "bfloat16"), ("gpu",), ("eager",)), ["gpu"])]
    values = [r for r in records if r["quantity"] == "value" and r["dtype"] != "bfloat16"]
    assert values and all(r["status"] == "pass" for r in values), [(r["case"], r["impl"], r.get("detail")) for r in values if r["status"] != "pass"]
    assert all(r["status"] == "unsupported" for r in records if r["quantity"] != "value" or r["dtype"] == "bfloat16")
    on_cpu = judge_case(adapter, cases[0], Selection(("cupy",), ("float32",), ("cpu",), ("eager",)), ["cpu"])
    assert on_cpu and all(r["status"] == "unsupported" and "GPU only" in r["reason"] for r in on_cpu)


def test_cupy_benchmark_call_is_synchronised_and_right(stand_in_cupy):
    import numpy as np

    from conformance.speed import measure as speed

    adapter = stand_in_cupy
    inputs = speed.bench_inputs("softmax", "float32", (4, 6))
    impl = next(i for i in adapter.implementations() if i.op == "softmax")
    got = np.asarray(adapter.benchmark_call(impl, inputs, "eager", "gpu", False)())
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(Unsupported):
        adapter.benchmark_call(impl, inputs, "compiled", "gpu", False)


def test_the_prepared_gpu_command_dry_run(tmp_path):
    """`conformance gpu --dry-run`: every step of the GPU job on the CPU, into one folder, with gpu.json saying what ran."""
    import subprocess

    res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "gpu", "--dry-run", "--frameworks", "numpy,torch", "--minutes", "4",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "the GPU parts are skipped" in res.stdout
    doc = load_results(tmp_path / "gpu.json")
    assert doc["dry_run"] and doc["steps"] and all(s["exit"] == 0 for s in doc["steps"]) and doc["report"]["exit"] == 0
    assert (tmp_path / "eager" / "results.json").exists()
    if "torch" in doc["frameworks"]:  # a framework with a GPU path: the GPU benchmarks step ran too
        assert (tmp_path / "bench" / "benchmarks.json").exists()
    assert (tmp_path / "index.html").exists() and (tmp_path / "report.md").exists()


def test_a_cuda_device_side_assert_is_the_records_error_not_a_lost_worker(monkeypatch):
    """On an H200 an out-of-range class index made torch's worker crash at the read-back (the assert surfaces at the
    next synchronisation), losing the case's records. The adapter now returns it as each quantity's error (for an
    invalid label that is the expected behaviour). Simulated here at the same place, on a valid case, where the
    CPU kernel itself would not raise."""
    torch_adapter = pytest.importorskip("conformance.adapters.torch")
    pytest.importorskip("torch")
    torch_adapter.load(None)
    case = next(c for c in load([bundled.cases_dir() / "published-values.yaml"]) if "sparse_softmax_cross_entropy" in c.ops)

    def poisoned(t):
        raise RuntimeError("CUDA error: device-side assert triggered\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.")

    monkeypatch.setattr(torch_adapter, "_numpy", poisoned)
    records = judge_case(torch_adapter, case, Selection(("torch",), ("float32",), ("cpu",), ("eager",)), ["cpu"])
    judged = [r for r in records if r["status"] != "unsupported"]
    assert judged and all(r["behaviour"] == "error" and "device-side assert" in r["error"]["message"] for r in judged)
    assert all(r["status"] == "error" for r in judged)  # a valid case: the error is a finding, not a pass
    monkeypatch.setattr(torch_adapter, "_numpy", lambda t: (_ for _ in ()).throw(RuntimeError("a harness bug")))
    with pytest.raises(RuntimeError, match="harness bug"):  # anything else still stops the worker, loudly
        judge_case(torch_adapter, case, Selection(("torch",), ("float32",), ("cpu",), ("eager",)), ["cpu"])


def test_the_committed_gpu_run_is_explained_by_the_registry(tmp_path):
    """reports/gpu/ holds what a lent H200 produced. Every fail in it is registered (rejudge re-applies the registry,
    so an entry removed or narrowed shows up here as exit 1; --oracle judges the stored outputs by today's oracle
    first, so a definition the oracle learned since the run applies to it too)."""
    from conformance.app.cli import main
    from conformance.run.results import read

    for run in ("eager", "compiled"):
        code = main(["rejudge", "--oracle", str(ROOT / "reports" / "gpu" / run / "results.json"), "--out", str(tmp_path / run)])
        doc = read(tmp_path / run / "results.json")  # still a valid results file
        assert code == 3 and doc["complete"] is False  # the budget cut the run short, and it says so
        assert doc["records"] and not [r for r in doc["records"] if r["status"] in ("fail", "error")]
        assert any(r["device"] == "gpu" and r["status"] == "pass" for r in doc["records"])
    cupy = [r for r in read(tmp_path / "eager" / "results.json")["records"] if r.get("known_id") == "cupy-take-along-axis-wraps-out-of-range-labels"]
    assert cupy and all(r["known_status"] == "fail" and r["behaviour"] == "finite" for r in cupy)
