"""JAX and optax: jax.nn.softmax, jax.nn.log_softmax, optax.softmax_cross_entropy and
optax.softmax_cross_entropy_with_integer_labels.

Gradients come from jax.vjp, Hessian-vector products from jax.jvp of the vjp (forward-over-reverse).
Compiled mode is jax.jit of the whole quantity computation. float64 needs `jax_enable_x64`, which this
adapter turns on at load (recorded in the flags of every results file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from ..model.ops import op as op_spec
from . import naive
from .base import Array, Impl, check_supported, exact_signature, needs_grad, quantity_arguments, reduce_with

NAME = "jax"
REQUIRES = ("jax", "optax")  # importable packages; checked before any worker starts
PACKAGES = ("jax", "jaxlib", "optax", "ml_dtypes")  # versions that change the numbers (the gate attributes moves to them)
NUMERIC_ENV = ("XLA_FLAGS", "JAX_DEFAULT_MATMUL_PRECISION", "JAX_ENABLE_X64")  # recorded with the results
QUICK_COMPILE = True  # XLA compiles a program in milliseconds: the GPU job runs JAX compiled too
# JAX eager on a GPU compiles every primitive for each shape through XLA's GPU backend: the slower mode there
# (figures: docs/gpu.md, "On a GPU"); only orders the GPU queue
GPU_COLD_SECONDS = {"eager": 230, "compiled": 110}
GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # JAX preallocates 75% of the GPU per process by default
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 65, ("compiled", "float16"): 61, ("compiled", "float32"): 74,
                ("compiled", "float64"): 59, ("eager", "bfloat16"): 110, ("eager", "float16"): 99,
                ("eager", "float32"): 158, ("eager", "float64"): 131}
QUICK_SECONDS = {"eager": 11, "compiled": 5}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"eager": 0.19, "compiled": 0.11}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
OWN_FRACTION = {"eager": 0.95, "compiled": 0.89}  # a cold full run without the naive formulas over one with them (tests/data/costs/full-run-naive-pair.json)
START_SECONDS = 4.0  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 3.0  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 8, "compiled": 3}, "START_SECONDS": 2.3, "IMPORT_SECONDS": 1.5}}
jax: Any = None
jnp: Any = None
optax: Any = None
_compiled: dict = {}


def load(compile_cache: Path | None = None) -> None:
    global jax, jnp, optax
    import jax as _jax

    _jax.config.update("jax_enable_x64", True)
    # JAX's own frames stay in tracebacks: an exception's owner is read from its innermost frame (ownership.py)
    _jax.config.update("jax_traceback_filtering", "off")
    if compile_cache is not None:
        # JAX's persistent compilation cache, for every program however small: eager (op-by-op) dispatch
        # compiles each primitive for each new shape and dtype (hundreds of small programs for one case file), and
        # the cache is keyed by the program, jaxlib version and compile options.
        _jax.config.update("jax_compilation_cache_dir", str(compile_cache / "jax"))
        _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        _jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    import jax.numpy as _jnp
    import optax as _optax

    jax, jnp, optax = _jax, _jnp, _optax


def version() -> str:
    return f"{jax.__version__} (jaxlib {jax.lib.__version__ if hasattr(jax.lib, '__version__') else '?'}, optax {optax.__version__})"


def devices() -> list[str]:
    return ["cpu"] + ([] if "gpu" in device_problems() else ["gpu"])


def device_problems() -> dict[str, str]:
    try:
        return {} if jax.devices("gpu") else {"gpu": "jax.devices('gpu') is empty"}
    except RuntimeError as exc:  # no CUDA plugin, or it failed to initialise: the reason, not a silent skip
        return {"gpu": f"jax.devices('gpu') raised: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"}


def set_threads(n: int) -> None:
    """XLA's CPU thread pool is sized when JAX starts; `conformance bench` pins the process to n cores instead."""


def flags() -> dict:
    return {"jax_enable_x64": bool(jax.config.jax_enable_x64),
            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision}


def softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return jax.nn.softmax(x, axis=inputs.axis)


