"""CuPy: cupyx.scipy.special.softmax / log_softmax on the GPU, and cross-entropy built from them.

The GPU counterpart of the NumPy/SciPy family: the same public SciPy API, CUDA kernels underneath. CuPy has no
automatic differentiation and no compiler, and runs on the GPU only: gradients, the compiled mode and the CPU are
`unsupported`. bfloat16 is not a CuPy dtype. The cross-entropies are compositions (there is no fused one), named
for exactly what they compute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from .base import Impl, Unsupported, check_supported, reduce_with
from .numpy import scipy_api

NAME = "cupy"
REQUIRES = ("cupy",)
GPU_ONLY = True  # CuPy has no CPU device: a CPU machine does not mention it unless it is named
PACKAGES = ("cupy-cuda12x", "cupy-cuda11x", "cupy", "numpy")  # versions that change the numbers
cp: Any = None
_sp: Any = None


def load(compile_cache: Path | None = None) -> None:
    """CuPy caches its compiled kernels itself (~/.cupy/kernel_cache): `compile_cache` is unused."""
    global cp, _sp
    import cupy
    import cupyx.scipy.special

    cp, _sp = cupy, cupyx.scipy.special


def version() -> str:
    return f"cupy {cp.__version__}"


def device_problems() -> dict[str, str]:
    problems = {"cpu": "CuPy runs on the GPU only (numpy/SciPy is its CPU counterpart)"}
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            problems["gpu"] = "cupy.cuda.runtime.getDeviceCount() is 0"
    except Exception as exc:  # no driver: CUDARuntimeError
        problems["gpu"] = f"cupy.cuda.runtime.getDeviceCount() raised: {type(exc).__name__}: {exc}"
    return problems


def devices() -> list[str]:
    return [d for d in ("cpu", "gpu") if d not in device_problems()]


def set_threads(n: int) -> None:
    """CuPy's kernels run on the GPU; host threads do not change them."""


def flags() -> dict:
    try:
        return {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}
    except Exception:
        return {}


def implementations() -> list[Impl]:
    return scipy_api(NAME, cp, _sp, "cupy cupyx.scipy.special")


def _check(impl: Impl, inputs, quantities, mode: str, device: str) -> None:
    check_supported(impl, inputs)
    if mode != "eager":
        raise Unsupported("CuPy has no compiler")
    if device != "gpu":
        raise Unsupported("CuPy runs on the GPU only")
    if inputs.dtype == "bfloat16":
        raise Unsupported("CuPy has no bfloat16")


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    _check(impl, inputs, quantities, mode, device)
    results: dict = {q: Unsupported("CuPy has no automatic differentiation") for q in quantities if q != "value"}
    if "value" in quantities:
        try:
            labels = None if inputs.given_labels is None else cp.asarray(inputs.given_labels)
            out = impl.forward(cp.asarray(inputs.logits), labels, inputs)
            results["value"] = np.asarray(cp.asnumpy(reduce_with(out, inputs.options.reduction, cp.sum, cp.mean)))
        except Exception as exc:  # the framework's own error is the finding
            results["value"] = exc
    return results


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The forward call on device-resident arrays with the SPEC reduction, synchronised (CUDA kernels are asynchronous)."""
    return _device_call(impl, inputs, mode, device, backward, lambda out: reduce_with(out, inputs.options.reduction, cp.sum, cp.mean))


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call with nothing of the harness around it (for the overhead table): its mean where the function has
    no reduction of its own, synchronised."""
    composed = impl.reduction_composed(inputs)
    return _device_call(impl, inputs, mode, device, backward, lambda out: cp.mean(out) if composed else out)


def _device_call(impl: Impl, inputs, mode: str, device: str, backward: bool, finish):
    _check(impl, inputs, ("value",), mode, device)
    if backward:
        raise Unsupported("CuPy has no automatic differentiation")
    x = cp.asarray(inputs.logits)
    t = None if inputs.given_labels is None else cp.asarray(inputs.given_labels)
    sync = cp.cuda.Device().synchronize

    def call():
        out = finish(impl.forward(x, t, inputs))
        sync()
        return out
    return call


class CopyRoof:
    """The speed report's GPU roof: device-to-device copy bandwidth, timed with CUDA events. CuPy is used here as a
    measuring tool, not as the library under test (adapters.gpu_roof)."""

    method = "CuPy device-to-device copy (read + write), CUDA events, same footprint"

    def __init__(self):
        import cupy  # noqa: F401  (ImportError: no GPU roof; the benchmarks say so)

        self.cache: dict[int, float] = {}

    def describe(self) -> str:
        return self.method

    def gbps(self, nbytes: int) -> float:
        import cupy

        if nbytes not in self.cache:
            half = max(nbytes // 2, 64)
            src, dst = cupy.ones(half, cupy.uint8), cupy.empty(half, cupy.uint8)
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            best = float("inf")
            for _ in range(20):
                start.record()
                dst[...] = src
                stop.record()
                stop.synchronize()
                best = min(best, cupy.cuda.get_elapsed_time(start, stop) / 1e3)
            self.cache[nbytes] = 2 * half / best / 1e9
        return self.cache[nbytes]
