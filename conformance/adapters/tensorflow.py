"""TensorFlow: tf.nn softmax, log_softmax and the two fused cross-entropies, and Keras 3's
CategoricalCrossentropy / SparseCategoricalCrossentropy with from_logits=True (on the TensorFlow backend; Keras 2's,
tf.keras, under TensorFlow 2.15 and before).

Gradients come from tf.GradientTape (nested tapes for hvp). Compiled mode is tf.function(jit_compile=True),
i.e. XLA. Keras losses are called as users call them, with their default dtype, which is floatx
(float32): that is a documented Keras design and shows up as a finding for float16/float64 inputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.inputs import Inputs
from ..model.dtypes import bfloat16
from . import keras_api, naive
from .base import Array, Impl, Unsupported, check_supported, exact_signature, needs_grad, no_sync, quantity_arguments, reduce_with

NAME = "tensorflow"
SHARED_DOORS = keras_api.SHARED_DOORS
REQUIRES = ("tensorflow", "keras")  # importable packages; checked before any worker starts
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "ml_dtypes")  # versions that change the numbers (the gate attributes moves to them)
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")  # benchmarks size TensorFlow's pools with these
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
NUMERIC_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS", "XLA_FLAGS", "NVIDIA_TF32_OVERRIDE")  # recorded with the results
GPU_ENV = {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}  # TensorFlow maps all GPU memory per process by default
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 83, ("compiled", "float16"): 84, ("compiled", "float32"): 152,
                ("compiled", "float64"): 118, ("eager", "bfloat16"): 11, ("eager", "float16"): 9,
                ("eager", "float32"): 17, ("eager", "float64"): 13}
QUICK_SECONDS = {"eager": 1, "compiled": 7}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"compiled": 0.38}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
OWN_FRACTION = {"compiled": 0.93}  # a cold full run without the naive formulas over one with them (tests/data/costs/full-run-naive-pair.json)
START_SECONDS = 10.7  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 9.7  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 1, "compiled": 5}, "START_SECONDS": 4.8, "IMPORT_SECONDS": 4.0}}
tf: Any = None
keras: Any = None
_compiled: dict = {}


def load(compile_cache: Path | None = None) -> None:
    global tf, keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if compile_cache is not None and "tf_xla_persistent_cache_directory" not in flags:
        # XLA's persistent cache for jit_compile=True programs, keyed by the program's fingerprint; read once,
        # when XLA first parses its flags. The fingerprint holds the names tf.function gives its traces, which follow
        # the order this process traces them in: a new corpus or worker plan misses once, for every program.
        os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={compile_cache / 'tensorflow'}".strip()
    import tensorflow as _tf

    tf = _tf
    tf.get_logger().addFilter(_drop_expected_retracing_warning)
    keras_api.load("tensorflow")
    keras = keras_api.keras


def _drop_expected_retracing_warning(record: logging.LogRecord) -> bool:
    """Compiled mode keeps one tf.function per (implementation, options, dtype, rank) and calls it with every
    shape of the corpus: each new shape is a new XLA program by design, so TF's "triggered tf.function
    retracing" advice would only clutter the progress display. Every other TF warning passes."""
    return "triggered tf.function retracing" not in record.getMessage()


def version() -> str:
    return f"{tf.__version__} (keras {keras.__version__}, backend {keras.backend.backend()})"


def devices() -> list[str]:
    return ["cpu"] + (["gpu"] if tf.config.list_physical_devices("GPU") else [])


def error_message(error: BaseException) -> str:
    """The line that says what went wrong: under tf.function TensorFlow puts a traceback of user code before it."""
    lines = [line.strip() for line in (str(error).strip() or type(error).__name__).splitlines() if line.strip()]
    return lines[-1] if lines[0].startswith(("in user code", "Traceback")) else lines[0]


def device_problems() -> dict[str, str]:
    if tf.config.list_physical_devices("GPU"):
        return {}
    return {"gpu": f"tf.config.list_physical_devices('GPU') is empty (tensorflow {tf.__version__}; tensorflow-cpu has no GPU support)"}


