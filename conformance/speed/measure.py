"""What the speed benchmarks measure and against what: shapes, inputs, bytes moved, the memory-bandwidth roof,
and a hand-written timing loop to check pytest-benchmark's figures against.

Bytes moved are the compulsory traffic of one call: every input element read once and every output element
written once (N rows, C classes, s bytes per element, l bytes per integer label):

    softmax, log_softmax              forward            2·N·C·s          read x, write y
    softmax_cross_entropy             forward            2·N·C·s + s      read x and y, write the mean loss
    softmax_cross_entropy             forward+backward   3·N·C·s + s      read x and y, write dL/dx and the loss
    sparse_softmax_cross_entropy      forward            N·C·s + N·l + s  read x and the labels, write the loss
    sparse_softmax_cross_entropy      forward+backward   2·N·C·s + N·l + s
    linear_cross_entropy              forward            (N·D + C·D)·s + N·l + s     read h, W and the targets
    linear_cross_entropy              forward+backward   2·(N·D + C·D)·s + N·l + s   and write dL/dh, dL/dW

(linear_cross_entropy's N x C is tokens x vocabulary, with D = LINEAR_FEATURES: it is compute-bound, a matmul of
2·N·C·D flops each way, and its benchmarks also record the call's peak memory, speed/memory.py.)

An implementation that reads x twice (a max pass, then an exp-sum pass) from memory moves more than this, so
its roof fraction is below one by design: the figure says how far the framework is from a single fused pass.

The roof is a STREAM-like copy (np.copyto, counted as read + write like STREAM's COPY) at the same footprint
(two buffers of bytes/2), on one thread and on the benchmark's thread count, best of both, measured in the
same process as the benchmarks. On a GPU it is a device-to-device copy timed with CUDA events (adapters.gpu_roof). Below a
few hundred KiB the copy is bound by call latency, not bandwidth: for the 32x10 latency shape the time is
the figure to read, not the GB/s.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..adapters import gpu_roof
from ..adapters.base import Impl, Roof
from ..corpus.cases import Options
from ..corpus.inputs import Inputs, output_shape
from ..model import dtypes as dt
from ..model.names import CROSS_ENTROPY_OPS, MASKED_OPS, OPS
from ..model.ops import op as op_spec

LATENCY, MEDIUM, VOCAB, GPU_VOCAB = (32, 10), (1024, 1000), (4096, 32000), (8192, 128256)
SHAPES = {"quick": (LATENCY, MEDIUM), "full": (LATENCY, MEDIUM, VOCAB)}
GPU_SHAPES = (GPU_VOCAB,)  # added on a GPU in the full profile: a Llama-3-sized vocabulary
DTYPES = {"quick": ("float32",), "full": ("float32", "bfloat16", "float16")}
FORWARD, FORWARD_BACKWARD = "forward", "forward+backward"
# The fused linear cross-entropy: 256 tokens of 64 features into vocabularies of 8k, 32k and Llama 3's 128k, where
# the logits (tokens x vocabulary) outgrow the inputs 32 to 500 times: what chunking saves and what it costs. The quick
# profile (CI) keeps the smallest.
LINEAR_FEATURES = 64
LINEAR_SHAPES = {"quick": ((256, 8192),), "full": ((256, 8192), (256, 32000), (256, 128256))}
OVERHEAD_SHAPES = (LATENCY, MEDIUM)


@dataclass(frozen=True)
class BenchSpec:
    framework: str
    impl: str
    naive: bool
    op: str
    passes: str  # FORWARD or FORWARD_BACKWARD
    dtype: str
    mode: str
    shape: tuple[int, int]
    device: str

    @property
    def id(self) -> str:
        """Stable and readable: the gate matches benchmarks across runs by this name (the implementation's stable id,
        never its label)."""
        return f"{self.framework}|{self.impl}|{self.op}|{self.passes}|{self.dtype}|{self.mode}|{shape_text(self.shape)}|{self.device}"


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


def specs(framework: str, impls: Iterable[Impl], profile: str, dtypes: Sequence[str], modes: Sequence[str], devices: Sequence[str],
          shapes: Sequence[tuple[int, int]] | None = None) -> list[BenchSpec]:
    """Every framework x implementation x op x pass x dtype x mode x shape x device of a profile.
    The quick profile keeps the fused (non-naive) implementations only."""
    out = []
    for device, impl in itertools.product(devices, impls):
        if profile == "quick" and impl.naive:
            continue
        device_shapes = shapes or (SHAPES[profile] + (GPU_SHAPES if device == "gpu" and profile == "full" else ()))
        if shapes is None and not op_spec(impl.op).logits_given:
            device_shapes = LINEAR_SHAPES[profile]
        passes = (FORWARD, FORWARD_BACKWARD) if impl.op in CROSS_ENTROPY_OPS else (FORWARD,)
        out += [BenchSpec(framework, impl.id, impl.naive, impl.op, p, dtype, mode, tuple(shape), device)
                for p, dtype, mode, shape in itertools.product(passes, dtypes, modes, device_shapes)
                if impl.runs(None, mode, dtype, device)]  # the door exists there
    return out


def spec_from_id(spec_id: str) -> BenchSpec:
    """The BenchSpec a benchmark's id names (BenchSpec.id, read back)."""
    framework, impl, op, passes, dtype, mode, shape, device = spec_id.split("|")
    return BenchSpec(framework, impl, impl.split("/", 1)[1].startswith("naive"), op, passes, dtype, mode,
                     tuple(int(n) for n in shape.split("x")), device)


