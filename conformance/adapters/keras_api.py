"""The public Keras 3 calls under test, written once for every backend: `keras.ops.*` and `keras.losses.*` take and
return the backend's own tensors, so the TensorFlow, JAX and PyTorch adapters each list these with their own
framework name and run them through their own autodiff and compiler. Which backend a process runs is fixed by
KERAS_BACKEND before the first `import keras`, hence one worker (one framework name) per backend.

Under TensorFlow 2.15 and before, `import keras` is Keras 2 (tf.keras), which runs on TensorFlow alone: its losses and
Softmax layer are the same public calls and run as they are (what TensorFlow's switch to Keras 3 in 2.16 changed for
tf.keras users is then a release pair of `conformance history`); `keras.ops` is Keras 3's and is unsupported there."""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..corpus.generators import MAX_RANK
from ..corpus.inputs import Inputs
from .base import Array, Impl, Unsupported

# Keras calls are one public API run by several frameworks' kernels: the report compares them across backends
# (adapters.shared_doors, report/cross_backend.py). Every adapter with Keras doors declares it.
SHARED_DOORS = ("keras/",)

keras: Any = None
_softmax_layers: dict[int, Any] = {}
_KERAS_REDUCTION = {"none": "none", "sum": "sum", "mean": "sum_over_batch_size"}
# A Keras loss's mean divides by `ops.prod(ops.convert_to_tensor(ops.shape(values)))` (keras/src/losses/loss.py,
# reduce_values): torch.compile makes the per-example sizes numbers there, so each of them gets a graph of its own.
_MEAN = ("mean",)


def load(backend: str) -> None:
    """Import Keras on `backend`; ImportError when Keras is absent or this process already runs another backend."""
    global keras
    # each adapter names its backend: an inherited KERAS_BACKEND (a user's shell, a parent that loaded another
    # adapter) must not run one framework's Keras calls on another's backend under the wrong name
    os.environ["KERAS_BACKEND"] = backend
    import keras as _keras

    if _keras.backend.backend() != backend:  # Keras 2 answers "tensorflow" too
        raise ImportError(f"keras runs on {_keras.backend.backend()} in this process (KERAS_BACKEND), not {backend}")
    keras = _keras
    # Built here, as a model builds its layers before it runs: torch.compile(fullgraph=True) cannot trace a layer's
    # constructor (graph break), though it traces the call. One per class axis (inputs.axis is non-negative).
    _softmax_layers.update({axis: keras.layers.Softmax(axis=axis) for axis in range(MAX_RANK)})
    if backend == "torch":  # only torch.compile guards on Python state; on JAX the eager calls cost 1.9 s a worker
        _as_after_a_first_step()


def _as_after_a_first_step() -> None:
    """What a model's first step leaves behind, done once here: Keras creates its name-scope stack (global state) on
    the first loss call, and a layer records its parent path on its first call. Left to the first compiled call, each
    is a side effect that fails a guard of the graph it was traced in, so torch.compile compiles the same function a
    second time (seconds under Inductor); the answers are the same either way. jax.jit and tf.function key their
    programs by the arguments alone, so only Keras on PyTorch needs it."""
    with keras.name_scope("conformance"):  # Keras 3: Keras 2 runs on TensorFlow alone
        pass
    for axis, layer in _softmax_layers.items():
        layer(np.zeros((2,) * (axis + 1), np.float32))


def on_backend(name: str, backend: str, runner: ModuleType) -> tuple[Callable, Callable, Callable, Callable]:
    """load, version, flags and implementations of an adapter that runs Keras's calls on `backend`, where the
    backend framework's own adapter module (`runner`) evaluates, compiles and benchmarks them."""

    def load_both(compile_cache=None) -> None:
        runner.load(compile_cache)  # the backend's settings (x64, caches) before Keras makes any array
        load(backend)

    def version() -> str:
        return f"keras {keras.__version__} on {backend} {getattr(runner, backend).__version__}"  # the runner's module global

    def flags() -> dict:
        return {**runner.flags(), "keras.config.floatx": floatx()}

    return load_both, version, flags, lambda: implementations(name)


def is_keras_2() -> bool:
    return int(keras.__version__.split(".")[0]) < 3


def floatx() -> str:
    """The default float type Keras makes its losses in (keras.config in Keras 3, keras.backend in Keras 2)."""
    return keras.backend.floatx() if is_keras_2() else keras.config.floatx()


