"""PaddlePaddle: paddle.nn.functional.softmax / log_softmax, F.cross_entropy (hard and soft labels, ignore_index, weight,
reduction, axis, label_smoothing), the deprecated but still shipped F.softmax_with_cross_entropy, F.nll_loss after
F.log_softmax, and F.label_smooth before a soft-label cross-entropy.

Gradients come from paddle.grad, Hessian-vector products from a second paddle.grad of <grad, d> (create_graph=True).
Compiled mode is paddle.jit.to_static (its static-graph program) of the forward; the gradients are those of the
converted program.
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
from .base import Array, Impl, Unsupported, check_supported, mark_overwritten, needs_grad, no_sync, reduce_with, synced_forward, written_into

NAME = "paddle"
REQUIRES = ("paddle",)  # importable packages; checked before any worker starts
PACKAGES = ("paddlepaddle", "paddlepaddle-gpu")  # versions that change the numbers (the gate attributes moves to them)
NUMERIC_ENV = ("FLAGS_use_mkldnn", "FLAGS_cudnn_deterministic")  # recorded with the results
QUIET_ENV = {"GLOG_minloglevel": "2", "GLOG_v": "0"}
# Cold-cache seconds per (mode, dtype) of a full bundled run on a 2-core AMD EPYC VM: its workers die and resume after
# each kernel crash, so a run records no phases for them; these are its two shards' seconds from start to end in the
# log of the run behind tests/data/costs/cold-run-timing.json (eager 141 s, compiled 196 s) less a start-up, split
# between the dtypes as the corpus is.
COLD_SECONDS = {("eager", "float32"): 56, ("eager", "float64"): 56, ("eager", "float16"): 11, ("eager", "bfloat16"): 11,
                ("compiled", "float32"): 82, ("compiled", "float64"): 82, ("compiled", "float16"): 13, ("compiled", "bfloat16"): 13}
QUICK_SECONDS = {"eager": 0, "compiled": 1}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
START_SECONDS = 4.6  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 3.2  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 0, "compiled": 0}, "START_SECONDS": 1.8, "IMPORT_SECONDS": 1.1}}
DEVICE_ASSERTS = ("gpu",)  # an out-of-range label on CUDA is a device-side assert, as in torch
# In a pytest process that had already run torch, TensorFlow and JAX, Paddle's first softmax segfaulted: it runs in
# processes of its own (every `conformance run` gives it its own workers anyway).
OWN_PROCESS = True
paddle: Any = None
F: Any = None
_compiled: dict = {}


def load(compile_cache: Path | None = None) -> None:
    """paddle.jit.to_static keeps its programs in the process only: `compile_cache` is unused."""
    global paddle, F
    import warnings

    with warnings.catch_warnings():  # its C++ extension helper warns about ccache at import, which says nothing of numerics
        warnings.simplefilter("ignore")
        import paddle as _paddle
        import paddle.nn.functional as _F

    paddle, F = _paddle, _F
    paddle.disable_static()
    # Paddle's own handler of SIGSEGV/SIGABRT prints a C++ trace and then waits (the worker hung 600 s after a
    # segfault in nll_loss): without it, a crashing kernel ends the worker with its signal, which the run records
    # as that call's error and goes on.
    paddle.disable_signal_handler()


def version() -> str:
    return paddle.__version__


def devices() -> list[str]:
    return ["cpu"] + ([] if "gpu" in device_problems() else ["gpu"])


def device_problems() -> dict[str, str]:
    if not paddle.device.is_compiled_with_cuda():
        return {"gpu": "this paddlepaddle is the CPU build (paddlepaddle-gpu is the CUDA one)"}
    return {} if paddle.device.cuda.device_count() else {"gpu": "paddle.device.cuda.device_count() is 0"}


def set_threads(n: int) -> None:
    """Paddle's CPU kernels size their pools from OMP_NUM_THREADS at start-up; the benchmarks pin the process instead."""


def flags() -> dict:
    return {name: os.environ[name] for name in NUMERIC_ENV if name in os.environ}


def softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return F.softmax(x, axis=inputs.axis)


def log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return F.log_softmax(x, axis=inputs.axis)


def logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return paddle.logsumexp(x, axis=inputs.axis)


def _soft(labels: Array) -> bool:
    return labels.dtype not in (paddle.int64, paddle.int32)


def _weight(x: Array, inputs: Inputs) -> Array | None:
    w = inputs.options.weight
    return None if w is None else paddle.to_tensor(np.asarray(w), dtype=x.dtype)