def bench_inputs(op: str, dtype: str, shape: tuple[int, int], seed: int = 0) -> Inputs:
    """Logits ~ N(0, 3²), soft labels normalised per row, uniform class indices; mean reduction for the
    cross-entropies (a training step). Generated in float32 and rounded once, so large shapes stay cheap."""
    assert op in OPS
    rng = np.random.default_rng(seed)
    np_dtype = dt.fmt(dtype).np_dtype
    if not op_spec(op).logits_given:
        return _linear_inputs(dtype, shape, rng)
    logits = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(np_dtype)
    labels = sparse = None
    if op_spec(op).labels == "dense":
        raw = rng.random(shape, dtype=np.float32)
        labels = (raw / raw.sum(axis=-1, keepdims=True)).astype(np_dtype)
    if op_spec(op).labels == "sparse":
        sparse = rng.integers(0, shape[-1], size=shape[:-1], dtype=np.int64)
    # masked ops: a tenth of the classes masked at random, every row keeping some (an attention mask)
    mask = rng.random(shape) < 0.9 if op in MASKED_OPS else None
    options = Options(reduction="mean" if op in CROSS_ENTROPY_OPS else "none")
    cotangent = np.ones(output_shape(op, shape, 1, options.reduction), dtype=np_dtype)
    return Inputs(op=op, dtype=dtype, logits=logits, labels=labels, sparse_labels=sparse, axis=1,
                  options=options, cotangent=cotangent, direction=logits, mask=mask)


def _linear_inputs(dtype: str, shape: tuple[int, int], rng: np.random.Generator) -> Inputs:
    """N tokens of LINEAR_FEATURES features ~ N(0, 1), a weight ~ N(0, 0.05²) (logits of a few units), uniform targets,
    the mean. No logits: the benchmarked calls form their own, and an N x C array in extended precision would cost
    more than the call (a zero-stride view stands in for its shape)."""
    n, c = shape
    np_dtype = dt.fmt(dtype).np_dtype
    hidden = rng.standard_normal((n, LINEAR_FEATURES), dtype=np.float32).astype(np_dtype)
    weight = (rng.standard_normal((c, LINEAR_FEATURES), dtype=np.float32) * 0.05).astype(np_dtype)
    options = Options(reduction="mean")
    return Inputs(op="linear_cross_entropy", dtype=dtype, logits=np.broadcast_to(np.zeros((), np_dtype), shape), labels=None,
                  sparse_labels=rng.integers(0, c, size=n, dtype=np.int64), axis=1, options=options,
                  cotangent=np.ones((), dtype=np_dtype), direction=hidden, hidden=hidden, weight=weight)


def bytes_moved(op: str, passes: str, shape: tuple[int, int], dtype: str, label_bytes: int = 8) -> tuple[int, str]:
    """Compulsory bytes of one call and the formula that gave them (see the module docstring)."""
    n, c = shape
    s = dt.fmt(dtype).np_dtype.itemsize
    backward = passes == FORWARD_BACKWARD
    if not op_spec(op).logits_given:
        d = LINEAR_FEATURES
        return ((2 if backward else 1) * (n * d + c * d) * s + n * label_bytes + s,
                "2·(N·D + C·D)·s + N·l + s" if backward else "(N·D + C·D)·s + N·l + s")
    if not op_spec(op).loss and not op_spec(op).masked:
        return 2 * n * c * s, "2·N·C·s"
    if op in MASKED_OPS and not op_spec(op).loss:  # the mask is one byte a class
        return 2 * n * c * s + n * c, "2·N·C·s + N·C"
    if op in MASKED_OPS:  # dense labels and a mask
        return ((3 if backward else 2) * n * c + 1) * s + n * c, ("3·N·C·s + s + N·C" if backward else "2·N·C·s + s + N·C")
    if op_spec(op).labels == "dense":
        return ((3 if backward else 2) * n * c + 1) * s, ("3·N·C·s + s" if backward else "2·N·C·s + s")
    return ((2 if backward else 1) * n * c + 1) * s + n * label_bytes, ("2·N·C·s + N·l + s" if backward else "N·C·s + N·l + s")


