"""NumPy/SciPy: scipy.special.softmax / log_softmax, and cross-entropy built from them.

NumPy has no automatic differentiation and no compiler: every gradient quantity and the compiled mode
are reported `unsupported`. The cross-entropy implementations are compositions (SciPy offers no fused
cross-entropy), named for exactly what they compute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from . import naive
from .base import Impl, Unsupported, check_supported, mark_overwritten, overwritten, reduce_with

NAME = "numpy"
REQUIRES = ("scipy",)  # importable packages; checked before any worker starts
PACKAGES = ("numpy", "scipy", "ml_dtypes")  # versions that change the numbers (the gate attributes moves to them)
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 3, ("compiled", "float16"): 2, ("compiled", "float32"): 3,
                ("compiled", "float64"): 1, ("eager", "bfloat16"): 4, ("eager", "float16"): 4,
                ("eager", "float32"): 3, ("eager", "float64"): 1}
QUICK_SECONDS = {"eager": 0, "compiled": 0}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
START_SECONDS = 2.1  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 1.0  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 0, "compiled": 0}, "START_SECONDS": 1.1, "IMPORT_SECONDS": 0.4}}
GPU = False  # NumPy/SciPy run on the CPU only; CuPy (cupyx.scipy.special) is the GPU counterpart
_sp = None


def load(compile_cache: Path | None = None) -> None:
    """SciPy compiles nothing: `compile_cache` is unused."""
    global _sp
    import scipy.special

    _sp = scipy.special


def version() -> str:
    import scipy

    return f"numpy {np.__version__}, scipy {scipy.__version__}"


def devices() -> list[str]:
    return ["cpu"]


def set_threads(n: int) -> None:
    """NumPy's ufuncs and SciPy's softmax run on one thread whatever n is (recorded in flags)."""


def flags() -> dict:
    return {"threads": "one (NumPy ufuncs are single-threaded)"}


def scipy_api(framework: str, xp: ModuleType, special: ModuleType, spelled: str) -> list[Impl]:
    """The SciPy API's softmax doors over an array module, with the two cross-entropies and the masked forms as
    people write them with it (no loss function, no mask argument): NumPy with scipy.special here, CuPy with
    cupyx.scipy.special in the cupy adapter. `spelled`: how the labels name the module and its special functions."""
    xp_name, special_name = spelled.split()

    def softmax(x, labels, inputs):
        return special.softmax(x, axis=inputs.axis)

    def log_softmax(x, labels, inputs):
        return special.log_softmax(x, axis=inputs.axis)

    def cross_entropy(x, labels, inputs):
        return -xp.sum(labels * special.log_softmax(x, axis=inputs.axis), axis=inputs.axis)

    def sparse_cross_entropy(x, labels, inputs):
        picked = xp.take_along_axis(special.log_softmax(x, axis=inputs.axis), xp.expand_dims(labels, inputs.axis), axis=inputs.axis)
        return -xp.squeeze(picked, axis=inputs.axis)

    def logsumexp(x, labels, inputs):
        return special.logsumexp(x, axis=inputs.axis)

    def masked_softmax(x, mask, inputs):  # the masked entries set to -inf first
        return special.softmax(xp.where(mask, x, -xp.inf), axis=inputs.axis)

    def masked_log_softmax(x, mask, inputs):
        return special.log_softmax(xp.where(mask, x, -xp.inf), axis=inputs.axis)

    def masked_cross_entropy(x, labels, inputs):  # the mask comes beside the labels; masked terms left out of the sum
        mask = xp.asarray(inputs.mask)
        log_p = special.log_softmax(xp.where(mask, x, -xp.inf), axis=inputs.axis)
        return -xp.sum(xp.where(mask, labels * log_p, xp.zeros((), labels.dtype)), axis=inputs.axis)

    def masked_sparse_cross_entropy(x, labels, inputs):  # the mask comes beside the class indices
        return sparse_cross_entropy(xp.where(xp.asarray(inputs.mask), x, -xp.inf), labels, inputs)

    # (label, op, function, stable key): the keys are the same for both array modules
    doors = ((f"{special_name}.softmax", "softmax", softmax, "scipy/softmax"),
             (f"{special_name}.log_softmax", "log_softmax", log_softmax, "scipy/log_softmax"),
             (f"-sum(y * {special_name}.log_softmax(x))", "softmax_cross_entropy", cross_entropy, "scipy/cross_entropy"),
             (f"-take_along_axis({special_name}.log_softmax(x), t)", "sparse_softmax_cross_entropy", sparse_cross_entropy,
              "scipy/sparse_cross_entropy"),
             (f"{special_name}.logsumexp", "logsumexp", logsumexp, "scipy/logsumexp"),
             (f"{special_name}.softmax({xp_name}.where(mask, x, -inf))", "masked_softmax", masked_softmax, "scipy/where/softmax"),
             (f"{special_name}.log_softmax({xp_name}.where(mask, x, -inf))", "masked_log_softmax", masked_log_softmax,
              "scipy/where/log_softmax"),
             (f"-sum(where(mask, y * {special_name}.log_softmax({xp_name}.where(mask, x, -inf)), 0))", "masked_softmax_cross_entropy",
              masked_cross_entropy, "scipy/where/cross_entropy"),
             (f"-take_along_axis({special_name}.log_softmax({xp_name}.where(mask, x, -inf)), t)", "masked_sparse_softmax_cross_entropy",
              masked_sparse_cross_entropy, "scipy/where/sparse_cross_entropy"))
    return [Impl(framework, label, op, fn, key=key) for label, op, fn, key in doors]


NAIVE = naive.Namespace(
    exp=lambda x: np.exp(x), log=lambda x: np.log(x), sum=lambda x, axis, keep: np.sum(x, axis=axis, keepdims=keep),
    softmax=lambda x, axis: _sp.softmax(x, axis=axis),
    pick=lambda v, t, axis: np.squeeze(np.take_along_axis(v, np.expand_dims(t, axis), axis=axis), axis=axis),
    spelling="np.exp np.sum np.log scipy.special.softmax")


def linear_then_log_softmax(hidden: Any, weight: Any, bias: Any, targets: Any, inputs: Inputs) -> Any:
    """The composed form in NumPy: the logits h @ W.T (+ b) with matmul, then SciPy's log_softmax picked at the targets
    (integer) or summed against them (dense). Value only, as every NumPy door."""
    logits = hidden @ weight.T + (0 if bias is None else bias)
    logp = _sp.log_softmax(logits, axis=-1)
    if np.issubdtype(targets.dtype, np.integer):
        return -np.squeeze(np.take_along_axis(logp, targets[..., None], axis=-1), axis=-1)
    return -np.sum(targets * logp, axis=-1)


def implementations() -> list[Impl]:
    return [*scipy_api(NAME, np, _sp, "np scipy.special"), *naive.implementations(NAME, NAIVE),
            Impl(NAME, "-scipy.special.log_softmax(h @ W.T + b)[t]", "linear_cross_entropy", linear_then_log_softmax,
                 key="linear/scipy/log_softmax")]


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    if mode != "eager":
        raise Unsupported("NumPy/SciPy have no compiler")
    if device != "cpu":
        raise Unsupported("NumPy/SciPy run on the CPU only")
    labels = inputs.given_labels
    results: dict = {}
    for q in quantities:
        if q != "value":
            results[q] = Unsupported("NumPy/SciPy have no automatic differentiation")
    if "value" in quantities:
        # copies: the arrays are the corpus's, shared by every implementation, and a function may write into them
        xs, y = _copies(inputs), None if labels is None else labels.copy()
        try:
            with np.errstate(all="ignore"):
                out = impl.forward(*xs.values(), y, inputs)
                out = reduce_with(out, inputs.options.reduction, np.sum, np.mean)
            results["value"] = np.asarray(out)
        except Exception as exc:  # the framework's own error is the finding
            results["value"] = exc
        given, now = inputs.given_primals, {n: xs[n] for n in inputs.given_primals}
        if labels is not None:
            given["labels"], now["labels"] = labels, y
        results = mark_overwritten(results, overwritten(given, now, "call"))
    return results


def _copies(inputs: Inputs) -> dict:
    return {n: None if a is None else a.copy() for n, a in inputs.primals.items()}


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """A zero-argument callable running `impl` forward, as `evaluate` does; NumPy computes before returning."""
    check_supported(impl, inputs)
    if mode != "eager" or device != "cpu" or backward:
        raise Unsupported("NumPy/SciPy have no compiler, no GPU and no automatic differentiation")
    labels = inputs.given_labels
    reduction = inputs.options.reduction
    args = [*inputs.primals.values(), labels]
    return lambda: reduce_with(impl.forward(*args, inputs), reduction, np.sum, np.mean)


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call with nothing of the harness around it (for the overhead table): SciPy's function, and NumPy's
    mean where the composition needs one."""
    check_supported(impl, inputs)
    if mode != "eager" or device != "cpu" or backward:
        raise Unsupported("NumPy/SciPy have no compiler, no GPU and no automatic differentiation")
    args = [*inputs.primals.values(), inputs.given_labels]
    if impl.reduction_composed(inputs):
        return lambda: np.mean(impl.forward(*args, inputs))
    return lambda: impl.forward(*args, inputs)
