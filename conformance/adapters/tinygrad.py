"""tinygrad on its CPU device (kernels compiled by clang): Tensor.softmax, Tensor.log_softmax, the log-softmax written from
Tensor.logsumexp, Tensor.sparse_categorical_crossentropy (ignore_index, label_smoothing, reduction; classes on the last
axis) and Tensor.cross_entropy (class indices or probabilities; classes on axis 1, as in torch).

Gradients come from Tensor.gradient (tinygrad's graph rewrite, what backward() runs), Hessian-vector products from a
second Tensor.gradient of <grad, d>. Compiled mode is TinyJit: its first call runs eagerly and its second captures
the kernels, so the judged answer is the third call's, a replay of the captured kernels (what a training loop runs).
A dtype the toolchain cannot compile (clang without a half-precision type) is `unsupported`, with the compiler's line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from ..model.dtypes import bfloat16
from . import naive
from .base import Array, Impl, Unsupported, all_primals, check_supported, needs_grad, reduce_with

NAME = "tinygrad"
REQUIRES = ("tinygrad",)  # importable packages; checked before any worker starts
# Its CPU device runs clang for every kernel (CPU_LLVM=1 compiles through llvmlite instead): without it, tinygrad is
# absent, said before any worker starts, rather than an error on every call.
TOOLS = () if os.environ.get("CPU_LLVM") else ("clang",)
PACKAGES = ("tinygrad",)  # versions that change the numbers (the gate attributes moves to them)
NUMERIC_ENV = ("DEV", "CPU_LLVM", "FLOAT16", "OPT", "BEAM")  # device, compiler and kernel-search settings (recorded)
QUIET_ENV = {"DEBUG": "0"}
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 11, ("compiled", "float16"): 127, ("compiled", "float32"): 143,
                ("compiled", "float64"): 124, ("eager", "bfloat16"): 12, ("eager", "float16"): 81,
                ("eager", "float32"): 190, ("eager", "float64"): 175}
QUICK_SECONDS = {"eager": 12, "compiled": 2}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"eager": 0.55, "compiled": 0.79}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
OWN_FRACTION = {"eager": 0.6, "compiled": 0.77}  # a cold full run without the naive formulas over one with them (tests/data/costs/full-run-naive-pair.json)
START_SECONDS = 1.7  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 0.7  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 6, "compiled": 1}, "START_SECONDS": 1.0, "IMPORT_SECONDS": 0.4}}
TinyTensor: Any = None
dtypes: Any = None
TinyJit: Any = None
_DEVICE = {"cpu": "CPU", "gpu": "CUDA"}


def load(compile_cache: Path | None = None) -> None:
    """tinygrad keeps its compiled kernels in its own disk cache (CACHEDB, under ~/.cache by default); with a folder,
    there instead."""
    global TinyTensor, dtypes, TinyJit
    if compile_cache is not None:
        os.environ.setdefault("CACHEDB", str(compile_cache / "tinygrad.db"))
    from tinygrad import Tensor
    from tinygrad import TinyJit as _jit
    from tinygrad import dtypes as _dtypes

    TinyTensor, dtypes, TinyJit = Tensor, _dtypes, _jit


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("tinygrad")


def devices() -> list[str]:
    return ["cpu"] + ([] if "gpu" in device_problems() else ["gpu"])


def device_problems() -> dict[str, str]:
    from tinygrad import Device

    try:
        Device["CUDA"]
    except Exception as exc:  # no CUDA driver or library: the reason, not a silent skip
        return {"gpu": f"tinygrad's CUDA device: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__}"}
    return {}


def set_threads(n: int) -> None:
    """tinygrad's CPU kernels run on one thread."""


def flags() -> dict:
    return {name: os.environ[name] for name in NUMERIC_ENV if name in os.environ}


def softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return x.softmax(axis=inputs.axis)


def log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return x.log_softmax(axis=inputs.axis)


def logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return x.logsumexp(axis=inputs.axis)


def logsumexp_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The log-softmax people write from the public Tensor.logsumexp."""
    return x - x.logsumexp(axis=inputs.axis, keepdim=True)


def sparse_categorical_crossentropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """Its ignore_index defaults to -1, meaning none: a case's ignore_index goes through as given."""
    opts = inputs.options
    extra = {} if opts.ignore_index is None else {"ignore_index": opts.ignore_index}
    return x.sparse_categorical_crossentropy(labels, label_smoothing=opts.label_smoothing, reduction=opts.reduction, **extra)


