"""Where a run ran: Python, the platform, the CPU as far as the frameworks' kernels see it, the frameworks, and the
settings that change numbers. Recorded in every results.json; the gate compares fingerprints between runs."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from ..adapters import declared, registered

# Settings that change numerics whatever the framework; each adapter names its own (NUMERIC_ENV). Recorded whether
# or not they are set.
NUMERIC_ENV_FLAGS = ("OMP_NUM_THREADS",)


def omp_threads() -> int | None:
    """$OMP_NUM_THREADS where it is set to a whole number of at least 1 (a user's, or the one a run gives its worker)."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else None


def cpu_threads() -> int:
    """The threads a framework's CPU kernels may use in this process: $OMP_NUM_THREADS where set (a run's worker is
    given its share of the cores so), else every core the process may run on."""
    return omp_threads() or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first /proc/cpuinfo line whose key is one of `keys` (None off Linux or where absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in keys:
                return value.strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


# Vector extensions by which the frameworks' compilers and kernel libraries choose their CPU kernels: two CPUs that
# differ in them sum in a different order, so errors move (within tolerance) although nothing changed.
KERNEL_FEATURES = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                   "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16", "asimd", "sve", "sve2")


def _cpu_features() -> list[str]:
    present = set((_cpuinfo("flags", "Features") or "").split())  # x86 names the line flags, Arm Features
    return [f for f in KERNEL_FEATURES if f in present]


# The widest vector extension names a CPU's kind (cpu_class), widest first: (name, /proc/cpuinfo flag).
WIDEST_VECTORS = (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx"), ("sve", "sve"), ("neon", "asimd"))
VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}


def cpu_class() -> str:
    """This CPU's kind as the adapters key the costs they measured on one (ON_CPU): its vendor (else the
    architecture) and widest vector extension, "amd-avx2", "intel-avx512", "aarch64-sve". The frameworks do not speed
    up alike between CPUs (a compiler's first use, bound by one core's speed, against vector kernels), so one CPU's
    seconds scaled by one factor misplan another's."""
    vendor = VENDORS.get(_cpuinfo("vendor_id") or "", platform.machine().lower() or "unknown")
    present = set(_cpu_features())
    return f"{vendor}-{next((name for name, flag in WIDEST_VECTORS if flag in present), 'scalar')}"


def kernel_fingerprint(doc: dict, framework: str | None = None) -> str | None:
    """The CPU as far as the frameworks' choice of kernels and their split over threads goes (model, vector
    extensions, core count: frameworks size their thread pools by the cores); None for a results file
    that did not record it. A framework whose records were made on another machine than the document's (a baseline
    assembled from two runs) says so in its own `machine` (cpu, cpu_features, cpu_count): that CPU is its."""
    env = doc.get("environment") or {}
    own = ((env.get("frameworks") or {}).get(framework) or {}).get("machine") if framework else None
    if isinstance(own, dict):
        env = own
    if "cpu_features" not in env:
        return None
    return f"{env.get('cpu', '?')} [{' '.join(env['cpu_features']) or 'no vector extensions'}], {env.get('cpu_count', '?')} cores"


def environment(framework_info: dict) -> dict:
    frameworks = {name: info for name, info in framework_info.items() if not name.startswith("_")}
    names = list(NUMERIC_ENV_FLAGS) + [v for fw in registered() for v in declared(fw, "NUMERIC_ENV")]
    flags = {k: os.environ.get(k) for k in dict.fromkeys(names)}
    for info in frameworks.values():
        flags.update(info.get("flags", {}))
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
            "cpu_features": _cpu_features(), "cpu_class": cpu_class(), "cpu_count": os.cpu_count(), "frameworks": frameworks, "flags": flags}
