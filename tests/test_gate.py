"""The gate trips on what it should and on nothing else."""

from __future__ import annotations

import json

from results_factory import bench, record, write
from results_factory import load as load_results

from conformance.app.cli import main
from conformance.gate import records as gate
from conformance.run import results as results_io


def test_same_results_pass(tmp_path):
    recs = [record(), record(dtype="float64", max_ulp=0.5)]
    b = write(tmp_path, "b", recs, bench=[bench("t::a", 1e-4)])
    assert gate.gate(b, b).ok


def test_injected_numeric_regression_fails(tmp_path):
    b = write(tmp_path, "b", [record(max_ulp=1.0, tol_ratio=0.1)])
    worse = write(tmp_path, "c", [record(max_ulp=8.0, tol_ratio=0.8)])
    failing = write(tmp_path, "d", [record(status="fail", max_ulp=900.0, tol_ratio=90.0, detail="at [0]: got 0.3")])
    noise = write(tmp_path, "e", [record(max_ulp=1.8, tol_ratio=0.18)])
    # measured between a warm and a cold torch.compile: 0.5 -> 58 ulp, but 0.6% -> 2.6% of a bfloat16 tolerance
    drift = write(tmp_path, "f", [record(max_ulp=58.0, tol_ratio=0.026)])
    assert any(r.startswith("accuracy") for r in map(str, gate.gate(b, worse).regressions))
    assert any(r.startswith("status") for r in map(str, gate.gate(b, failing).regressions))
    assert gate.gate(b, noise).ok  # rounding noise, not a regression
    assert gate.gate(write(tmp_path, "g", [record(max_ulp=0.5, tol_ratio=0.006)]), drift).ok


def test_accuracy_envelope_widens_with_the_environment_change(tmp_path):
    # measured (gate.py): the same torch.compile record used 29% of its tolerance on one AMD EPYC VM and 59% on
    # another without AVX-512; on one CPU with the same versions (bit-identical re-runs) that is a regression,
    # across CPUs it is inside the envelope; a 40x loss (2% -> 80%) fails everywhere
    before, after = [record(max_ulp=2.0, tol_ratio=0.29)], [record(max_ulp=4.0, tol_ratio=0.59)]
    b, c = write(tmp_path, "b", before), write(tmp_path, "c", after)
    assert any(r.startswith("accuracy") and "same environment" in r for r in map(str, gate.gate(b, c).regressions))
    worse = write(tmp_path, "w", [record(max_ulp=80.0, tol_ratio=0.8)])
    base40 = write(tmp_path, "b40", [record(max_ulp=2.0, tol_ratio=0.02)])
    for name, features in (("other", ["avx2", "fma", "avx512f"]), ("unrecorded", None)):
        for src, dst in ((b, name), (base40, name + "40")):
            doc = load_results(src)
            doc["environment"]["cpu"] = "AMD EPYC"
            if features is None:  # a results file from before the features were recorded
                del doc["environment"]["cpu_features"]
            else:
                doc["environment"]["cpu_features"] = features
            (tmp_path / dst).mkdir()
            results_io.write(doc, tmp_path / dst / "results.json")
        rep = gate.gate(tmp_path / name / "results.json", c)
        assert rep.ok and any("CPU:" in e and "->" in e for e in rep.environment), rep.environment
        rep = gate.gate(tmp_path / (name + "40") / "results.json", worse)
        assert [r for r in map(str, rep.regressions) if r.startswith("accuracy") and "CPU change" in r], rep.regressions
    # a record that leaves its tolerance is a status regression on any CPU
    failing = write(tmp_path, "f", [record(status="fail", max_ulp=900.0, tol_ratio=9.0, detail="at [0]")])
    assert any(r.startswith("status") for r in map(str, gate.gate(tmp_path / "other" / "results.json", failing).regressions))


def test_injected_30_percent_slowdown_fails(tmp_path):
    steady = [1e-4, 1.02e-4, 1.04e-4]  # three processes within 4%: threshold max(15%, 2 x 2%)
    base = write(tmp_path, "b", [record()], bench=[bench("t::a", 1e-4, process_mins=steady), bench("t::b", 2e-3)])
    slow = write(tmp_path, "slow", [record()], bench=[bench("t::a", 1.3e-4, process_mins=[x * 1.3 for x in steady]), bench("t::b", 2e-3)])
    regressions = gate.gate(base, slow).regressions
    assert len(regressions) == 1 and regressions[0].kind == "speed" and str(regressions[0]).startswith("speed: t::a")
    assert gate.gate(base, base).ok


