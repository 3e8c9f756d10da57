"""Peak memory of one benchmarked call, for the ops where memory is the point (the fused linear cross-entropy: chunking
exists to keep the [tokens, vocabulary] logits out of memory).

Measured in a fresh process per benchmark (`python -m conformance.speed.memory SPEC_ID`), so that nothing another
benchmark allocated or cached is counted: the inputs are built, the call is made once (it compiles in compiled mode),
the C allocator's heap is returned to the system (malloc_trim) and its mmap threshold fixed at 128 KiB (large blocks
are mapped on allocation and unmapped on free, so the resident set follows them), then the resident set is sampled
every 0.2 ms during a second call. The figure is its highest growth above where it stood before the call: what the
call needed beyond its inputs, whichever framework allocated it (Linux; elsewhere the figure is absent).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

STATM = "/proc/self/statm"
M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)


def resident_bytes() -> int | None:
    try:
        with open(STATM) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def fix_allocator() -> None:
    """Large blocks mapped and unmapped (glibc), and the free heap handed back: the resident set then follows what the
    call holds. Does nothing where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_growth(call: Callable[[], object], interval_s: float = 0.0002) -> int | None:
    """The highest growth of the resident set during `call()` above where it stood before it, in bytes (None where
    the resident set cannot be read)."""
    base = resident_bytes()
    if base is None:
        return None
    peak, stop = base, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            now = resident_bytes() or 0
            peak = max(peak, now)
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        call()
    finally:
        stop.set()
        sampler.join()
    return max(0, max(peak, resident_bytes() or 0) - base)


def measure_in_fresh_process(spec_id: str, threads: int, timeout_s: float = 600.0) -> tuple[int | None, str | None]:
    """(peak bytes, None), or (None, why) where the fresh process could not measure it."""
    try:
        done = subprocess.run([sys.executable, "-m", "conformance.speed.memory", spec_id, str(threads)], capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout_s:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"exit {done.returncode}: {tail[:200]}"
    answer = json.loads(lines[-1])
    return answer.get("peak_bytes"), answer.get("why")


def _main(spec_id: str, threads: int) -> None:
    from ..adapters import load_adapter
    from . import measure as speed

    spec = speed.spec_from_id(spec_id)
    adapter = load_adapter(spec.framework)
    adapter.set_threads(threads)
    impl = next(i for i in adapter.implementations() if i.id == spec.impl and i.op == spec.op)
    call = adapter.benchmark_call(impl, speed.bench_inputs(spec.op, spec.dtype, spec.shape), spec.mode, spec.device,
                                  spec.passes == speed.FORWARD_BACKWARD)
    call()  # compiled mode compiles here: its compiler's memory is not the call's
    fix_allocator()
    peak = peak_growth(call)
    print(json.dumps({"peak_bytes": peak, "why": None if peak is not None else f"{STATM} cannot be read"}))


if __name__ == "__main__":
    _main(sys.argv[1], int(sys.argv[2]))
