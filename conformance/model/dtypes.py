"""Floating-point formats under test: NumPy dtype objects and their rounding constants."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def bfloat16() -> np.dtype:
    """NumPy's bfloat16 (ml_dtypes), imported on first use: ml_dtypes 0.7's import takes 1.0-1.2 s, which every
    worker and `conformance run` itself paid at start though a run without bfloat16 never makes such an array."""
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


@dataclass(frozen=True)
class FloatFormat:
    name: str
    mant_bits: int  # explicit mantissa bits (precision p = mant_bits + 1)
    min_exp: int  # exponent of the smallest normal number
    max: float

    @property
    def np_dtype(self) -> np.dtype:
        return bfloat16() if self.name == "bfloat16" else np.dtype(self.name)

    @property
    def unit_roundoff(self) -> float:
        """u = 2**-p: the largest relative error of one correctly rounded operation."""
        return 2.0 ** -(self.mant_bits + 1)

    @property
    def smallest_normal(self) -> float:
        return 2.0**self.min_exp


FORMATS = {
    "float16": FloatFormat("float16", 10, -14, 65504.0),
    # the largest finite number of each format, (2 - 2**-mant_bits) * 2**max_exp, where max_exp = 1 - min_exp
    "bfloat16": FloatFormat("bfloat16", 7, -126, (2.0 - 2.0**-7) * 2.0**127),
    "float32": FloatFormat("float32", 23, -126, float(np.finfo(np.float32).max)),
    "float64": FloatFormat("float64", 52, -1022, float(np.finfo(np.float64).max)),
}


def fmt(name: str) -> FloatFormat:
    return FORMATS[name]


def ulp(reference: np.ndarray, dtype: str) -> np.ndarray:
    """Spacing of the format `dtype` at each reference value (subnormal spacing below the normal range)."""
    f = FORMATS[dtype]
    mag = np.abs(np.asarray(reference, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log2(np.where(mag > 0, mag, 1.0)))
    exponent = np.maximum(exponent, f.min_exp)
    return np.ldexp(1.0, (exponent - f.mant_bits).astype(np.int64))


def round_to(values: ArrayLike, dtype: str) -> np.ndarray:
    """Round (possibly extended-precision) values to the format under test."""
    return np.asarray(np.asarray(values, dtype=np.float64), dtype=FORMATS[dtype].np_dtype)


def log2_ceil(n: int) -> float:
    return float(math.ceil(math.log2(n))) if n > 1 else 0.0
