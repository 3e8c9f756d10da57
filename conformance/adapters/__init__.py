"""Layer 3, adapters: one module per framework with the same names (base.py is the contract).

Finding adapters: the built-in modules (BUILTIN) plus any registered under the entry-point group
`softmax_conformance.adapters` (name = "package.module"). Adding a framework is one module and one line here
or one entry point in its own package.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import shutil
import sys
from importlib.metadata import PackageNotFoundError, entry_points
from importlib.metadata import version as dist_version
from pathlib import Path
from types import ModuleType
from typing import Any

from .base import Impl, IncompleteAdapter, Roof, Unsupported, contract_problems, declaration

__all__ = ["Impl", "Unsupported", "FrameworkAbsent", "IncompleteAdapter", "incompleteness", "registered", "load_adapter",
           "missing_packages", "cold_seconds", "quick_seconds", "warm_fraction", "own_fraction",
           "package_versions", "declared", "gpu_roof", "GPU_ROOF_ABSENT", "shared_doors", "exported_doors"]

BUILTIN = {
    "numpy": "conformance.adapters.numpy",
    "torch": "conformance.adapters.torch",
    "tensorflow": "conformance.adapters.tensorflow",
    "jax": "conformance.adapters.jax",
    "keras-jax": "conformance.adapters.keras_jax",  # Keras 3 on its JAX backend (its TensorFlow backend is in tensorflow)
    "keras-torch": "conformance.adapters.keras_torch",  # Keras 3 on its PyTorch backend
    "cupy": "conformance.adapters.cupy",  # GPU only: absent (skipped) where CuPy is not installed
    "onnxruntime": "conformance.adapters.onnxruntime",  # the deployment path: values only (an inference runtime)
    "mlx": "conformance.adapters.mlx",  # Apple's array framework (its CPU build on Linux)
    "paddle": "conformance.adapters.paddle",  # PaddlePaddle
    "tinygrad": "conformance.adapters.tinygrad",  # tinygrad on its CPU device (clang)
}
ENTRY_POINT_GROUP = "softmax_conformance.adapters"
# Adapters that are not packaged (a framework under development, the tests' fault-injection adapter), the user's
# setting: "name=package.module,name2=package.module2". Spawned workers inherit it with the rest of the environment.
EXTRA_ADAPTERS_ENV = "CONFORMANCE_ADAPTERS"
INSTALL_HINT = {
    "numpy": "pip install scipy",
    "torch": "pip install 'softmax-conformance[torch]'",
    "tensorflow": "pip install 'softmax-conformance[tensorflow]'",
    "jax": "pip install 'softmax-conformance[jax]'",
    "keras-jax": "pip install 'softmax-conformance[jax,keras]'",
    "keras-torch": "pip install 'softmax-conformance[torch,keras]'",
    "cupy": "pip install 'softmax-conformance[cupy]' (needs a CUDA GPU)",
    "onnxruntime": "pip install 'softmax-conformance[onnxruntime]'",
    "mlx": "pip install 'softmax-conformance[mlx]' (mlx[cpu] on Linux)",
    "paddle": "pip install 'softmax-conformance[paddle]'",
    "tinygrad": "pip install 'softmax-conformance[tinygrad]' and clang (apt-get install clang), which its CPU device runs",
}


class FrameworkAbsent(Exception):
    """The framework's package is not installed (or failed to import); str() says which and how to add it."""


_configured: dict[str, str] = {}  # framework -> module, from the run's configuration (run/config.py)


def use_adapters(modules: dict[str, str]) -> dict[str, str]:
    """Adapters this process finds beside the others (a check's function under test): set from a run's typed
    configuration, which every worker receives with its shard. Returns the previous ones."""
    global _configured
    previous, _configured = _configured, dict(modules)
    return previous


def registered() -> dict[str, str]:
    """Framework name -> adapter module path, built-ins first, then entry points, the user's $CONFORMANCE_ADAPTERS and
    the run's configured ones."""
    names = dict(BUILTIN)
    for name, module in _entry_point_adapters(tuple(sys.path)):
        names.setdefault(name, module)
    for item in os.environ.get(EXTRA_ADAPTERS_ENV, "").split(","):
        name, _, module = item.partition("=")
        if name.strip() and module.strip():
            names.setdefault(name.strip(), module.strip())
    for name, module in _configured.items():
        names.setdefault(name, module)
    return names