def log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return jax.nn.log_softmax(x, axis=inputs.axis)


def cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return optax.softmax_cross_entropy(x, labels, axis=inputs.axis)


def sparse_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return optax.softmax_cross_entropy_with_integer_labels(x, labels, axis=inputs.axis)


def safe_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return optax.safe_softmax_cross_entropy(x, labels)


def nn_logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return jax.nn.logsumexp(x, axis=inputs.axis)


def scipy_logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return jax.scipy.special.logsumexp(x, axis=inputs.axis)


def logsumexp_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The log-softmax people write from the public, documented jax.scipy.special.logsumexp."""
    return x - jax.scipy.special.logsumexp(x, axis=inputs.axis, keepdims=True)


def softmax_where(x: Array, mask: Array, inputs: Inputs) -> Array:
    """JAX's own masked softmax: the `where` argument (masked entries come back 0)."""
    return jax.nn.softmax(x, axis=inputs.axis, where=mask)


def log_softmax_where(x: Array, mask: Array, inputs: Inputs) -> Array:
    return jax.nn.log_softmax(x, axis=inputs.axis, where=mask)


def logsumexp_where_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked log-softmax from the public logsumexp's own mask: `where=` keeps the masked entries out of the sum,
    and the output is -inf there (what jax.nn.log_softmax(where=) documents). Its gradient at masked entries is
    logsumexp's: JAX before 0.5.0 gave them nonzero values (jax commit f0392a1, 'fix grad(logsumexp) to produce 0s
    where `where` is False')."""
    lse = jax.scipy.special.logsumexp(x, axis=inputs.axis, keepdims=True, where=mask)
    return jnp.where(mask, x - lse, -jnp.inf)


def jnp_where_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked softmax as people write it without `where=`: jnp.where(mask, x, -inf), then softmax."""
    return jax.nn.softmax(jnp.where(mask, x, -jnp.inf), axis=inputs.axis)


def jnp_where_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    return jax.nn.log_softmax(jnp.where(mask, x, -jnp.inf), axis=inputs.axis)


def cross_entropy_where(x: Array, labels: Array, inputs: Inputs) -> Array:
    """optax's masked cross-entropy (optax 0.2.4 on): `where=` keeps the masked classes out of the log-softmax and out
    of the sum, label mass on them included."""
    return optax.softmax_cross_entropy(x, labels, axis=inputs.axis, where=jnp.asarray(inputs.mask))




def sparse_cross_entropy_where(x: Array, labels: Array, inputs: Inputs) -> Array:
    """optax's masked integer-label cross-entropy (optax 0.2.4 on): `where=` keeps the masked classes out of the
    normaliser; the target's logit is read as it is."""
    return optax.softmax_cross_entropy_with_integer_labels(x, labels, axis=inputs.axis, where=jnp.asarray(inputs.mask))


def linear_then_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """The composed form as JAX code writes an LLM head: the logits h @ W.T (+ b), then optax's integer-label or dense
    cross-entropy (JAX has no fused linear cross-entropy of its own)."""
    logits = hidden @ weight.T + (0 if bias is None else bias)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return optax.softmax_cross_entropy(logits, targets)


NAIVE = naive.Namespace(
    exp=lambda x: jnp.exp(x), log=lambda x: jnp.log(x), sum=lambda x, axis, keep: jnp.sum(x, axis=axis, keepdims=keep),
    softmax=lambda x, axis: jax.nn.softmax(x, axis=axis),
    pick=lambda v, t, axis: jnp.squeeze(jnp.take_along_axis(v, jnp.expand_dims(t, axis), axis=axis), axis),
    spelling="jnp.exp jnp.sum jnp.log jax.nn.softmax")