def _ops() -> Any:
    if is_keras_2():
        raise Unsupported(f"keras.ops is Keras 3's; keras {keras.__version__} (TensorFlow 2.15 and before) has none")
    return keras.ops


def _classes_last(x, axis: int):
    """The sparse losses only take the last axis: a layout move, not an emulation."""
    if axis == len(x.shape) - 1:
        return x
    if is_keras_2():  # Keras 2 runs on TensorFlow alone, and has no moveaxis of its own
        import tensorflow as tf

        return tf.experimental.numpy.moveaxis(x, axis, -1)
    return keras.ops.moveaxis(x, axis, -1)


def ops_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return _ops().softmax(x, axis=inputs.axis)


def ops_log_softmax(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return _ops().log_softmax(x, axis=inputs.axis)


def ops_logsumexp(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return _ops().logsumexp(x, axis=inputs.axis)


def ops_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return _ops().categorical_crossentropy(labels, x, from_logits=True, axis=inputs.axis)


def ops_sparse_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    return _ops().sparse_categorical_crossentropy(labels, _classes_last(x, inputs.axis), from_logits=True)


def loss_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    opts = inputs.options
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=opts.label_smoothing,
                                                axis=inputs.axis, reduction=_KERAS_REDUCTION[opts.reduction])
    return loss(labels, x)


def loss_sparse_cross_entropy(x: Array, labels: Array | None, inputs: Inputs) -> Array:
    opts = inputs.options
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=opts.ignore_index,
                                                      reduction=_KERAS_REDUCTION[opts.reduction])
    return loss(labels, _classes_last(x, inputs.axis))


def layer_softmax_mask(x: Array, mask: Array, inputs: Inputs) -> Array:
    """The Softmax layer with a mask, as attention layers call it: masked entries replaced by a large negative number
    (-1e9, not -inf), then softmax, then the masked outputs set to 0."""
    return _softmax_layers[inputs.axis](x, mask=mask)


def ops_linear_cross_entropy(hidden: Array, weight: Array, bias: Array | None, targets: Array, inputs: Inputs) -> Array:
    """An LLM head in Keras: keras.ops.matmul(h, W.T) (+ b), then the integer-label or dense cross-entropy from logits."""
    ops = _ops()
    logits = ops.matmul(hidden, ops.transpose(weight))
    logits = logits if bias is None else logits + bias
    if "int" in str(keras.backend.standardize_dtype(targets.dtype)):
        return ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return ops.categorical_crossentropy(targets, logits, from_logits=True)


def implementations(framework: str) -> list[Impl]:
    """The Keras doors, with stable ids under `<framework>/keras/...`."""
    return [
        Impl(framework, "keras.losses.CategoricalCrossentropy(from_logits=True)", "softmax_cross_entropy", loss_cross_entropy,
             options=frozenset({"reduction", "label_smoothing"}), key="keras/CategoricalCrossentropy", fixes_example_sizes=_MEAN),
        Impl(framework, "keras.losses.SparseCategoricalCrossentropy(from_logits=True)", "sparse_softmax_cross_entropy",
             loss_sparse_cross_entropy, options=frozenset({"reduction", "ignore_index"}), key="keras/SparseCategoricalCrossentropy",
             fixes_example_sizes=_MEAN),
        Impl(framework, "keras.ops.softmax", "softmax", ops_softmax, key="keras/ops/softmax"),
        Impl(framework, "keras.layers.Softmax()(x, mask=mask)", "masked_softmax", layer_softmax_mask, key="keras/layers/Softmax/mask"),
        Impl(framework, "keras.ops.log_softmax", "log_softmax", ops_log_softmax, key="keras/ops/log_softmax"),
        Impl(framework, "keras.ops.logsumexp", "logsumexp", ops_logsumexp, key="keras/ops/logsumexp"),
        Impl(framework, "keras.ops.categorical_crossentropy(from_logits=True)", "softmax_cross_entropy", ops_cross_entropy,
             key="keras/ops/categorical_crossentropy"),
        Impl(framework, "keras.ops.sparse_categorical_crossentropy(from_logits=True)", "sparse_softmax_cross_entropy",
             ops_sparse_cross_entropy, key="keras/ops/sparse_categorical_crossentropy"),
        Impl(framework, "keras.ops.sparse_categorical_crossentropy(t, keras.ops.matmul(h, W.T) + b, from_logits=True)",
             "linear_cross_entropy", ops_linear_cross_entropy, key="keras/ops/linear/sparse_categorical_crossentropy"),
    ]