def _ignore(inputs: Inputs) -> dict:
    """ignore_index only where the case sets it (Paddle's default of -100 otherwise, like torch)."""
    return {} if inputs.options.ignore_index is None else {"ignore_index": inputs.options.ignore_index}


def _per_example(out: Array, x: Array, inputs: Inputs) -> Array:
    """With soft labels, or hard ones smoothed (which Paddle turns into soft ones), its per-example losses keep the
    class axis with size 1 (its documented output shape): squeezed to the op's shape."""
    return out.squeeze(inputs.axis) if inputs.options.reduction == "none" and out.ndim == x.ndim else out


def cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """F.cross_entropy: `soft_label` set from the labels (dense probabilities or class indices)."""
    opts = inputs.options
    out = F.cross_entropy(x, labels, weight=_weight(x, inputs), reduction=opts.reduction, soft_label=_soft(labels), axis=inputs.axis,
                          label_smoothing=opts.label_smoothing, **_ignore(inputs))
    return _per_example(out, x, inputs)


def softmax_with_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The fused op of Paddle 1.x, kept in 2.x and 3.x (deprecated): its loss keeps the class axis with size 1, and
    hard labels must have it too; both are squeezed/unsqueezed here so that it answers in the op's shape."""
    label = labels if _soft(labels) else labels.unsqueeze(inputs.axis)
    return F.softmax_with_cross_entropy(x, label, soft_label=_soft(labels), axis=inputs.axis, **_ignore(inputs)).squeeze(inputs.axis)


def _class_second(x: Array, axis: int) -> Array:
    """nll_loss wants the classes at axis 1 ([N, C, d1, ...]): moved there from `axis` (a 1-D input is one row)."""
    if x.ndim == 1:
        return x
    return paddle.moveaxis(x, axis, 1) if axis != 1 else x


def nll_of_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The two-step form: F.nll_loss(F.log_softmax(x)), classes at axis 1."""
    if labels.dtype != paddle.int64:
        raise Unsupported("F.nll_loss takes int64 labels (its documentation), not int32")
    logp = F.log_softmax(_class_second(x, inputs.axis), axis=0 if x.ndim == 1 else 1)
    return F.nll_loss(logp, labels, weight=_weight(x, inputs), reduction=inputs.options.reduction, **_ignore(inputs))


def label_smooth_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """Label smoothing as Paddle's docs show it: F.label_smooth on the dense labels (uniform prior), then a soft-label
    cross-entropy. Only the smoothing comes from label_smooth; the case's other options go to cross_entropy."""
    opts = inputs.options
    smoothed = F.label_smooth(labels, epsilon=opts.label_smoothing) if opts.label_smoothing else labels
    out = F.cross_entropy(x, smoothed, weight=_weight(x, inputs), reduction=opts.reduction, soft_label=True, axis=inputs.axis)
    return _per_example(out, x, inputs)


