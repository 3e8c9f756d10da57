"""Seeded input generators usable in case files in place of literal arrays.

Every generator is deterministic: the same mapping always yields the same float64 (or int64) array,
whatever the platform, because it draws from NumPy's PCG64 stream with the case's own seed.
The corpus README lists them; `GENERATORS` is the single source of truth for their names and fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class GeneratorError(ValueError):
    """A generator mapping that names an unknown generator or misses a field."""


def _shape(spec: dict) -> tuple[int, ...]:
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise GeneratorError("'shape' must be a list of non-negative integers")
    return tuple(shape)


def _rng(spec: dict) -> np.random.Generator:
    seed = spec.get("seed")
    if not isinstance(seed, int):
        raise GeneratorError("'seed' is required and must be an integer (every generator is seeded)")
    return np.random.default_rng(seed)


def _num(spec: dict, key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, str):
        value = float(value)  # allows "inf" / "-inf"
    if not isinstance(value, (int, float)):
        raise GeneratorError(f"'{key}' must be a number")
    return float(value)


def normal(spec: dict) -> np.ndarray:
    """loc + scale * N(0, 1)."""
    return _num(spec, "loc", 0.0) + _num(spec, "scale", 1.0) * _rng(spec).standard_normal(_shape(spec))


def uniform(spec: dict) -> np.ndarray:
    return _rng(spec).uniform(_num(spec, "low", 0.0), _num(spec, "high", 1.0), _shape(spec))


def full(spec: dict) -> np.ndarray:
    """Every element equal to `value` (which may be "inf", "-inf" or "nan")."""
    return np.full(_shape(spec), _num(spec, "value", 0.0))


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
    return np.eye(shape[-1])[idx]


def dirichlet(spec: dict) -> np.ndarray:
    """Soft labels: rows drawn from a symmetric Dirichlet(alpha) along the last axis (rows sum to 1)."""
    shape = _shape(spec)
    if not shape or shape[-1] < 1:
        raise GeneratorError("dirichlet needs a shape whose last axis has at least one class")
    alpha = _num(spec, "alpha", 1.0)
    rows = int(np.prod(shape[:-1])) if shape[:-1] else 1
    return _rng(spec).dirichlet([alpha] * shape[-1], size=rows).reshape(shape)


def class_indices(spec: dict) -> np.ndarray:
    """Random integer class labels in [0, classes)."""
    classes = spec.get("classes")
    if not isinstance(classes, int) or classes < 1:
        raise GeneratorError("'classes' must be a positive integer")
    return _rng(spec).integers(0, classes, size=_shape(spec)).astype(np.int64)


GENERATORS: dict[str, Callable[[dict], np.ndarray]] = {
    "normal": normal,
    "uniform": uniform,
    "full": full,
    "linspace": linspace,
    "one_hot": one_hot,
    "dirichlet": dirichlet,
    "class_indices": class_indices,
}


def generate(spec: dict[str, Any]) -> np.ndarray:
    name = spec.get("generate")
    if name not in GENERATORS:
        raise GeneratorError(f"unknown generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name](spec)