@functools.lru_cache(maxsize=8)
def _entry_point_adapters(path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The adapters installed distributions register, read once per `sys.path` (which decides what is installed):
    reading every distribution's metadata takes 10-15 ms in a venv of the frameworks, and the run's parent asks what
    an adapter declares as each worker's message arrives, so reading it each time made the parent the bottleneck of a
    one-framework run (40% of its 70 s was the worker waiting for the parent to take its records)."""
    return tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))


def incompleteness(adapter: ModuleType) -> str | None:
    """What an adapter module lacks of the contract, said in one line; None for a complete one."""
    problems = contract_problems(adapter)
    return f"{adapter.__name__} is not a complete adapter: {'; '.join(problems)} (conformance/adapters/base.py)" if problems else None


def load_adapter(name: str, compile_cache: Path | None = None) -> ModuleType:
    """Import the adapter and its framework; FrameworkAbsent when the framework is not installed. With
    `compile_cache`, the framework keeps what it compiles in that folder (one subfolder per framework), so a
    second run does not compile again; without, each framework's default applies."""
    modules = registered()
    if name not in modules:
        raise KeyError(name)
    adapter = importlib.import_module(modules[name])
    incomplete = incompleteness(adapter)
    if incomplete:  # a third-party adapter that would fail half-way through a run: say what it lacks before it starts
        raise IncompleteAdapter(incomplete)
    tools = _missing_tools(adapter)
    if tools:  # a program the framework runs (tinygrad's clang): absent, as a missing package is
        raise FrameworkAbsent(absent_message(name, tools))
    try:
        adapter.load(compile_cache)
    except ImportError as exc:
        hint = INSTALL_HINT.get(name, f"install the package behind {name}")
        raise FrameworkAbsent(f"{name} is not installed ({exc.name or exc}); {hint}") from None
    return adapter


def package_versions(adapter: ModuleType) -> dict[str, str]:
    """Installed version of every distribution the adapter declares as changing its numerics (PACKAGES), read
    from the package metadata: the gate compares them between runs to say what an upgrade moved."""
    found = {}
    for dist in declaration(adapter, "PACKAGES"):
        try:
            found[dist] = dist_version(dist)
        except PackageNotFoundError:
            pass
    return found


def missing_packages(name: str) -> list[str]:
    """Packages the framework needs that are not importable, and programs it runs that are not on PATH (TOOLS:
    tinygrad's clang), found without importing the framework itself."""
    module = importlib.import_module(registered()[name])
    return [p for p in declaration(module, "REQUIRES") if importlib.util.find_spec(p) is None] + _missing_tools(module)


def _missing_tools(module: ModuleType) -> list[str]:
    """The programs an adapter declares it runs (TOOLS) that are not on PATH."""
    return [t for t in declaration(module, "TOOLS") if shutil.which(t) is None]


def absent_message(name: str, missing: list[str]) -> str:
    return f"{name} is not installed (missing {', '.join(missing)}); {INSTALL_HINT.get(name, 'install it')}"


def declared(name: str, attribute: str) -> Any:
    """A constant the adapter module declares (base.DECLARATIONS: each with its one default), read without importing
    the framework: the planner needs them before any worker starts. A name outside the contract is a bug of the caller."""
    return declaration(importlib.import_module(registered()[name]), attribute)


def _declared_by_every_adapter(attribute: str) -> list[Any]:
    """What every registered adapter module declares as `attribute` (base.DECLARATIONS), where it declares it; an
    adapter module that cannot be imported here declares nothing."""
    found = []
    for module in registered().values():
        try:
            value = declaration(importlib.import_module(module), attribute)
        except ImportError:
            continue
        if value:
            found.append(value)
    return found


def shared_doors() -> tuple[str, ...]:
    """Key prefixes of public APIs that several registered frameworks run (declared SHARED_DOORS): the report's
    cross-backend section."""
    return tuple(sorted({prefix for doors in _declared_by_every_adapter("SHARED_DOORS") for prefix in doors}))


def exported_doors() -> dict[str, str]:
    """Key prefix -> source framework of implementations that run a model exported from another framework (declared
    EXPORTED_FROM; onnxruntime's torch.onnx/ doors): the report pairs them with the source's own records."""
    return {prefix: source for exports in _declared_by_every_adapter("EXPORTED_FROM") for prefix, source in exports.items()}


GPU_ROOF_ABSENT = "no CuPy on this GPU machine"


def gpu_roof() -> Roof | None:
    """A GPU's memory-bandwidth roof for the speed report (CuPy's device-to-device copy), or None where CuPy is not
    installed (the report then says GPU_ROOF_ABSENT)."""
    from .cupy import CopyRoof

    try:
        return CopyRoof()
    except ImportError:
        return None


def declared_on(name: str, attribute: str, cpu: str | None) -> Any:
    """A cost declaration (base.PER_CPU) as measured on a CPU of class `cpu` where the adapter declares that class's
    own (ON_CPU), else its own (measured on base.REFERENCE_CPU; also where `cpu` is None: a plan that every machine
    must make alike, a run split across machines)."""
    every = declared(name, "ON_CPU")  # read (and checked) on every CPU: a wrong one is refused wherever it runs
    own = every.get(cpu, {}) if cpu is not None else {}
    return own[attribute] if attribute in own else declared(name, attribute)


def cold_seconds(name: str, cpu: str | None = None) -> dict[tuple[str, str], float]:
    """The adapter's measured cold-run seconds per (mode, dtype) (empty if the adapter declares none)."""
    return dict(declared_on(name, "COLD_SECONDS", cpu))


def quick_seconds(name: str, cpu: str | None = None) -> dict[str, float]:
    """The adapter's measured seconds of a cold `run --quick`, per mode (empty if the adapter declares none)."""
    return dict(declared_on(name, "QUICK_SECONDS", cpu))


def warm_fraction(name: str, mode: str, cpu: str | None = None) -> float:
    """What share of a cold run's seconds in `mode` the same selection takes once the compile cache is warm (1 where
    the adapter declares none)."""
    return float(dict(declared_on(name, "WARM_FRACTION", cpu)).get(mode, 1.0))


def own_fraction(name: str, mode: str, cpu: str | None = None) -> float:
    """What share of a cold full run's seconds in `mode` (COLD_SECONDS, measured with the naive formulas) the
    framework's own functions take (1 where the adapter declares none: it has no naive formulas, or none measured)."""
    return float(dict(declared_on(name, "OWN_FRACTION", cpu)).get(mode, 1.0))