def set_threads(n: int) -> None:
    """Must run before TensorFlow executes its first op."""
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def flags() -> dict:
    return {"tf.config.threading.intra_op_parallelism_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf.config.threading.inter_op_parallelism_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "TF_DETERMINISTIC_OPS": os.environ.get("TF_DETERMINISTIC_OPS"),
            "tf.config.experimental.tensor_float_32_execution": tf.config.experimental.tensor_float_32_execution_enabled(),
            "keras.config.floatx": keras_api.floatx()}


def _classes_last(x, axis: int):
    """sparse_softmax_cross_entropy_with_logits only takes the last axis: a layout move, not an emulation."""
    if axis == x.shape.rank - 1:
        return x
    perm = [d for d in range(x.shape.rank) if d != axis] + [axis]
    return tf.transpose(x, perm)


def softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.nn.softmax(x, axis=inputs.axis)


def log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.nn.log_softmax(x, axis=inputs.axis)


def reduce_logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.math.reduce_logsumexp(x, axis=inputs.axis)


def cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=x, axis=inputs.axis)


def sparse_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=_classes_last(x, inputs.axis))


def compat_v1_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """The seed's own API: tf.compat.v1.nn.softmax_cross_entropy_with_logits (deprecated since TF 1.5). Its
    documentation: backpropagation happens only into the logits (the labels are wrapped in stop_gradient)."""
    return tf.compat.v1.nn.softmax_cross_entropy_with_logits(labels=labels, logits=x, dim=inputs.axis)


def compat_v1_cross_entropy_v2(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.compat.v1.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=x, axis=inputs.axis)


def _v1_reduction(inputs: Inputs):
    """The SPEC's reduction as tf.compat.v1.losses names it; 'mean' is its default SUM_BY_NONZERO_WEIGHTS (the sum over
    the count of nonzero weights: with the default weights of 1, every example), what TF1 code ran."""
    reduction = tf.compat.v1.losses.Reduction
    return {"none": reduction.NONE, "sum": reduction.SUM, "mean": reduction.SUM_BY_NONZERO_WEIGHTS}[inputs.options.reduction]


def compat_v1_losses_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    """tf.compat.v1.losses.softmax_cross_entropy(onehot_labels, logits): its own reductions and label smoothing
    (labels * (1 - s) + s / C); classes on the last axis."""
    return tf.compat.v1.losses.softmax_cross_entropy(labels, x, label_smoothing=inputs.options.label_smoothing,
                                                     reduction=_v1_reduction(inputs))


def compat_v1_losses_sparse_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, x, reduction=_v1_reduction(inputs))


# The seed's code ran these calls in a tf.compat.v1 graph and Session, its gradients from tf.compat.v1.gradients:
# the same calls, run that way (eager mode only: a Session is its own way of running; see _session_quantities).
SESSION_KEYS = {"compat.v1/nn/softmax_cross_entropy_with_logits": "compat.v1/session/nn/softmax_cross_entropy_with_logits",
                "compat.v1/nn/softmax_cross_entropy_with_logits_v2": "compat.v1/session/nn/softmax_cross_entropy_with_logits_v2",
                "compat.v1/losses/softmax_cross_entropy": "compat.v1/session/losses/softmax_cross_entropy",
                "compat.v1/losses/sparse_softmax_cross_entropy": "compat.v1/session/losses/sparse_softmax_cross_entropy"}


def _in_session(impl: Impl) -> bool:
    return impl.key in SESSION_KEYS.values()


def session_doors(doors: list[Impl]) -> list[Impl]:
    return [dataclasses.replace(i, name=f"{i.name} [tf.compat.v1 graph and Session]", key=SESSION_KEYS[i.key], modes=("eager",))
            for i in doors if i.key in SESSION_KEYS]