def test_benchmark_too_noisy_to_gate_is_listed_not_passed_silently(tmp_path):
    bimodal = [1e-4, 1.5e-4, 1.6e-4]  # the runner-up process 50% above the best: a 30% slowdown is inside the noise
    base = write(tmp_path, "b", [record()], bench=[bench("t::a", 1e-4, process_mins=bimodal)])
    slow = write(tmp_path, "slow", [record()], bench=[bench("t::a", 1.3e-4, process_mins=[x * 1.3 for x in bimodal])])
    rep = gate.gate(base, slow)
    assert rep.ok and rep.benchmarks_compared == 0 and any("too noisy" in n and "t::a" in n for n in rep.notes)


def test_benchmarks_from_another_machine_are_not_compared(tmp_path):
    base = write(tmp_path, "b", [record()], bench=[bench("t::a", 1e-4)])
    other = write(tmp_path, "c", [record()], bench=[bench("t::a", 3e-4)])
    for path, brand in ((base, "CPU A"), (other, "CPU B")):
        doc = json.loads(path.with_name(gate.BENCH_FILE).read_text())
        doc["machine_info"] = {"cpu": {"brand_raw": brand, "count": 2}, "machine": "x86_64"}
        path.with_name(gate.BENCH_FILE).write_text(json.dumps(doc))
    rep = gate.gate(base, other)
    assert rep.ok and any("not compared" in n and "CPU A" in n for n in rep.notes)


def test_stale_entry_fails_and_bad_input_exits_2(tmp_path, capsys):
    b = write(tmp_path, "b", [record()])
    stale = write(tmp_path, "c", [record()], stale=[{"id": "x", "link": "https://example.org"}])
    assert any(r.startswith("stale") for r in map(str, gate.gate(b, stale).regressions))
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["gate", "--baseline", str(b), "--current", str(tmp_path / "junk.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(b), "--current", str(b)]) == 0


def test_renaming_a_label_changes_no_key(tmp_path):
    """Records, baselines and the registry match implementations by their stable id; the label is display text."""
    before = write(tmp_path, "b", [record(impl="torch.softmax", impl_id="torch/softmax")])
    after = write(tmp_path, "c", [record(impl="torch.softmax(x, dim)", impl_id="torch/softmax")])
    rep = gate.gate(before, after)
    assert rep.ok and rep.compared == 1, rep.regressions
    assert results_io.key(record(impl="a", impl_id="torch/softmax")) == results_io.key(record(impl="b", impl_id="torch/softmax"))
    old = write(tmp_path, "old", [record(impl="torch.softmax")])  # a file from before ids: matched by label
    assert gate.gate(old, before).compared == 1


def test_a_framework_whose_baseline_records_came_from_another_cpu_is_judged_as_a_cpu_change(tmp_path):
    """A baseline assembled from two machines: the framework whose records were made elsewhere names that CPU in its
    own `machine`, and its moves are attributed to a CPU change (its accuracy gated within that envelope) while the
    other frameworks' stay same-environment moves."""
    b = write(tmp_path, "b", [record(max_ulp=2.0, tol_ratio=0.29), record(framework="numpy", impl="scipy.special.softmax", tol_ratio=0.29)])
    c = write(tmp_path, "c", [record(max_ulp=4.0, tol_ratio=0.59), record(framework="numpy", impl="scipy.special.softmax", tol_ratio=0.59)])
    doc = load_results(b)
    doc["environment"]["frameworks"] = {"torch": {"machine": {"cpu": "AMD EPYC", "cpu_features": ["avx2"], "cpu_count": 2}}}
    results_io.write(doc, b)
    rep = gate.gate(b, c)
    assert [r.text.split()[4] for r in rep.regressions] == ["numpy"]  # torch's move is inside the CPU envelope
    assert any("CPU of torch's baseline records: AMD EPYC" in e for e in rep.environment), rep.environment
