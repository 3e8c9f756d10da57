"""The benchmark machinery: what is timed is the right computation, bytes and roof are what they claim, the
command writes GB/s and roof fraction for every benchmark, and bad input or an absent GPU is handled.
No timing is asserted here: speed is measured by `conformance bench`, never judged in a unit test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conformance.adapters import Unsupported, load_adapter
from conformance.app.cli import main
from conformance.judge import oracle
from conformance.judge.compare import judge
from conformance.model.names import OPS
from conformance.report import speed as speed_report
from conformance.speed import measure as speed


def test_bytes_formulas_count_each_input_read_and_each_output_written_once():
    # softmax 1024x1000 float32: read 4,096,000 bytes and write as many.
    assert speed.bytes_moved("softmax", speed.FORWARD, (1024, 1000), "float32") == (8_192_000, "2·N·C·s")
    # dense CE forward+backward bfloat16: x and y read, dL/dx written (3·N·C·2 bytes), plus the scalar loss.
    assert speed.bytes_moved("softmax_cross_entropy", speed.FORWARD_BACKWARD, (4, 3), "bfloat16")[0] == 3 * 12 * 2 + 2
    # sparse CE forward, int64 labels: x read, N labels read, scalar loss written.
    assert speed.bytes_moved("sparse_softmax_cross_entropy", speed.FORWARD, (4, 3), "float32", 8)[0] == 12 * 4 + 4 * 8 + 4


def test_bench_inputs_are_what_the_benchmarks_claim():
    inp = speed.bench_inputs("softmax_cross_entropy", "bfloat16", (16, 7))
    assert inp.logits.shape == (16, 7) and inp.logits.dtype.name == "bfloat16" and inp.options.reduction == "mean"
    np.testing.assert_allclose(inp.labels.astype(np.float64).sum(axis=1), 1.0, rtol=2 ** -7 * 7)
    sparse = speed.bench_inputs("sparse_softmax_cross_entropy", "float32", (16, 7))
    assert sparse.sparse_labels.dtype == np.int64 and 0 <= sparse.sparse_labels.min() and sparse.sparse_labels.max() < 7


def test_quick_profile_is_fused_float32_and_cross_entropy_gets_a_backward_pass():
    adapter = load_adapter("numpy")
    specs = speed.specs("numpy", adapter.implementations(), "quick", speed.DTYPES["quick"], ("eager",), ("cpu",))
    assert specs and not any(s.naive for s in specs) and {s.dtype for s in specs} == {"float32"}
    assert {s.passes for s in specs if s.op == "softmax"} == {speed.FORWARD}
    assert {s.passes for s in specs if s.op == "sparse_softmax_cross_entropy"} == {speed.FORWARD, speed.FORWARD_BACKWARD}
    assert len({s.id for s in specs}) == len(specs)
    full = speed.specs("numpy", adapter.implementations(), "full", speed.DTYPES["full"], ("eager",), ("cpu", "gpu"))
    assert speed.GPU_VOCAB in {s.shape for s in full if s.device == "gpu"} and speed.GPU_VOCAB not in {s.shape for s in full if s.device == "cpu"}


def test_roof_is_a_positive_bandwidth_and_the_hand_loop_counts_calls():
    roof = speed.CpuRoof(threads=2, budget_s=0.01)
    assert roof.gbps(1 << 20) > 0 and roof.gbps(1 << 20) == roof.cache[1 << 20]
    calls = []
    stats = speed.loop_stats(lambda: calls.append(1), rounds=4, iterations=3)
    assert len(calls) == 12 and stats["min"] <= stats["median"] and stats["rounds"] == 4


def test_timer_agreement_rule():
    assert speed_report.timers_agree({"min": 1.00, "iqr": 0.05}, {"min": 1.04, "iqr": 0.01})
    assert not speed_report.timers_agree({"min": 1.00, "iqr": 0.01}, {"min": 1.20, "iqr": 0.02})


def _result(out, backward: bool) -> np.ndarray:
    if isinstance(out, dict):  # TensorFlow, JAX, MLX and tinygrad return every quantity they computed
        out = out["grad_logits" if backward else "value"]
    return _float64(out)


def _float64(out) -> np.ndarray:
    if hasattr(out, "numpy") and not isinstance(out, np.ndarray):  # a framework's tensor (tinygrad's has no __array__)
        out = out.numpy()
    return np.asarray(out, dtype=np.float64)


@pytest.mark.parametrize("op,backward", [("softmax", False), ("log_softmax", False), ("softmax_cross_entropy", True),
                                         ("sparse_softmax_cross_entropy", True), ("masked_softmax", False), ("masked_log_softmax", False)])
@pytest.mark.parametrize("path", ["benchmark_call", "bare_call"])
def test_benchmarked_call_computes_the_right_answer(selected_frameworks, op, backward, path):
    """The callables the benchmarks time (the adapter's, and the bare call the overhead table compares it with) must
    compute the op (not a no-op, not a cached value): checked against the oracle with the suite's own tolerance, for
    every fused implementation, eager and compiled."""
    inputs = speed.bench_inputs(op, "float32", (8, 5), seed=3)
    quantity = "grad_logits" if backward else "value"
    ref = oracle.compute(inputs, quantity)
    checked, declined = 0, set()
    for name in selected_frameworks:
        adapter = load_adapter(name)
        for impl in [i for i in adapter.implementations() if i.op == op and not i.naive]:
            for mode in ("eager", "compiled"):
                try:
                    call = getattr(adapter, path)(impl, inputs, mode, "cpu", backward)
                except Unsupported as exc:
                    declined.add(f"{name}: {exc}")
                    continue
                verdict = judge(_result(call(), backward), None, ref, quantity, "float32", 5, False, {})
                assert verdict.status == "pass", f"{name} {impl.name} {mode}: {verdict.detail}"
                checked += 1
    if not checked:  # e.g. NumPy alone and a backward pass: it has no autodiff, and says so (Unsupported)
        assert declined, f"no selected framework offers a fused {op}"
        pytest.skip("every selected framework declines: " + "; ".join(sorted(declined)))


def test_interleaved_timing_alternates_and_the_overhead_rule():
    order = []
    a_stats, b_stats = speed.interleaved(lambda: order.append("a"), lambda: order.append("b"), rounds=4, iterations=2)
    assert "".join(order) == "aabbbbaaaabbbbaa" and a_stats["rounds"] == b_stats["rounds"] == 4  # ABBA: drift hits both
    assert speed.overhead_ok(1.02e-3, 1.0e-3) and not speed.overhead_ok(1.04e-3, 1.0e-3)  # 3% of the bare call ...
    assert speed.overhead_ok(10.9e-6, 10e-6) and not speed.overhead_ok(11.1e-6, 10e-6)  # ... or 1 us, whichever is larger
    assert speed_report.overhead_verdict(False, 5e-6, 6e-6) == "no, within noise"  # over the target, but not beyond the noise
    assert speed_report.overhead_verdict(False, 5e-6, 1e-6) == "NO" and speed_report.overhead_verdict(True, 5e-6, 1e-6) == "yes"


def test_bench_writes_gbps_and_roof_fraction_for_every_benchmark(tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--quick", "--frameworks", "numpy", "--shapes", "32x10", "--max-time", "0.01", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "benchmarks.json").read_text())
    speed_entries = [b for b in doc["benchmarks"] if b["extra_info"]["kind"] == "speed"]
    assert len(speed_entries) == len(OPS) == 10  # numpy has a fused door to every op: a forward benchmark each; no backward, no compiled mode
    assert all("peak_bytes" not in b["extra_info"] for b in speed_entries)  # the quick profile times only
    for b in doc["benchmarks"]:
        e = b["extra_info"]
        assert e["gbps"] > 0 and e["roof_gbps"] > 0 and e["roof_fraction"] == pytest.approx(e["gbps"] / e["roof_gbps"])
        assert e["bytes"] > 0 and e["threads"] >= 1
    overhead = [b for b in doc["benchmarks"] if b["extra_info"]["kind"] == "overhead"]
    assert {b["extra_info"]["op"] for b in overhead} == set(OPS)  # every op, not only softmax
    assert {tuple(b["extra_info"]["shape"]) for b in overhead} == set(speed.OVERHEAD_SHAPES)
    for b in overhead:
        e = b["extra_info"]
        assert e["hand_loop"]["rounds"] == e["bare_loop"]["rounds"] == b["stats"]["rounds"]
        assert e["overhead_s"] == e["hand_loop"]["min"] - e["bare_loop"]["min"] and isinstance(e["overhead_ok"], bool)
    assert doc["runs"][0]["conformance"]["framework"] == "numpy"
    text = (out / "speed.md").read_text()
    assert "## Speed" in text and "Harness overhead" in text and (out / "speed_gbps.png").stat().st_size > 0


def test_bench_on_an_absent_gpu_skips_cleanly(tmp_path, capsys):
    code = main(["bench", "--quick", "--frameworks", "numpy", "--devices", "gpu", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "gpu requested but not visible to numpy: its benchmarks are skipped" in out
    assert json.loads((tmp_path / "benchmarks.json").read_text())["benchmarks"] == []


@pytest.mark.parametrize("argv,message", [
    (["--frameworks", "mxnet"], "unknown framework 'mxnet'"),
    (["--shapes", "32by10"], "not NxC"),
    (["--threads", "0"], "threads must be"),
])
def test_bench_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        code = main(["bench", *argv, "--out", str(tmp_path)])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("backward", [False, True])
def test_benchmarked_linear_cross_entropy_computes_the_right_answer(selected_frameworks, backward):
    """The fused linear cross-entropy's benchmarked calls compute its value, or the gradients of every primal (a
    training step's backward), on the benchmark's own inputs, whose exact logits are formed here for the oracle."""
    from dataclasses import replace

    from conformance.corpus.inputs import linear_logits

    inputs = speed.bench_inputs("linear_cross_entropy", "float32", (8, 5), seed=3)
    exact = replace(inputs, logits=linear_logits(inputs.hidden, inputs.weight, None))
    wanted = ("grad_hidden", "grad_weight") if backward else ("value",)
    refs = {q: oracle.compute(exact, q) for q in wanted}
    checked = 0
    for name in selected_frameworks:
        adapter = load_adapter(name)
        for impl in [i for i in adapter.implementations() if i.op == "linear_cross_entropy"]:
            for mode in [m for m in ("eager", "compiled") if impl.runs(None, m, "float32", "cpu")]:
                try:
                    out = adapter.benchmark_call(impl, inputs, mode, "cpu", backward)()
                except Unsupported:
                    continue
                got = dict(zip(wanted, out if isinstance(out, tuple) else (out,))) if not isinstance(out, dict) else out
                for q in wanted:
                    verdict = judge(_float64(got[q]), None, refs[q], q, "float32", 5, False, {})
                    assert verdict.status == "pass", f"{name} {impl.name} {mode} {q}: {verdict.detail}"
                checked += 1
    if not checked:
        pytest.skip("no selected framework benchmarks a linear cross-entropy here")


def test_peak_memory_is_measured_in_a_fresh_process():
    """speed/memory.py: an allocation inside the call shows as growth of the resident set (sampled), and a linear
    benchmark's peak comes back from a fresh process, larger than its logits for a door that holds them."""
    from conformance.speed import memory

    memory.fix_allocator()
    grown = memory.peak_growth(lambda: np.ones(64 * 2 ** 20 // 8).sum())  # 64 MiB held during the call
    assert grown is not None and grown >= 48 * 2 ** 20
    spec = speed.BenchSpec("numpy", "numpy/linear/scipy/log_softmax", False, "linear_cross_entropy", speed.FORWARD, "float32", "eager",
                           (256, 8192), "cpu")
    peak, why = memory.measure_in_fresh_process(spec.id, 1)
    assert why is None and peak >= 256 * 8192 * 4  # the composed form holds at least its float32 logits
