"""Seeded input generators usable in case files in place of literal arrays.

Every generator is deterministic: the same mapping always yields the same float64 (or int64) array,
whatever the platform, because it draws from NumPy's PCG64 stream with the case's own seed.
The corpus README lists them; `GENERATORS` is the single source of truth for their names and fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .safe_yaml import max_elements


class GeneratorError(ValueError):
    """A generator mapping that names an unknown generator or misses a field."""


MAX_RANK = 8


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shape_of(spec: dict) -> tuple[int, ...]:
    """The shape a generator mapping will produce, checked, without producing it."""
    shape = spec.get("shape")
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_int(n) and n >= 0 for n in shape):
        raise GeneratorError(f"'shape' must be a list of at most {MAX_RANK} non-negative integers")
    # Every dimension is bounded, not only the product: a zero axis makes [2^40, 0] empty, but the work a generator
    # does before drawing (a row count, a list of alphas per class) follows the other axes.
    bound = 1
    for n in shape:
        bound *= max(n, 1)
    if bound > max_elements():
        raise GeneratorError(f"'shape' {shape} spans {bound:,} elements counting a zero axis as 1, over the limit of {max_elements():,} "
                             "(raise it with --max-elements)")
    return tuple(shape)


_shape = shape_of


def _rng(spec: dict) -> np.random.Generator:
    seed = spec.get("seed")
    if not _int(seed) or not 0 <= seed < 2 ** 63:
        raise GeneratorError("'seed' is required and must be a non-negative integer below 2^63 (every generator is seeded)")
    return np.random.default_rng(seed)


def _num(spec: dict, key: str, default: float, finite: bool = True) -> float:
    value = spec.get(key, default)
    if isinstance(value, str) and not finite and value.lower() in ("inf", "+inf", "-inf", "nan"):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GeneratorError(f"'{key}' must be a number" + ("" if finite else " or one of inf, -inf, nan"))
    try:
        value = float(value)
    except OverflowError:
        raise GeneratorError(f"'{key}' is too large for a float") from None
    if finite and not np.isfinite(value):
        raise GeneratorError(f"'{key}' must be finite")
    return value


def normal(spec: dict) -> np.ndarray:
    """loc + scale * N(0, 1)."""
    return _num(spec, "loc", 0.0) + _num(spec, "scale", 1.0) * _rng(spec).standard_normal(_shape(spec))


def uniform(spec: dict) -> np.ndarray:
    return _rng(spec).uniform(_num(spec, "low", 0.0), _num(spec, "high", 1.0), _shape(spec))


def full(spec: dict) -> np.ndarray:
    """Every element equal to `value` (which may be "inf", "-inf" or "nan")."""
    return np.full(_shape(spec), _num(spec, "value", 0.0, finite=False))


def linspace(spec: dict) -> np.ndarray:
    """Evenly spaced values from start to stop, filling `shape` in C order."""
    shape = _shape(spec)
    n = int(np.prod(shape)) if shape else 1
    return np.linspace(_num(spec, "start", 0.0), _num(spec, "stop", 1.0), n).reshape(shape)


def one_hot(spec: dict) -> np.ndarray:
    """Random one-hot rows along the last axis."""
    shape = _shape(spec)
    if not shape or shape[-1] < 1:
        raise GeneratorError("one_hot needs a shape whose last axis has at least one class")
    idx = _rng(spec).integers(0, shape[-1], size=shape[:-1])
    out = np.zeros(shape)  # not np.eye(C)[idx]: a C x C identity is 128 GiB at C = 131072
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out


def dirichlet(spec: dict) -> np.ndarray:
    """Soft labels: rows drawn from a symmetric Dirichlet(alpha) along the last axis (rows sum to 1)."""
    shape = _shape(spec)
    if not shape or shape[-1] < 1:
        raise GeneratorError("dirichlet needs a shape whose last axis has at least one class")
    alpha = _num(spec, "alpha", 1.0)
    if not alpha > 0:
        raise GeneratorError("'alpha' must be positive")
    rows = int(np.prod(shape[:-1])) if shape[:-1] else 1
    return _rng(spec).dirichlet([alpha] * shape[-1], size=rows).reshape(shape)


def class_indices(spec: dict) -> np.ndarray:
    """Random integer class labels in [0, classes)."""
    classes = spec.get("classes")
    if not _int(classes) or not 1 <= classes < 2 ** 31:
        raise GeneratorError("'classes' must be a positive integer below 2^31")
    return _rng(spec).integers(0, classes, size=_shape(spec)).astype(np.int64)


def bernoulli(spec: dict) -> np.ndarray:
    """A random mask: 1 (the class takes part) with probability p, else 0."""
    p = _num(spec, "p", 0.5)
    if not 0.0 <= p <= 1.0:
        raise GeneratorError("'p' must be in [0, 1]")
    return (_rng(spec).random(_shape(spec)) < p).astype(np.int64)


GENERATORS: dict[str, Callable[[dict], np.ndarray]] = {
    "normal": normal,
    "uniform": uniform,
    "full": full,
    "linspace": linspace,
    "one_hot": one_hot,
    "dirichlet": dirichlet,
    "class_indices": class_indices,
    "bernoulli": bernoulli,
}


# The fields each generator reads, besides generate, shape and seed: anything else is a typo.
FIELDS = {"normal": {"loc", "scale"}, "uniform": {"low", "high"}, "full": {"value"}, "linspace": {"start", "stop"},
          "one_hot": set(), "dirichlet": {"alpha"}, "class_indices": {"classes"}, "bernoulli": {"p"}}
INTEGER_GENERATORS = ("class_indices",)
CLASS_AXIS_GENERATORS = ("one_hot", "dirichlet")  # they draw along the last axis: it needs a class
MASK_GENERATORS = ("bernoulli",)


def check(spec: dict[str, Any], shaped: bool = True) -> None:
    """Validate a generator mapping without drawing from it (`shaped`: False for cotangent and direction, whose
    shape is the output's or the logits', given at build time)."""
    name = spec.get("generate")
    if not isinstance(name, str) or name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
    unknown = sorted(str(k) for k in set(spec) - FIELDS[name] - {"generate", "shape", "seed"})
    if unknown:
        raise GeneratorError(f"generator {name} has no field '{unknown[0]}' (it takes: {', '.join(sorted(FIELDS[name] | {'shape', 'seed'}))})")
    _rng(spec)
    if shaped:
        shape = shape_of(spec)
        if name in CLASS_AXIS_GENERATORS and (not shape or shape[-1] < 1):  # the two-element draw below cannot see it
            raise GeneratorError(f"{name} needs a shape whose last axis has at least one class, not {list(shape)}")
    elif "shape" in spec:
        raise GeneratorError("takes no 'shape': it is the shape of the output (cotangent) or of the logits (direction)")
    try:
        GENERATORS[name]({**spec, "shape": [2]})  # every other field, on two elements
    except GeneratorError:
        raise
    except (ValueError, OverflowError) as exc:
        raise GeneratorError(f"generator {name}: {exc}") from None


def generate(spec: dict[str, Any]) -> np.ndarray:
    name = spec.get("generate")
    if not isinstance(name, str) or name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name](spec)