def implementations() -> list[Impl]:
    return [
        Impl(NAME, "jax.nn.softmax", "softmax", softmax, key="softmax"),
        Impl(NAME, "jax.nn.log_softmax", "log_softmax", log_softmax, key="log_softmax"),
        Impl(NAME, "optax.softmax_cross_entropy", "softmax_cross_entropy", cross_entropy, key="optax/softmax_cross_entropy"),
        Impl(NAME, "optax.safe_softmax_cross_entropy", "softmax_cross_entropy", safe_cross_entropy, key="optax/safe_softmax_cross_entropy",
             last_axis_only=True),
        Impl(NAME, "optax.softmax_cross_entropy_with_integer_labels", "sparse_softmax_cross_entropy", sparse_cross_entropy,
             key="optax/softmax_cross_entropy_with_integer_labels"),
        Impl(NAME, "x - jax.scipy.special.logsumexp(x)", "log_softmax", logsumexp_log_softmax, key="logsumexp/log_softmax"),
        Impl(NAME, "jax.nn.logsumexp", "logsumexp", nn_logsumexp, key="nn/logsumexp"),
        Impl(NAME, "jax.scipy.special.logsumexp", "logsumexp", scipy_logsumexp, key="scipy/logsumexp"),
        Impl(NAME, "jax.nn.softmax(x, where=mask)", "masked_softmax", softmax_where, key="softmax/where"),
        Impl(NAME, "jax.nn.log_softmax(x, where=mask)", "masked_log_softmax", log_softmax_where, key="log_softmax/where"),
        Impl(NAME, "x - jax.scipy.special.logsumexp(x, where=mask)", "masked_log_softmax", logsumexp_where_log_softmax,
             key="logsumexp/where/log_softmax"),
        Impl(NAME, "jax.nn.softmax(jnp.where(mask, x, -inf))", "masked_softmax", jnp_where_softmax, key="jnp_where/softmax"),
        Impl(NAME, "jax.nn.log_softmax(jnp.where(mask, x, -inf))", "masked_log_softmax", jnp_where_log_softmax,
             key="jnp_where/log_softmax"),
        Impl(NAME, "optax.softmax_cross_entropy(x, y, where=mask)", "masked_softmax_cross_entropy", cross_entropy_where,
             key="optax/softmax_cross_entropy/where"),
        Impl(NAME, "optax.softmax_cross_entropy_with_integer_labels(x, t, where=mask)", "masked_sparse_softmax_cross_entropy",
             sparse_cross_entropy_where, key="optax/softmax_cross_entropy_with_integer_labels/where"),
        Impl(NAME, "optax.softmax_cross_entropy_with_integer_labels(h @ W.T + b, t)", "linear_cross_entropy", linear_then_cross_entropy,
             key="linear/optax/cross_entropy"),
        *naive.implementations(NAME, NAIVE),
    ]


def _quantities_fn(impl: Impl, inputs, quantities: tuple[str, ...]):
    """One function computing exactly the requested quantities (what is not asked is never returned, so a compiled
    program drops it): evaluate and the benchmarks run the very same code."""
    composed = impl.reduction_composed(inputs)
    with_labels = "grad_labels" in quantities  # differentiate w.r.t. the labels only when asked (eager pays for it)
    names = tuple(inputs.primals)  # x is the tuple of the op's primals (None for an absent bias: an empty pytree node)

    def forward(x, labels):
        out = impl.forward(*x, labels, inputs)
        return reduce_with(out, inputs.options.reduction, jnp.sum, jnp.mean) if composed else out

    def compute(x, labels, g, d):
        if not needs_grad(quantities):
            return {"value": forward(x, labels)}
        results = {}
        # The cotangent takes the output's dtype, as jax.grad's would: a function whose output dtype differs from
        # its input's (Keras computing in floatx, or promoting float32 with int64 labels under x64) is still
        # differentiated. For JAX's own functions the cast changes nothing.
        if with_labels:
            out, pullback = jax.vjp(forward, x, labels)
            cotangent = g.astype(out.dtype)
            gx, gy = pullback(cotangent)
            results["grad_labels"] = gy
        else:
            out, pullback = jax.vjp(lambda x_: forward(x_, labels), x)
            cotangent = g.astype(out.dtype)
            (gx,) = pullback(cotangent)
        results["value"] = out
        results.update({f"grad_{n}": v for n, v in zip(names, gx) if v is not None})
        if "hvp" in quantities:  # w.r.t. the first primal (the logits, the hidden states)
            def grad_x(x_):
                return jax.vjp(lambda z: forward((z, *x[1:]), labels), x_)[1](cotangent)[0]

            results["hvp"] = jax.jvp(grad_x, (x[0],), (d,))[1]
        return {q: v for q, v in results.items() if q in quantities}

    return exact_signature(compute, quantities)


