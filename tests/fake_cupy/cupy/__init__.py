"""A stand-in for CuPy on machines without a GPU: NumPy behind CuPy's names, so that the CuPy adapter's own code
(conversions, reductions, the composed cross-entropies, synchronisation) is tested where no GPU is lent."""

import numpy as _np
from numpy import asarray, expand_dims, inf, mean, squeeze, sum, take_along_axis, where  # noqa: F401

__version__ = "0.0+numpy-stand-in"


def asnumpy(a):
    return _np.asarray(a)


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1

    @staticmethod
    def getDeviceProperties(index):
        return {"name": b"NumPy stand-in"}


class _Device:
    def synchronize(self):
        pass


class cuda:  # noqa: N801 - CuPy's name
    runtime = _Runtime
    Device = _Device