def where_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked softmax as Paddle code writes it (no mask argument): paddle.where(mask, x, -inf), then softmax."""
    return F.softmax(paddle.where(mask, x, paddle.full_like(x, float("-inf"))), axis=inputs.axis)


def where_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    return F.log_softmax(paddle.where(mask, x, paddle.full_like(x, float("-inf"))), axis=inputs.axis)


def linear_then_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """The composed LLM head: F.linear (whose weight is [in, out], so W.T), then F.cross_entropy as the cross_entropy
    door calls it (the logits' classes are their last axis, the case's)."""
    return cross_entropy(F.linear(hidden, weight.T, bias), targets, inputs)

NAIVE = naive.Namespace(
    exp=lambda x: paddle.exp(x), log=lambda x: paddle.log(x), sum=lambda x, axis, keep: paddle.sum(x, axis=axis, keepdim=keep),
    softmax=lambda x, axis: F.softmax(x, axis=axis),
    pick=lambda v, t, axis: paddle.take_along_axis(v, t.unsqueeze(axis), axis=axis).squeeze(axis),
    spelling="paddle.exp paddle.sum paddle.log F.softmax")


def implementations() -> list[Impl]:
    losses = frozenset({"reduction", "label_smoothing", "weight", "ignore_index"})
    return [
        Impl(NAME, "paddle.nn.functional.softmax", "softmax", softmax, key="softmax"),
        Impl(NAME, "paddle.nn.functional.log_softmax", "log_softmax", log_softmax, key="log_softmax"),
        Impl(NAME, "paddle.logsumexp", "logsumexp", logsumexp, key="logsumexp"),
        Impl(NAME, "F.cross_entropy(soft_label=True)", "softmax_cross_entropy", cross_entropy, options=losses - {"ignore_index"},
             key="cross_entropy/soft_label"),
        Impl(NAME, "F.cross_entropy(F.label_smooth(y), soft_label=True)", "softmax_cross_entropy", label_smooth_cross_entropy,
             options=frozenset({"reduction", "label_smoothing", "weight"}), key="label_smooth/cross_entropy"),
        Impl(NAME, "F.softmax_with_cross_entropy(soft_label=True)", "softmax_cross_entropy", softmax_with_cross_entropy,
             key="softmax_with_cross_entropy/soft_label"),
        Impl(NAME, "paddle.nn.functional.cross_entropy", "sparse_softmax_cross_entropy", cross_entropy, options=losses,
             key="cross_entropy"),
        Impl(NAME, "F.softmax_with_cross_entropy", "sparse_softmax_cross_entropy", softmax_with_cross_entropy,
             options=frozenset({"ignore_index"}), key="softmax_with_cross_entropy"),
        Impl(NAME, "F.nll_loss(F.log_softmax(x), t)", "sparse_softmax_cross_entropy", nll_of_log_softmax,
             options=frozenset({"reduction", "weight", "ignore_index"}), key="nll_loss/log_softmax"),
        Impl(NAME, "F.softmax(paddle.where(mask, x, -inf))", "masked_softmax", where_softmax, key="where/softmax"),
        Impl(NAME, "F.log_softmax(paddle.where(mask, x, -inf))", "masked_log_softmax", where_log_softmax, key="where/log_softmax"),
        Impl(NAME, "F.cross_entropy(F.linear(h, W.T, b), t)", "linear_cross_entropy", linear_then_cross_entropy, options=losses,
             key="linear/cross_entropy"),
        *naive.implementations(NAME, NAIVE),
    ]


def _tensor(array: np.ndarray | None, requires_grad: bool = False) -> Array:
    if array is None:
        return None
    if array.dtype.name == "bfloat16":  # float32 holds every bfloat16 exactly
        t = paddle.to_tensor(array.astype(np.float32)).astype("bfloat16")
    else:
        t = paddle.to_tensor(np.array(array, copy=True))
    t.stop_gradient = not requires_grad
    return t


def _numpy(t: Array) -> np.ndarray:
    """The tensor as NumPy in its own dtype (bfloat16 through float32)."""
    if t.dtype == paddle.bfloat16:
        return t.astype("float32").numpy().astype(bfloat16())
    return t.numpy()


def _positional(f: Callable, inputs: Inputs) -> Callable:
    """f(*primals, labels) with its parameters spelt out, as a def: paddle.jit.to_static reads the signature (it refuses
    *args) and converts the function's source (it cannot convert a lambda)."""
    if len(inputs.primals) == 1:
        def one_primal(x, labels):
            return f(x, labels)
        return one_primal

    def three_primals(hidden, weight, bias, labels):
        return f(hidden, weight, bias, labels)
    return three_primals


def _forward(impl: Impl, inputs: Inputs, mode: str) -> Callable:
    composed = impl.reduction_composed(inputs)

    def f(*args):
        out = impl.forward(*args, inputs)
        return reduce_with(out, inputs.options.reduction, paddle.sum, paddle.mean) if composed else out

    f = _positional(f, inputs)
    if mode == "eager":
        return f
    key = (impl.forward, impl.op, inputs.options, inputs.axis, inputs.dtype, tuple(a is None or a.ndim for a in inputs.primals.values()))
    if key not in _compiled:
        _compiled[key] = paddle.jit.to_static(f, full_graph=True)
    return _compiled[key]


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    quantities = tuple(quantities)
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    grad = needs_grad(quantities)
    primals = {n: _tensor(a, requires_grad=grad) for n, a in inputs.primals.items()}
    labels = _tensor(inputs.given_labels, requires_grad="grad_labels" in quantities)
    f = _forward(impl, inputs, mode)
    try:
        out = f(*primals.values(), labels)
        results = {"value": _numpy(out)} if "value" in quantities else {}
    except Exception as exc:
        return {q: _unregistered(exc) or exc for q in quantities}
    written = written_into(inputs, primals, labels, _numpy, "forward")
    if grad:
        results.update(_gradients(f, inputs, quantities, primals, labels, out, mode))
        written = written or written_into(inputs, primals, labels, _numpy, "backward")
    return mark_overwritten(results, written)