def _class_second(x: Array, axis: int) -> Array:
    """cross_entropy takes the classes at axis 1 ([N, C, d1, ...]): moved there from `axis` (a 1-D input is one row)."""
    if x.ndim <= 1 or axis == 1:
        return x
    order = [d for d in range(x.ndim) if d != axis]
    return x.permute(order[0], axis, *order[1:])


def cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """Tensor.cross_entropy: class indices or probabilities (the classes moved to axis 1, where it wants them)."""
    opts = inputs.options
    dense = labels.dtype not in (dtypes.int64, dtypes.int32)
    y = _class_second(labels, inputs.axis) if dense else labels
    return _class_second(x, inputs.axis).cross_entropy(y, reduction=opts.reduction, label_smoothing=opts.label_smoothing)


def where_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked softmax as tinygrad code writes it: mask.where(x, -inf), then softmax."""
    return mask.where(x, float("-inf")).softmax(axis=inputs.axis)


def where_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    return mask.where(x, float("-inf")).log_softmax(axis=inputs.axis)


def linear_then_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """The composed LLM head: Tensor.linear (whose weight is [in, out], so W.T), then the sparse cross-entropy (class
    indices) or Tensor.cross_entropy (probabilities), as those doors call them (the logits' classes are their last axis)."""
    logits = hidden.linear(weight.T, bias)
    if targets.dtype in (dtypes.int64, dtypes.int32):
        return sparse_categorical_crossentropy(logits, targets, inputs)
    return cross_entropy(logits, targets, inputs)

NAIVE = naive.Namespace(
    exp=lambda x: x.exp(), log=lambda x: x.log(), sum=lambda x, axis, keep: x.sum(axis=axis, keepdim=keep),
    softmax=lambda x, axis: x.softmax(axis=axis),
    pick=lambda v, t, axis: v.gather(axis, t.unsqueeze(axis)).squeeze(axis),
    spelling="Tensor.exp Tensor.sum Tensor.log Tensor.softmax")


def implementations() -> list[Impl]:
    sparse = frozenset({"reduction", "label_smoothing", "ignore_index"})
    return [
        Impl(NAME, "Tensor.softmax", "softmax", softmax, key="softmax"),
        Impl(NAME, "Tensor.log_softmax", "log_softmax", log_softmax, key="log_softmax"),
        Impl(NAME, "x - Tensor.logsumexp(x)", "log_softmax", logsumexp_log_softmax, key="logsumexp/log_softmax"),
        Impl(NAME, "Tensor.logsumexp", "logsumexp", logsumexp, key="logsumexp"),
        Impl(NAME, "Tensor.cross_entropy (probabilities)", "softmax_cross_entropy", cross_entropy,
             options=frozenset({"reduction", "label_smoothing"}), key="cross_entropy"),
        Impl(NAME, "Tensor.sparse_categorical_crossentropy", "sparse_softmax_cross_entropy", sparse_categorical_crossentropy,
             options=sparse, key="sparse_categorical_crossentropy", last_axis_only=True),
        Impl(NAME, "Tensor.cross_entropy (class indices)", "sparse_softmax_cross_entropy", cross_entropy,
             options=frozenset({"reduction", "label_smoothing"}), key="cross_entropy/indices"),
        Impl(NAME, "mask.where(x, -inf).softmax()", "masked_softmax", where_softmax, key="where/softmax"),
        Impl(NAME, "mask.where(x, -inf).log_softmax()", "masked_log_softmax", where_log_softmax, key="where/log_softmax"),
        Impl(NAME, "h.linear(W.T, b).sparse_categorical_crossentropy(t)", "linear_cross_entropy", linear_then_cross_entropy,
             options=sparse, key="linear/cross_entropy"),
        *naive.implementations(NAME, NAIVE),
    ]


def _tensor(array: np.ndarray | None, device: str) -> Array:
    if array is None:
        return None
    # clone(): a buffer of its own (a 0-d array is otherwise a constant, which TinyJit refuses as an input)
    if array.dtype.name == "bfloat16":  # float32 holds every bfloat16 exactly
        return TinyTensor(array.astype(np.float32), device=_DEVICE[device]).cast(dtypes.bfloat16).clone().realize()
    return TinyTensor(np.array(array, copy=True), device=_DEVICE[device]).clone().realize()


def _numpy(t: Array) -> np.ndarray:
    """The tensor as NumPy in its own dtype (bfloat16 through float32)."""
    if t.dtype == dtypes.bfloat16:
        return t.float().numpy().astype(bfloat16())
    return t.numpy()


def _quantities_fn(impl: Impl, inputs: Inputs, quantities: tuple[str, ...]) -> Callable:
    """One function computing exactly the requested quantities from the given primals, the labels, the cotangent and
    the direction, every result realized: evaluate and the benchmarks run the very same code, eager or under TinyJit."""
    composed = impl.reduction_composed(inputs)
    names = tuple(inputs.given_primals)

    def forward(x: list, labels):
        out = impl.forward(*all_primals(inputs, x), labels, inputs)
        return reduce_with(out, inputs.options.reduction, lambda v: v.sum(), lambda v: v.mean()) if composed else out

    def compute(x: list, labels, g, d) -> dict:
        out = forward(x, labels)
        results = {"value": out}
        if needs_grad(quantities):
            wrt = [*x, *([labels] if "grad_labels" in quantities else [])]
            grads = out.gradient(*wrt, gradient=g.cast(out.dtype))
            results.update({f"grad_{n}": v for n, v in zip(names, grads)})
            if "grad_labels" in quantities:
                results["grad_labels"] = grads[-1]
            if "hvp" in quantities:  # w.r.t. the first primal: the gradient of <grad_x, d>
                results["hvp"] = (grads[0] * d).sum().gradient(x[0])[0]
        return {q: v.realize() for q, v in results.items() if q in quantities}

    return compute


def _arguments(inputs: Inputs, device: str) -> tuple:
    x = [_tensor(a, device) for a in inputs.given_primals.values()]
    return x, _tensor(inputs.given_labels, device), _tensor(inputs.cotangent, device), _tensor(inputs.direction, device)


def _callable(impl: Impl, inputs: Inputs, quantities: tuple[str, ...], mode: str) -> Callable:
    compute = _quantities_fn(impl, inputs, quantities)
    if mode == "eager":
        return compute
    jitted = TinyJit(lambda x, labels, g, d: compute(x, labels, g, d))

    def replayed(x, labels, g, d):
        for _ in range(2):  # the eager run, then the capture
            jitted(x, labels, g, d)
        return jitted(x, labels, g, d)  # the replay of the captured kernels
    return replayed


def _toolchain(exc: BaseException, dtype: str) -> str | None:
    """Why the local compiler could not build a kernel (clang exiting non-zero on the kernel tinygrad generated: clang
    before 15 has no __bf16 arithmetic on x86-64), or None where the failure is not the compiler's."""
    command = getattr(exc, "cmd", None)
    if isinstance(exc, subprocess.CalledProcessError) and command and Path(str(command[0])).name.startswith("clang"):
        return f"{_clang_version()} exited {exc.returncode} compiling a {dtype} kernel"
    return None


@cache
def _clang_version() -> str:
    try:
        return subprocess.run(["clang", "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "clang"


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    quantities = tuple(quantities)
    try:
        out = _callable(impl, inputs, quantities, mode)(*_arguments(inputs, device))
        return {q: _numpy(v) for q, v in out.items()}
    except Exception as exc:
        why = _toolchain(exc, inputs.dtype)
        return {q: Unsupported(f"the local toolchain cannot compile this kernel: {why}") if why else exc for q in quantities}


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The very computation `evaluate` runs (forward, or the gradients of every primal), realized; compiled mode
    replays TinyJit's captured kernels."""
    check_supported(impl, inputs)
    quantities = inputs.primal_gradients if backward else ("value",)
    compute, args = _quantities_fn(impl, inputs, quantities), _arguments(inputs, device)
    fn = TinyJit(lambda x, labels, g, d: compute(x, labels, g, d)) if mode == "compiled" else compute
    return lambda: fn(*args)


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call as a user writes it: the function (its mean where it has no reduction), TinyJit for compiled
    mode and backward() for the backward pass, realized."""
    check_supported(impl, inputs)
    x, labels, g, _ = _arguments(inputs, device)
    composed = impl.reduction_composed(inputs)

    def f(*z):
        out = impl.forward(*all_primals(inputs, z), labels, inputs)
        out = out.mean() if composed else out
        if not backward:
            return out.realize()
        out.backward(g.cast(out.dtype))
        grads = [p.grad.realize() for p in z]
        return tuple(grads) if len(grads) > 1 else grads[0]

    fn = TinyJit(f) if mode == "compiled" else f

    def call():
        for p in x:
            p.requires_grad, p.grad = backward, None
        return fn(*x)
    return call