def _session_quantities(impl: Impl, inputs, quantities: tuple[str, ...]):
    """The quantities as TF1 code computed them: the call builds ops in a tf.compat.v1 Graph of placeholders, its
    gradients come from tf.compat.v1.gradients (grad_ys: the cotangent; the HVP, the gradient of that gradient along
    the direction), and one Session.run answers every quantity. A label the graph gives no gradient gets zeros, as
    the eager tape's unconnected gradients do."""
    def compute(x, labels, g, d):
        graph = tf.Graph()
        with graph.as_default():
            xp = tf.compat.v1.placeholder(x[0].dtype, x[0].shape)
            lp = tf.compat.v1.placeholder(labels.dtype, labels.shape)
            out = impl.forward(xp, lp, inputs)
            if impl.reduction_composed(inputs):
                out = reduce_with(out, inputs.options.reduction, tf.reduce_sum, tf.reduce_mean)
            fetch = {"value": out}
            if needs_grad(quantities):
                gp = tf.compat.v1.placeholder(out.dtype, out.shape)
                (grad,) = tf.compat.v1.gradients(out, [xp], grad_ys=gp)
                fetch["grad_logits"] = grad if grad is not None else tf.zeros_like(xp)
                if "grad_labels" in quantities:
                    (grad_labels,) = tf.compat.v1.gradients(out, [lp], grad_ys=gp)
                    fetch["grad_labels"] = grad_labels if grad_labels is not None else tf.zeros_like(lp)
                if "hvp" in quantities:
                    dp = tf.compat.v1.placeholder(xp.dtype, xp.shape)
                    (hvp,) = tf.compat.v1.gradients(fetch["grad_logits"], [xp], grad_ys=dp)
                    fetch["hvp"] = hvp if hvp is not None else tf.zeros_like(xp)
            feed = {xp: x[0].numpy(), lp: labels.numpy()}
            if needs_grad(quantities):
                feed[gp] = tf.cast(g, out.dtype).numpy()
            if "hvp" in quantities:
                feed[dp] = d.numpy()
            with tf.compat.v1.Session(graph=graph) as session:
                answers = session.run({q: fetch[q] for q in quantities}, feed_dict=feed)
        return {q: tf.constant(v) for q, v in answers.items()}

    return exact_signature(compute, quantities)


def where_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    """Masked softmax as people write it in TensorFlow: tf.where(mask, x, -inf), then softmax."""
    return tf.nn.softmax(tf.where(mask, x, tf.constant(-np.inf, x.dtype)), axis=inputs.axis)


def where_log_softmax(x: Array, mask: Array, inputs: Inputs) -> Array:
    return tf.nn.log_softmax(tf.where(mask, x, tf.constant(-np.inf, x.dtype)), axis=inputs.axis)






NAIVE = naive.Namespace(
    exp=lambda x: tf.exp(x), log=lambda x: tf.math.log(x), sum=lambda x, axis, keep: tf.reduce_sum(x, axis=axis, keepdims=keep),
    softmax=lambda x, axis: tf.nn.softmax(x, axis=axis),
    pick=lambda v, t, axis: tf.gather(_classes_last(v, axis), t, axis=-1, batch_dims=t.shape.rank),
    spelling="tf.exp tf.reduce_sum tf.math.log tf.nn.softmax")


def implementations() -> list[Impl]:
    doors = [
        # tf.math.softmax and tf.math.log_softmax are the same function objects (tests/test_entry_points.py checks)
        Impl(NAME, "tf.nn.softmax (= tf.math.softmax)", "softmax", softmax, key="softmax"),
        Impl(NAME, "tf.nn.log_softmax (= tf.math.log_softmax)", "log_softmax", log_softmax, key="log_softmax"),
        Impl(NAME, "tf.math.reduce_logsumexp", "logsumexp", reduce_logsumexp, key="reduce_logsumexp"),
        Impl(NAME, "tf.nn.softmax_cross_entropy_with_logits", "softmax_cross_entropy", cross_entropy, key="softmax_cross_entropy_with_logits"),
        Impl(NAME, "tf.nn.sparse_softmax_cross_entropy_with_logits", "sparse_softmax_cross_entropy", sparse_cross_entropy,
             key="sparse_softmax_cross_entropy_with_logits"),
        Impl(NAME, "tf.compat.v1.nn.softmax_cross_entropy_with_logits", "softmax_cross_entropy", compat_v1_cross_entropy,
             key="compat.v1/nn/softmax_cross_entropy_with_logits"),
        Impl(NAME, "tf.compat.v1.nn.softmax_cross_entropy_with_logits_v2", "softmax_cross_entropy", compat_v1_cross_entropy_v2,
             key="compat.v1/nn/softmax_cross_entropy_with_logits_v2"),
        Impl(NAME, "tf.compat.v1.losses.softmax_cross_entropy", "softmax_cross_entropy", compat_v1_losses_cross_entropy,
             options=frozenset({"reduction", "label_smoothing"}), key="compat.v1/losses/softmax_cross_entropy", last_axis_only=True),
        Impl(NAME, "tf.compat.v1.losses.sparse_softmax_cross_entropy", "sparse_softmax_cross_entropy",
             compat_v1_losses_sparse_cross_entropy, options=frozenset({"reduction"}), key="compat.v1/losses/sparse_softmax_cross_entropy",
             last_axis_only=True),
        Impl(NAME, "tf.nn.softmax(tf.where(mask, x, -inf))", "masked_softmax", where_softmax, key="where/softmax"),
        Impl(NAME, "tf.nn.sparse_softmax_cross_entropy_with_logits(t, tf.matmul(h, W, transpose_b=True) + b)", "linear_cross_entropy",
             linear_then_sparse_cross_entropy, key="linear/sparse_softmax_cross_entropy_with_logits"),
        Impl(NAME, "tf.nn.log_softmax(tf.where(mask, x, -inf))", "masked_log_softmax", where_log_softmax, key="where/log_softmax"),
        *keras_api.implementations(NAME),
        *naive.implementations(NAME, NAIVE),
    ]
    return [*doors, *session_doors(doors)]


