"""MLX (Apple's array framework; on Linux its CPU build, `mlx[cpu]`): mx.softmax (both `precise=` settings),
mlx.nn.log_softmax, the log-softmax written from mx.logsumexp, and mlx.nn.losses.cross_entropy with integer and dense
targets.

Gradients come from mx.vjp, Hessian-vector products from mx.jvp of the vjp (forward-over-reverse), as in jax.py.
Compiled mode is mx.compile of the whole quantity computation. MLX evaluates lazily: every result is forced with
mx.eval before it is read back. Metal is MLX's GPU; this suite's GPU is CUDA, so only the CPU is offered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from ..model.dtypes import bfloat16
from . import naive
from .base import Array, Impl, all_primals, check_supported, exact_signature, needs_grad, quantity_arguments, reduce_with

NAME = "mlx"
REQUIRES = ("mlx",)  # importable packages; checked before any worker starts
PACKAGES = ("mlx", "mlx-cpu", "mlx-metal")  # versions that change the numbers (the gate attributes moves to them)
GPU = False  # MLX's GPU is Metal (Apple silicon); the CUDA build is not this adapter's
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 55, ("compiled", "float16"): 51, ("compiled", "float32"): 69,
                ("compiled", "float64"): 63, ("eager", "bfloat16"): 5, ("eager", "float16"): 5,
                ("eager", "float32"): 4, ("eager", "float64"): 3}
QUICK_SECONDS = {"eager": 1, "compiled": 14}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"compiled": 0.01}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
START_SECONDS = 1.8  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 0.6  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 1, "compiled": 7}, "START_SECONDS": 0.9, "IMPORT_SECONDS": 0.3}}
mx: Any = None
nn: Any = None
_compiled: dict = {}


def load(compile_cache: Path | None = None) -> None:
    """MLX's CPU backend builds each fused kernel of mx.compile into a shared library under the temporary folder
    ($TMPDIR/mlx/<version>/cpu, with no setting of its own: mlx/backend/cpu/compiled.cpp) and loads it from there in
    every later process. With a compile cache, this process's temporary folder is inside it, so that an empty cache is
    a cold run (kernels left in /tmp made every run after the first warm: a full run's MLX workers took 41 s warm
    against 266 s cold) and a kept cache a warm one."""
    global mx, nn
    if compile_cache is not None:
        kernels = compile_cache / "mlx-tmp"
        kernels.mkdir(parents=True, exist_ok=True)
        os.environ["TMPDIR"] = str(kernels)
    import mlx.core as _mx
    import mlx.nn as _nn

    mx, nn = _mx, _nn
    mx.set_default_device(mx.cpu)


def version() -> str:
    return mx.__version__


def devices() -> list[str]:
    return ["cpu"]


def set_threads(n: int) -> None:
    """MLX sizes its CPU thread pool at start-up; `conformance bench` pins the process to n cores instead."""


def flags() -> dict:
    return {"default_device": str(mx.default_device())}


def softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return mx.softmax(x, axis=inputs.axis)


def precise_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """`precise=True`: half-precision inputs are computed in float32 (MLX's own documentation of the flag)."""
    return mx.softmax(x, axis=inputs.axis, precise=True)


def log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return nn.log_softmax(x, axis=inputs.axis)


def logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return mx.logsumexp(x, axis=inputs.axis)


def logsumexp_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The log-softmax people write from the public mx.logsumexp."""
    return x - mx.logsumexp(x, axis=inputs.axis, keepdims=True)


def cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """mlx.nn.losses.cross_entropy: class indices when the targets have one dimension fewer than the logits,
    probabilities when they have as many. Its `weights` are per target, not per class: not the SPEC's `weight`."""
    opts = inputs.options
    return nn.losses.cross_entropy(x, labels, axis=inputs.axis, label_smoothing=opts.label_smoothing, reduction=opts.reduction)


def where_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked softmax as MLX code writes it (no mask argument): mx.where(mask, x, -inf), then softmax."""
    return mx.softmax(mx.where(mask, x, -mx.inf), axis=inputs.axis)


def where_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    return nn.log_softmax(mx.where(mask, x, -mx.inf), axis=inputs.axis)


def linear_then_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """The composed LLM head as MLX code writes it (MLX has no fused linear cross-entropy): h @ W.T (+ b), then
    mlx.nn.losses.cross_entropy as the cross_entropy door calls it."""
    logits = hidden @ weight.T if bias is None else mx.addmm(bias, hidden, weight.T)
    return cross_entropy(logits, targets, inputs)

NAIVE = naive.Namespace(
    exp=lambda x: mx.exp(x), log=lambda x: mx.log(x), sum=lambda x, axis, keep: mx.sum(x, axis=axis, keepdims=keep),
    softmax=lambda x, axis: mx.softmax(x, axis=axis),
    pick=lambda v, t, axis: mx.take_along_axis(v, mx.expand_dims(t, axis), axis=axis).squeeze(axis),
    spelling="mx.exp mx.sum mx.log mx.softmax")


def implementations() -> list[Impl]:
    losses = frozenset({"label_smoothing", "reduction"})
    return [
        Impl(NAME, "mx.softmax", "softmax", softmax, key="softmax"),
        Impl(NAME, "mx.softmax(x, precise=True)", "softmax", precise_softmax, key="softmax/precise"),
        Impl(NAME, "mlx.nn.log_softmax", "log_softmax", log_softmax, key="nn/log_softmax"),
        Impl(NAME, "x - mx.logsumexp(x)", "log_softmax", logsumexp_log_softmax, key="logsumexp/log_softmax"),
        Impl(NAME, "mx.logsumexp", "logsumexp", logsumexp, key="logsumexp"),
        Impl(NAME, "mlx.nn.losses.cross_entropy (probabilities)", "softmax_cross_entropy", cross_entropy, options=losses,
             key="nn/losses/cross_entropy"),
        Impl(NAME, "mlx.nn.losses.cross_entropy (class indices)", "sparse_softmax_cross_entropy", cross_entropy, options=losses,
             key="nn/losses/cross_entropy/indices"),
        Impl(NAME, "mx.softmax(mx.where(mask, x, -inf))", "masked_softmax", where_softmax, key="where/softmax"),
        Impl(NAME, "mlx.nn.log_softmax(mx.where(mask, x, -inf))", "masked_log_softmax", where_log_softmax, key="where/log_softmax"),
        Impl(NAME, "mlx.nn.losses.cross_entropy(h @ W.T + b, t)", "linear_cross_entropy", linear_then_cross_entropy, options=losses,
             key="linear/cross_entropy"),
        *naive.implementations(NAME, NAIVE),
    ]


def _quantities_fn(impl: Impl, inputs: Inputs, quantities: tuple[str, ...]) -> Callable:
    """One function computing exactly the requested quantities, for evaluate and the benchmarks alike; `x` is the list
    of the op's given primals."""
    composed = impl.reduction_composed(inputs)
    names = tuple(inputs.given_primals)

    def forward(x, labels):
        out = impl.forward(*all_primals(inputs, x), labels, inputs)
        return reduce_with(out, inputs.options.reduction, mx.sum, mx.mean) if composed else out

    def compute(x, labels, g, d):
        if not needs_grad(quantities):
            return {"value": forward(x, labels)}
        results = {}
        if "grad_labels" in quantities:
            (out,), grads = mx.vjp(lambda *a: forward(list(a[:-1]), a[-1]), [*x, labels], [g])
            results["grad_labels"] = grads[-1]
            grads = grads[:-1]
        else:
            (out,), grads = mx.vjp(lambda *a: forward(list(a), labels), list(x), [g])
        results["value"] = out
        results.update({f"grad_{n}": v for n, v in zip(names, grads)})
        if "hvp" in quantities:  # w.r.t. the first primal (the logits, the hidden states)
            def grad_first(z):
                return mx.vjp(lambda first: forward([first, *x[1:]], labels), [z], [g])[1][0]

            results["hvp"] = mx.jvp(grad_first, [x[0]], [d])[1][0]
        return {q: v for q, v in results.items() if q in quantities}

    return exact_signature(compute, quantities)


def _callable(impl: Impl, inputs: Inputs, quantities: tuple[str, ...], mode: str) -> Callable:
    if mode == "eager":
        return _quantities_fn(impl, inputs, quantities)
    key = (impl.forward, impl.op, inputs.options, inputs.axis, quantities, tuple(a is None for a in inputs.primals.values()))
    if key not in _compiled:
        _compiled[key] = mx.compile(_quantities_fn(impl, inputs, quantities))
    return _compiled[key]


def _array(a: np.ndarray | None) -> Array:
    if a is None:
        return None
    if a.dtype.name == "bfloat16":  # MLX cannot read ml_dtypes arrays; float32 holds every bfloat16 exactly
        return mx.array(a.astype(np.float32)).astype(mx.bfloat16)
    if a.dtype == np.float64:  # mx.array turns a float64 NumPy array into float32 unless told otherwise
        return mx.array(a, dtype=mx.float64)
    return mx.array(a)


def _numpy(a: Array) -> np.ndarray:
    """The array as NumPy in its own dtype (bfloat16 through float32, which holds every bfloat16 exactly)."""
    if a.dtype == mx.bfloat16:
        return np.array(a.astype(mx.float32)).astype(bfloat16())
    return np.array(a)


def _arguments(inputs: Inputs, quantities: tuple[str, ...]) -> tuple:
    x = [_array(a) for a in inputs.given_primals.values()]
    return quantity_arguments(quantities, x, _array(inputs.given_labels), _array(inputs.cotangent), _array(inputs.direction))


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    quantities = tuple(quantities)
    try:
        out = _callable(impl, inputs, quantities, mode)(*_arguments(inputs, quantities))
        mx.eval(out)  # lazy: errors of the computation surface here
        return {q: _numpy(v) for q, v in out.items()}
    except Exception as exc:
        return {q: exc for q in quantities}


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """A zero-argument callable running the very function `evaluate` runs, forced with mx.eval."""
    check_supported(impl, inputs)
    quantities = inputs.primal_gradients if backward else ("value",)
    fn, args = _callable(impl, inputs, quantities, mode), _arguments(inputs, quantities)

    def call():
        out = fn(*args)
        mx.eval(out)
        return out
    return call


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call as a user writes it: the function (its mean where it has no reduction), mx.compile for compiled
    mode and mx.grad of the mean for the backward pass, forced with mx.eval."""
    check_supported(impl, inputs)
    x = [_array(a) for a in inputs.given_primals.values()]
    labels = _array(inputs.given_labels)
    composed = impl.reduction_composed(inputs)

    def f(*z):
        out = impl.forward(*all_primals(inputs, z), labels, inputs)
        return mx.mean(out) if composed else out

    if backward:  # the gradient of the sum (a uniform cotangent), of every primal: one array where there is one
        g = mx.grad(lambda *z: mx.sum(f(*z)), argnums=tuple(range(len(x))) if len(x) > 1 else 0)
        fn = mx.compile(g) if mode == "compiled" else g
    else:
        fn = mx.compile(f) if mode == "compiled" else f

    def call():
        out = fn(*x)
        mx.eval(out)
        return out
    return call


def forget_compiled() -> None:
    """Drop every compiled callable (a function under check replaced by another keeps its implementation's name)."""
    _compiled.clear()