def _callable(impl: Impl, inputs, quantities: tuple[str, ...], mode: str):
    if mode == "eager":
        return _quantities_fn(impl, inputs, quantities)
    key = (impl.name, impl.op, inputs.options, inputs.axis, quantities, tuple(a is None for a in inputs.primals.values()), _baked(inputs))
    if key not in _compiled:
        _compiled[key] = jax.jit(_quantities_fn(impl, inputs, quantities))
    return _compiled[key]


def _baked(inputs: Inputs) -> tuple | None:
    """What a compiled program holds as a constant, read from `inputs` rather than passed: a masked cross-entropy's mask
    (its label argument is the dense labels). A program compiled for one mask must not answer for another."""
    if inputs.mask is None or op_spec(inputs.op).labels == "mask":
        return None
    return inputs.mask.shape, inputs.mask.tobytes()


def _device(device: str):
    return jax.devices("gpu" if device == "gpu" else "cpu")[0]


def _numpy(a) -> np.ndarray:
    """The array as NumPy in its own dtype (JAX hands bfloat16 over as ml_dtypes.bfloat16)."""
    return np.asarray(a)


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    quantities = tuple(quantities)
    dev = _device(device)
    x = _primals(inputs, dev)
    labels = jax.device_put(inputs.given_labels, dev)
    g, d = jax.device_put(inputs.cotangent, dev), jax.device_put(inputs.direction, dev)
    try:
        out = _callable(impl, inputs, quantities, mode)(*quantity_arguments(quantities, x, labels, g, d))
        return {q: _numpy(jax.block_until_ready(v)) for q, v in out.items()}
    except Exception as exc:
        return {q: exc for q in quantities}


def _primals(inputs: Inputs, dev) -> tuple:
    return tuple(None if a is None else jax.device_put(a, dev) for a in inputs.primals.values())


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """A zero-argument callable running the very function `evaluate` runs (forward, or forward and the gradient
    w.r.t. the logits) on arrays already on the device, returning once the result exists (block_until_ready)."""
    check_supported(impl, inputs)
    # a training step's backward returns the gradients alone, of every primal
    quantities = inputs.primal_gradients if backward else ("value",)
    dev = _device(device)
    x, labels, g = _primals(inputs, dev), jax.device_put(inputs.given_labels, dev), jax.device_put(inputs.cotangent, dev)
    fn, args = _callable(impl, inputs, quantities, mode), quantity_arguments(quantities, x, labels, g, None)
    return lambda: jax.block_until_ready(fn(*args))


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call with nothing of the harness around it, written out as a user would (for the overhead table):
    the function, its mean where it has no reduction, jax.jit for compiled mode and jax.vjp for the backward pass,
    on arrays already on the device."""
    check_supported(impl, inputs)
    dev = _device(device)
    t, g = (None if a is None else jax.device_put(a, dev) for a in (inputs.given_labels, inputs.cotangent))
    x = _primals(inputs, dev)
    composed = impl.reduction_composed(inputs)

    def f(x, t):
        out = impl.forward(*x, t, inputs)
        return jnp.mean(out) if composed else out

    if backward:
        def f_grad(x, t, g):
            return jax.vjp(lambda z: f((z, *x[1:]), t), x[0])[1](g)[0]
        fn = jax.jit(f_grad) if mode == "compiled" else f_grad
        return lambda: jax.block_until_ready(fn(x, t, g))
    fn = jax.jit(f) if mode == "compiled" else f
    return lambda: jax.block_until_ready(fn(x, t))


def forget_compiled() -> None:
    """Drop every compiled callable, so that the next call compiles afresh: in one process, a function under check
    (adapters/user.py) replaced by another keeps its implementation's name and would otherwise reuse the first one's."""
    _compiled.clear()
