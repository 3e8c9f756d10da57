"""Inputs of fixed sizes in a case's shape pattern: what a dynamic-shape compile is first called on.

A compiler that traces with symbolic sizes (torch.compile(dynamic=True)) still reads the sizes of the call that
compiles a graph as hints, and picks its kernels from them: a reduction kept in registers or looped, a softmax
materialised in the input's dtype or fused into its log. The graph then serves every later shape of its pattern, so a
case's answer would depend on which case of its worker compiled the graph first, and on which run filled the
compile cache: a float16 log(softmax(x)) of [[12, 0, -12]] answers NaN after a [1, 256] case compiled it, and
exactly alone. Compiling each pattern's graph on `canonical(inputs)` first makes the hints the pattern's own, so a
record is the same in a full run, a shard, and its own re-run command.

The pattern is what the compiler guards on: which sizes are 0 or 1 (specialised), and which dimensions share a size
(one symbol). Every other size becomes the next of CANONICAL_SIZES in the order the dimensions are met (primals,
then labels, mask, cotangent, direction), so two cases of one pattern get the same inputs' shapes whatever their sizes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..corpus.inputs import Inputs

# Distinct, at least 2 (0 and 1 are specialised, so kept), and small: a warm-up call costs microseconds.
CANONICAL_SIZES = (5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61)
_ARRAYS = ("hidden", "weight", "bias", "logits", "labels", "sparse_labels", "mask", "cotangent", "direction")


def canonical(inputs: Inputs, keep_example_sizes: bool = False) -> Inputs | None:
    """`inputs` with each size other than 0 and 1 replaced by its pattern's canonical size, values tiled from the
    case's own; integer labels keep their kind (in range, ignored, negative, past the classes). None where the case's
    sizes cannot move: class weights (an option, so part of the compile key) fix the class count, or the pattern has
    more distinct sizes than CANONICAL_SIZES. `keep_example_sizes`: the logits' sizes other than the class axis stay
    the case's own too, for a graph the compiler specialises on them (Impl.fixes_example_sizes)."""
    sizes: dict[int, int] = {0: 0, 1: 1}
    if inputs.options.weight is not None:
        sizes[inputs.classes] = inputs.classes
    if keep_example_sizes:
        shape = inputs.logits.shape
        sizes.update((s, s) for i, s in enumerate(shape) if i != inputs.axis % max(len(shape), 1))
    arrays = {name: a for name in _ARRAYS if (a := getattr(inputs, name)) is not None}
    free = iter(CANONICAL_SIZES)
    for a in arrays.values():
        for size in a.shape:
            if size not in sizes:
                if (fixed := next(free, None)) is None:
                    return None
                sizes[size] = fixed
    shaped = {name: _resized(a, tuple(sizes[s] for s in a.shape)) for name, a in arrays.items()}
    if inputs.sparse_labels is not None:
        shaped["sparse_labels"] = _labels(shaped["sparse_labels"], inputs.classes, sizes[inputs.classes], inputs.options.ignore_index)
    return dataclasses.replace(inputs, **shaped)


def shapes(inputs: Inputs) -> tuple:
    """The shapes of every array of `inputs`: what tells two canonical calls apart."""
    return tuple(None if (a := getattr(inputs, name)) is None else a.shape for name in _ARRAYS)


def _resized(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if a.shape == shape:
        return a
    if a.size == 0:
        return np.zeros(shape, a.dtype)
    return np.resize(a, shape)  # the case's values repeated: the same kinds of number (NaN, inf, huge) as the case's


def _labels(labels: np.ndarray, classes: int, to: int, ignore_index: int | None) -> np.ndarray:
    """Class indices moved into `to` classes: an index in range stays in range, one past the classes stays past them,
    a negative one and ignore_index stay as they are (an out-of-range index is what an invalid-input case probes)."""
    wide = labels.astype(np.int64)
    past = np.where(wide >= to, wide, np.minimum(wide, to) - classes + to)  # clipped first: int64's largest index cannot wrap
    moved = np.where(wide >= classes, past, np.where(wide >= 0, wide % max(to, 1), wide))
    if ignore_index is not None:
        moved = np.where(wide == ignore_index, wide, moved)
    return moved.astype(labels.dtype)