def linear_then_sparse_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """The composed form in TensorFlow: the logits tf.matmul(h, W, transpose_b=True) (+ b), then the fused sparse
    kernel (integer targets), or softmax_cross_entropy_with_logits (dense)."""
    logits = tf.matmul(hidden, weight, transpose_b=True) + (0 if bias is None else bias)
    if targets.dtype.is_integer:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def _quantities_fn(impl: Impl, inputs, quantities: tuple[str, ...]):
    """One function computing exactly the requested quantities, so eager and XLA, evaluate and the benchmarks run the
    very same code. The gradient is the vector-Jacobian product itself (output_gradients), not the gradient of an
    extra sum(cotangent * output) the user's own call would not have."""
    if _in_session(impl):
        return _session_quantities(impl, inputs, quantities)
    composed = impl.reduction_composed(inputs)
    names = tuple(inputs.primals)  # x is the tuple of the op's primals (None for an absent bias)

    def forward(x, labels):
        out = impl.forward(*x, labels, inputs)
        return reduce_with(out, inputs.options.reduction, tf.reduce_sum, tf.reduce_mean) if composed else out

    def compute(x, labels, g, d):
        if not needs_grad(quantities):
            return {"value": forward(x, labels)}  # no tape: a forward pass records nothing
        results = {}
        # The outer tape (for the HVP) and a persistent inner tape (for a second gradient) only when asked:
        # both cost time in eager mode, and the benchmarks time this very function.
        with tf.GradientTape() if "hvp" in quantities else contextlib.nullcontext() as outer:
            present = [(n, a) for n, a in zip(names, x) if a is not None]
            if outer is not None:
                outer.watch(x[0])  # the HVP is w.r.t. the first primal (the logits, the hidden states)
            with tf.GradientTape(persistent="grad_labels" in quantities) as tape:
                tape.watch([a for _, a in present])
                if "grad_labels" in quantities:
                    tape.watch(labels)
                out = forward(x, labels)
            results["value"] = out
            cotangent = tf.cast(g, out.dtype)  # the output's dtype (Keras computes in floatx); a no-op otherwise
            grads = tape.gradient(out, [a for _, a in present], output_gradients=cotangent, unconnected_gradients="zero")
            results.update({f"grad_{n}": v for (n, _), v in zip(present, grads)})
            if "grad_labels" in quantities:
                results["grad_labels"] = tape.gradient(out, labels, output_gradients=cotangent, unconnected_gradients="zero")
        if "hvp" in quantities:
            results["hvp"] = outer.gradient(grads[0], x[0], output_gradients=d, unconnected_gradients="zero")
        return {q: v for q, v in results.items() if q in quantities}

    return exact_signature(compute, quantities)


def _callable(impl: Impl, inputs, quantities: tuple[str, ...], mode: str):
    if mode == "eager":
        return _quantities_fn(impl, inputs, quantities)
    if _in_session(impl):  # a Session is its own way of running a graph: no tf.function around it
        raise Unsupported(f"{impl.name} runs in eager mode only: a tf.compat.v1 Session is not traced by tf.function")
    # Rank is part of the key: a trace generalised to unknown rank breaks ops that need it (softmax on axis 0).
    key = (impl.name, impl.op, inputs.options, inputs.axis, inputs.dtype, inputs.logits.ndim, quantities,
           tuple(a is None for a in inputs.primals.values()))
    if key not in _compiled:
        _compiled[key] = tf.function(_quantities_fn(impl, inputs, quantities), jit_compile=True)
    return _compiled[key]


