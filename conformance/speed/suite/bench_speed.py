"""Speed of every implementation, and what the adapter itself costs.

Each benchmark: build device-resident inputs, time the first call on its own (it holds any compilation),
warm up explicitly, then let pytest-benchmark time the call. The figures go to extra_info with the bytes the
call must move, its GB/s and its fraction of the copy roof measured in this process (conformance/speed/measure.py).
"""

from __future__ import annotations

import time

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from conformance.adapters import GPU_ROOF_ABSENT, Unsupported
from conformance.model.ops import op as op_spec
from conformance.speed import measure as speed
from conformance.speed import memory


def _warm(call, seconds: float, at_least: int = 3) -> int:
    """Explicit warm-up (pytest-benchmark's own is off on CPython by default): caches, allocator, lazy init."""
    calls, deadline = 0, time.perf_counter() + seconds
    while calls < at_least or time.perf_counter() < deadline:
        call()
        calls += 1
    return calls


def _roof(bench: dict, device: str):
    if device not in bench["roofs"]:
        bench["roofs"][device] = speed.roof_for(device, bench["threads"])
    return bench["roofs"][device]


def _bandwidth(benchmark, bench: dict, device: str, nbytes: int, formula: str) -> dict:
    stats = benchmark.stats.stats
    roof = _roof(bench, device)
    info = {"bytes": nbytes, "bytes_formula": formula, "gbps": nbytes / stats.min / 1e9, "gbps_median": nbytes / stats.median / 1e9}
    if roof is None:
        return {**info, "roof_gbps": None, "roof_fraction": None, "roof_method": f"unavailable ({GPU_ROOF_ABSENT})"}
    roof_gbps = roof.gbps(nbytes)
    return {**info, "roof_gbps": roof_gbps, "roof_fraction": info["gbps"] / roof_gbps, "roof_method": roof.describe()}


def bench_speed(benchmark: BenchmarkFixture, spec: speed.BenchSpec, bench: dict) -> None:
    adapter = bench["adapter"]
    impl = next(i for i in adapter.implementations() if i.id == spec.impl and i.op == spec.op)
    inputs = speed.bench_inputs(spec.op, spec.dtype, spec.shape)
    try:
        call = adapter.benchmark_call(impl, inputs, spec.mode, spec.device, spec.passes == speed.FORWARD_BACKWARD)
    except Unsupported as exc:
        pytest.skip(f"unsupported: {exc}")
    start = time.perf_counter()
    call()  # compiles in compiled mode; kept out of the timed figures and recorded on its own
    first_call_s = time.perf_counter() - start
    warmup_calls = _warm(call, bench["warmup_seconds"])
    benchmark.group = f"{spec.op} {spec.passes} {spec.dtype} {speed.shape_text(spec.shape)} {spec.device}"
    benchmark(call)
    label_bytes = inputs.sparse_labels.itemsize if inputs.sparse_labels is not None else 0
    nbytes, formula = speed.bytes_moved(spec.op, spec.passes, spec.shape, spec.dtype, label_bytes)
    benchmark.extra_info.update({
        "kind": "speed", "framework": spec.framework, "impl": impl.name, "impl_id": impl.id, "naive": spec.naive, "op": spec.op,
        "pass": spec.passes, "dtype": spec.dtype, "mode": spec.mode, "shape": list(spec.shape), "device": spec.device,
        "threads": bench["threads"], "first_call_s": first_call_s, "warmup_calls": warmup_calls,
        **_bandwidth(benchmark, bench, spec.device, nbytes, formula), **_memory(spec, bench),
    })


def _memory(spec: speed.BenchSpec, bench: dict) -> dict:
    """Peak memory of the call, for an op that computes its logits (what chunking saves), measured in a fresh process
    on the CPU (speed/memory.py) in the full profile (a few seconds a benchmark: the quick one times only); a GPU's
    device memory is not measured here."""
    if op_spec(spec.op).logits_given or bench["profile"] != "full":
        return {}
    if spec.device != "cpu":
        return {"peak_bytes": None, "peak_method": "not measured: host memory only"}
    peak, why = memory.measure_in_fresh_process(spec.id, bench["threads"])
    return {"peak_bytes": peak, "peak_method": why or "resident-set growth during one call, fresh process (speed/memory.py)"}


def bench_harness_overhead(benchmark: BenchmarkFixture, overhead: tuple, bench: dict) -> None:
    """The adapter's benchmarked call beside the same public call written out bare (adapter.bare_call): pytest-benchmark
    times the adapter call; then both are timed side by side (speed.interleaved, ABBA rounds, pytest-benchmark's own
    rounds and iterations), which gives the overhead and, for the adapter call, a second timer to check the first."""
    impl_id, passes, mode, shape, device = overhead
    adapter = bench["adapter"]
    impl = next(i for i in adapter.implementations() if i.id == impl_id)
    inputs = speed.bench_inputs(impl.op, "float32", shape)
    backward = passes == speed.FORWARD_BACKWARD
    try:
        call = adapter.benchmark_call(impl, inputs, mode, device, backward)
        bare = adapter.bare_call(impl, inputs, mode, device, backward)
    except Unsupported as exc:
        pytest.skip(f"unsupported: {exc}")
    for fn in (call, bare):
        fn()  # compiles in compiled mode
        _warm(fn, bench["warmup_seconds"])
    benchmark.group = f"harness overhead {impl.op} {passes} {mode} {speed.shape_text(shape)} {device}"
    benchmark(call)
    loop, bare_loop = speed.interleaved(call, bare, benchmark.stats.stats.rounds, benchmark.stats.iterations)
    nbytes, formula = speed.bytes_moved(impl.op, passes, shape, "float32", 8 if inputs.sparse_labels is not None else 0)
    benchmark.extra_info.update({
        "kind": "overhead", "framework": adapter.NAME, "impl": impl.name, "impl_id": impl.id, "op": impl.op, "pass": passes,
        "dtype": "float32", "mode": mode, "shape": list(shape), "device": device, "threads": bench["threads"],
        "hand_loop": loop, "bare_loop": bare_loop, "overhead_s": loop["min"] - bare_loop["min"],
        "overhead_ok": speed.overhead_ok(loop["min"], bare_loop["min"]), **_bandwidth(benchmark, bench, device, nbytes, formula),
    })