def _unregistered(exc: BaseException) -> Unsupported | None:
    """Paddle's own word that it has no kernel for this dtype on this device ("(NotFound) The kernel with key (CPU,
    ..., float16) of kernel `softmax` is not registered", or in compiled mode "(InvalidType) Check data type error for
    op: softmax ... expected_dtype: ..." and "The data type of 'label' in softmax_cross_entropy must be [...], but
    received uint16"): the framework does not offer it, which is no wrong answer."""
    text = str(exc)
    for words in (("(NotFound) The kernel with key", "is not registered"), ("(InvalidType) Check data type error for op",),
                  ("The data type of", "must be [", "but received")):
        if all(w in text for w in words):  # eager's missing kernel; the converted program's dtype check
            line = next(line for line in text.splitlines() if words[0] in line)
            return Unsupported(line[line.index(words[0]):].strip()[:200])
    return None


def _gradients(f: Callable, inputs: Inputs, quantities: tuple[str, ...], primals: dict, labels: Array, out: Array,
               mode: str) -> dict:
    g = _tensor(inputs.cotangent)
    wanted = [n for n, t in primals.items() if t is not None and f"grad_{n}" in quantities]
    wrt = [primals[n] for n in wanted] + ([labels] if "grad_labels" in quantities else [])
    names = [*wanted, *(["labels"] if "grad_labels" in quantities else [])]
    try:
        first = paddle.grad(out, wrt, grad_outputs=g.astype(out.dtype), retain_graph=True, allow_unused=True) if wrt else []
    except Exception as exc:
        return {q: _unregistered(exc) or exc for q in quantities if q != "value"}
    given = {**inputs.given_primals, "labels": inputs.labels}
    results = {f"grad_{n}": _numpy(got) if got is not None else np.zeros(given[n].shape, np.float64) for n, got in zip(names, first)}
    if "hvp" in quantities:
        results["hvp"] = _hvp(f, list(primals.values()), labels, g, _tensor(inputs.direction), mode)
    return results


def _hvp(f: Callable, primals: list, labels: Array, g: Array, direction: Array, mode: str) -> Any:
    """H·d w.r.t. the first primal: the gradient of <grad_x, d>, by a double paddle.grad through a fresh forward."""
    x = primals[0]
    try:
        out = f(*primals, labels)
        (grad_x,) = paddle.grad(out, [x], grad_outputs=g.astype(out.dtype), create_graph=True)
        if grad_x.stop_gradient:  # a first derivative outside the graph: no second one is offered
            return Unsupported("create_graph=True gave a first derivative with no graph: this function offers no double backward")
        (hv,) = paddle.grad(grad_x, [x], grad_outputs=direction, allow_unused=True)
    except Exception as exc:
        text = str(exc)
        if "doesn't have any grad op" in text:  # a kernel whose backward has no derivative of its own (Paddle says so)
            return Unsupported(next(line for line in text.strip().splitlines() if "grad op" in line)[:200])
        return exc
    if hv is None and mode == "compiled":
        # the converted program's first derivative has no path back to x: Paddle differentiates it no further
        return Unsupported("paddle.grad through paddle.jit.to_static's program gave no second derivative (None)")
    return _numpy(hv) if hv is not None else np.zeros(tuple(x.shape), np.float64)


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The very forward `evaluate` runs (and paddle.grad w.r.t. every primal for the backward pass)."""
    check_supported(impl, inputs)
    return _timed(_forward(impl, inputs, mode), inputs, device, backward)


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call as a user writes it: the function (its mean where it has no reduction), paddle.jit.to_static for
    compiled mode, paddle.grad for the backward pass."""
    check_supported(impl, inputs)
    composed = impl.reduction_composed(inputs)

    def f(*args):
        out = impl.forward(*args, inputs)
        return paddle.mean(out) if composed else out

    f = _positional(f, inputs)
    return _timed(paddle.jit.to_static(f, full_graph=True) if mode == "compiled" else f, inputs, device, backward)


def _timed(f: Callable, inputs: Inputs, device: str, backward: bool) -> Callable[[], Any]:
    """f on tensors already made (and the gradient w.r.t. every primal), returning once the result exists."""
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    primals = [_tensor(a, requires_grad=backward) for a in inputs.primals.values()]
    args = [*primals, _tensor(inputs.given_labels)]
    sync = paddle.device.synchronize if device == "gpu" else no_sync
    if not backward:
        return synced_forward(f, args, sync)
    g, wrt = _tensor(inputs.cotangent), [p for p in primals if p is not None]

    def forward_backward():
        grads = paddle.grad(f(*args), wrt, grad_outputs=g)
        sync()
        return tuple(grads) if len(grads) > 1 else grads[0]
    return forward_backward


def forget_compiled() -> None:
    """Drop every compiled callable (a function under check replaced by another keeps its implementation's name)."""
    _compiled.clear()