def _numpy(t) -> np.ndarray:
    """The tensor as NumPy in its own dtype (bfloat16 through float32, which holds every bfloat16 exactly)."""
    return tf.cast(t, tf.float32).numpy().astype(bfloat16()) if t.dtype == tf.bfloat16 else t.numpy()


def evaluate(impl: Impl, inputs: Inputs, quantities: Iterable[str], mode: str, device: str) -> dict:
    check_supported(impl, inputs)
    quantities = tuple(quantities)
    with tf.device(_placement(device)):
        x = _primals(inputs)
        labels = inputs.given_labels
        labels = None if labels is None else tf.constant(labels)  # softmax and log_softmax take none
        g, d = tf.constant(inputs.cotangent), tf.constant(inputs.direction)
        try:
            out = _callable(impl, inputs, quantities, mode)(*quantity_arguments(quantities, x, labels, g, d))
            return {q: _numpy(v) for q, v in out.items()}
        except Unsupported:
            raise
        except Exception as exc:
            return {q: exc for q in quantities}


def _sync(device: str):
    # Eager TensorFlow on the CPU is synchronous: an op has run when it returns. On a GPU, wait for its streams
    # (reading the result back with .numpy() would add a device-to-host copy to every figure).
    return tf.test.experimental.sync_devices if device == "gpu" else no_sync


def _placement(device: str) -> str:
    return "/GPU:0" if device == "gpu" else "/CPU:0"


def _primals(inputs: Inputs) -> tuple:
    return tuple(None if a is None else tf.constant(a) for a in inputs.primals.values())


def _device_tensors(inputs, device: str) -> tuple:
    """The primals (a tuple), labels (or mask) and cotangent as tensors placed on the device once: eager ops then run
    where their inputs live, so no call needs a tf.device scope (which costs every call: the overhead table)."""
    with tf.device(_placement(device)):
        labels = inputs.given_labels
        return _primals(inputs), None if labels is None else tf.constant(labels), tf.constant(inputs.cotangent)


def benchmark_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """A zero-argument callable running the very function `evaluate` runs (forward, or forward and the gradient
    w.r.t. the logits) on tensors already on the device, returning once the result exists."""
    check_supported(impl, inputs)
    # a training step's backward returns the gradients alone, of every primal
    quantities = inputs.primal_gradients if backward else ("value",)
    x, labels, g = _device_tensors(inputs, device)
    fn, sync, args = _callable(impl, inputs, quantities, mode), _sync(device), quantity_arguments(quantities, x, labels, g, None)

    def call():
        out = fn(*args)
        sync()
        return out
    return call


def bare_call(impl: Impl, inputs: Inputs, mode: str, device: str, backward: bool) -> Callable[[], Any]:
    """The public call with nothing of the harness around it, written out as a user would (for the overhead table):
    the function, its mean where it has no reduction, tf.function(jit_compile=True) for compiled mode and one
    GradientTape for the backward pass, on tensors already on the device."""
    check_supported(impl, inputs)
    x, t, g = _device_tensors(inputs, device)
    composed, sync = impl.reduction_composed(inputs), _sync(device)

    def f(x, t):
        out = impl.forward(*x, t, inputs)
        return tf.reduce_mean(out) if composed else out

    def f_grad(x, t, g):
        present = [a for a in x if a is not None]
        with tf.GradientTape() as tape:
            tape.watch(present)
            out = f(x, t)
        grads = tape.gradient(out, present, output_gradients=g)
        return grads[0] if len(grads) == 1 else grads

    fn = f_grad if backward else f
    fn = tf.function(fn, jit_compile=True) if mode == "compiled" else fn
    args = (x, t, g) if backward else (x, t)

    def call():
        out = fn(*args)
        sync()
        return out
    return call


def forget_compiled() -> None:
    """Drop every compiled callable, so that the next call compiles afresh: in one process, a function under check
    (adapters/user.py) replaced by another keeps its implementation's name and would otherwise reuse the first one's."""
    _compiled.clear()