def loop_stats(fn: Callable[[], object], rounds: int, iterations: int) -> dict:
    """A hand-written timing loop: `rounds` timings of `iterations` back-to-back calls, per call."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        times.append((time.perf_counter() - start) / iterations)
    return _stats(times, iterations)


def _stats(times: list[float], iterations: int) -> dict:
    """Per-call min, median and interquartile range of timed rounds, as the speed report reads them."""
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"min": min(times), "median": statistics.median(times), "iqr": q[2] - q[0], "rounds": len(times), "iterations": iterations}


def interleaved(a: Callable[[], object], b: Callable[[], object], rounds: int, iterations: int) -> tuple[dict, dict]:
    """Two calls timed side by side: each round times `iterations` calls of one, then of the other, in ABBA order, so
    that drift (another process, a clock change, a warming cache) falls on both alike. Per-call stats of each."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for r in range(rounds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn = a if which == 0 else b
            start = time.perf_counter()
            for _ in range(iterations):
                fn()
            times[which].append((time.perf_counter() - start) / iterations)
    return _stats(times[0], iterations), _stats(times[1], iterations)


# The harness's own cost is acceptable when the adapter call is within this of the bare call (issue #18): a share
# of the bare call's time, or an absolute floor that matters only for the tiniest calls.
OVERHEAD_SHARE, OVERHEAD_FLOOR_S = 0.03, 1e-6


def overhead_ok(adapter_s: float, bare_s: float) -> bool:
    return adapter_s - bare_s <= max(OVERHEAD_SHARE * bare_s, OVERHEAD_FLOOR_S)


def overhead_specs(impls: Iterable[Impl], modes: Sequence[str], devices: Sequence[str]) -> list[tuple[str, str, str, tuple[int, int], str]]:
    """(impl id, pass, mode, shape, device) of the overhead table: each op's first fused implementation, every pass
    it has, every mode, the quick shapes."""
    out = []
    for op in OPS:
        impl = next((i for i in impls if i.op == op and not i.naive), None)
        if impl is None:
            continue
        passes = (FORWARD, FORWARD_BACKWARD) if op in CROSS_ENTROPY_OPS else (FORWARD,)
        out += [(impl.id, p, mode, shape, device) for device, p, mode, shape in itertools.product(devices, passes, modes, OVERHEAD_SHAPES)]
    return out


def _best_time(fn: Callable[[], object], budget_s: float, min_repeats: int = 5) -> float:
    best, spent, repeats = float("inf"), 0.0, 0
    while repeats < min_repeats or spent < budget_s:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
        if repeats >= 1000:
            break
    return best


class CpuRoof:
    """STREAM-like copy bandwidth at a footprint, best of one thread and `threads` threads (cached)."""

    method = "np.copyto (read + write), best of 1 and {threads} threads, same footprint"

    def __init__(self, threads: int, budget_s: float = 0.2):
        self.threads, self.budget_s = threads, budget_s
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.cache: dict[int, float] = {}

    def describe(self) -> str:
        return self.method.format(threads=self.threads)

    def gbps(self, nbytes: int) -> float:
        if nbytes not in self.cache:
            half = max(nbytes // 2, 64)
            src, dst = np.ones(half, np.uint8), np.empty(half, np.uint8)
            best = _best_time(lambda: np.copyto(dst, src), self.budget_s)
            if self.pool is not None:
                bounds = np.linspace(0, half, self.threads + 1).astype(int)
                chunks = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

                def threaded():
                    for f in [self.pool.submit(np.copyto, d, s) for d, s in chunks]:
                        f.result()
                best = min(best, _best_time(threaded, self.budget_s))
            self.cache[nbytes] = 2 * half / best / 1e9
        return self.cache[nbytes]


def roof_for(device: str, threads: int) -> Roof | None:
    """The roof for a device, or None where it cannot be measured (the GPU roof's library is not installed)."""
    if device == "cpu":
        return CpuRoof(threads)
    return gpu_roof()
