"""A framework adapter that misbehaves on purpose, for the tests of how a run survives a broken framework.

Registered through $CONFORMANCE_ADAPTERS ("fault=fault_adapter", with tests/ on PYTHONPATH); $CONFORMANCE_FAULT
picks the fault: hang-import, raise-import; on every sparse cross-entropy (after the first case's records were
sent, and in whichever process the call runs), exit (os._exit), segv, sigkill, exit-after-first-record (the process
dies between two records of one call), flaky-after-first-record (the same, the first time in a run only: a fresh
worker answers); on the second evaluation, hang, enospc (a full disk under the framework's cache);
exit-on-dense-labels (os._exit on every dense cross-entropy); damage (a dense cross-entropy answers rightly but
leaves the process damaged, and a later sparse cross-entropy in that process dies: heap corruption met at a later
call); damage-between (the run's first dense cross-entropy leaves the process damaged, and it dies with SIGABRT between
two calls, in the harness, as Paddle's heap corruption once killed a worker);
or a planted numerical bug: unshifted (softmax as exp(x)/sum(exp(x)) under
the fused function's name). Otherwise it computes what the NumPy adapter computes.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import tempfile
import time
from pathlib import Path

import numpy as np

from conformance.adapters import numpy as numpy_adapter

NAME = "fault"
REQUIRES = ()
PACKAGES = ()
_calls = 0
_damaged = False


def _fault() -> str:
    return os.environ.get("CONFORMANCE_FAULT", "")


def load(compile_cache: Path | None = None) -> None:
    if _fault() == "hang-import":
        time.sleep(3600)
    if _fault() == "raise-import":
        raise RuntimeError("the framework's import raised (injected)")
    numpy_adapter.load(compile_cache)


def version() -> str:
    return "0.0+fault"


def devices() -> list[str]:
    return ["cpu"]


def flags() -> dict:
    return {}


def _unshifted_softmax(x, labels, inputs):
    e = np.exp(x)
    return e / e.sum(axis=inputs.axis, keepdims=True)


def implementations():
    if _fault() == "damage-between" and _damaged:  # asked between calls (each unit asks): no call is running
        os.kill(os.getpid(), signal.SIGABRT)
    impls = [dataclasses.replace(i, framework=NAME) for i in numpy_adapter.implementations() if not i.naive]
    if _fault() == "unshifted":
        impls = [dataclasses.replace(i, forward=_unshifted_softmax) if i.op == "softmax" else i for i in impls]
    return impls


def evaluate(impl, inputs, quantities, mode: str, device: str) -> dict:
    global _calls, _damaged
    _calls += 1
    fault = _fault()
    if fault == "exit-on-dense-labels" and inputs.op == "softmax_cross_entropy":  # one case dies, in every worker
        os._exit(7)
    if fault == "damage" and inputs.op == "softmax_cross_entropy":
        _damaged = True
    # once a run (the marker is the run's parent process's): a fresh worker is not damaged again
    marker = Path(tempfile.gettempdir()) / f"conformance-fault-damage-between-{os.getppid()}"
    if fault == "damage-between" and inputs.op == "softmax_cross_entropy" and not marker.exists():
        marker.touch()
        _damaged = True
    if inputs.op == "sparse_softmax_cross_entropy" and (fault == "exit" or (fault == "damage" and _damaged)):
        os._exit(7)
    if inputs.op == "sparse_softmax_cross_entropy" and fault in ("segv", "sigkill"):
        os.kill(os.getpid(), signal.SIGSEGV if fault == "segv" else signal.SIGKILL)
    if _calls == 2:
        if fault == "hang":
            time.sleep(3600)
        if fault == "enospc":  # the disk under the framework's cache fills
            raise OSError(errno.ENOSPC, "No space left on device", "/cache/inductor/xy/kernel.so")
    flaky = Path(tempfile.gettempdir()) / f"conformance-fault-flaky-{os.getppid()}"
    if (inputs.op == "sparse_softmax_cross_entropy" and len(tuple(quantities)) > 1
            and (fault == "exit-after-first-record" or (fault == "flaky-after-first-record" and not flaky.exists()))):
        flaky.touch()
        # the first quantity's record goes out, then reading the last answer kills the process (a heap check
        # aborting at a later free, as Paddle's nll_loss does; or Paddle's SIGSEGV in a backward, once)
        results = numpy_adapter.evaluate(impl, inputs, quantities, mode, device)
        results[tuple(quantities)[-1]] = _DiesWhenRead()
        return results
    return numpy_adapter.evaluate(impl, inputs, quantities, mode, device)


class _DiesWhenRead:
    def __array__(self, *args, **kwargs):
        os._exit(7)


# The rest of the adapter contract, as the NumPy adapter does it: the fault adapter is benchmarked like any other.
set_threads = numpy_adapter.set_threads
benchmark_call = numpy_adapter.benchmark_call
bare_call = numpy_adapter.bare_call
