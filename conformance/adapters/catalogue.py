"""What each registered framework offers, for `conformance list`: its version, devices and every implementation,
grouped by op. Where nothing in the description needs the framework itself (no GPU can be on this machine, and the
adapter's implementations are data), it is read from the adapter module and the package metadata without importing
the framework: a framework's import is seconds (TensorFlow's 8 s), ten of them half a minute. Otherwise each framework
is described by a process of its own (spawned): a framework fixes things per process (a backend chosen at import,
thread pools), so describing one in the process of another could describe the wrong thing."""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing as mp
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..model.names import OPS
from . import FrameworkAbsent, IncompleteAdapter, absent_message, declared, incompleteness, load_adapter, missing_packages, package_versions, registered


@dataclass(frozen=True)
class Description:
    name: str
    absent: str | None = None  # why the framework cannot be described here (not installed)
    version: str = ""
    devices: tuple[str, ...] = ()
    # op -> (id, label, option names) for every implementation, the op's fused ones before its naive formulas
    implementations: dict[str, list[tuple[str, str, tuple[str, ...]]]] = field(default_factory=dict)
    incomplete: str | None = None  # what the adapter lacks of the contract: `run` refuses it


def describe(name: str) -> Description:
    """One framework, in this process."""
    for var, value in declared(name, "QUIET_ENV").items():
        os.environ.setdefault(var, value)
    missing = missing_packages(name)
    if missing:
        return Description(name, absent=absent_message(name, missing))
    try:
        adapter = load_adapter(name)
    except FrameworkAbsent as exc:
        return Description(name, absent=str(exc))
    except IncompleteAdapter as exc:
        return Description(name, incomplete=str(exc))
    return Description(name, version=adapter.version(), devices=tuple(adapter.devices()), implementations=_by_op(adapter.implementations()))


def accelerator_possible() -> bool:
    """Whether a framework here could see a GPU, answered without importing one. On Linux every GPU our adapters use
    shows as a device file (NVIDIA's driver, ROCm's kfd, WSL's dxg); elsewhere (macOS' Metal, Windows' drivers) that
    cannot be told so cheaply, so the answer is yes."""
    if not sys.platform.startswith("linux"):
        return True
    dev = Path("/dev")
    return Path("/proc/driver/nvidia/gpus").is_dir() or any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists() or (dev / "dxg").exists()


def described_without_import(name: str) -> Description | None:
    """A framework's description from its adapter module and the installed packages' metadata alone, or None where
    that could be wrong: a GPU may be here (only the framework can say whether it sees it), or the adapter's
    implementations() needs its framework loaded (it raises here, the framework's globals being unset). The version
    is each declared distribution's (PACKAGES). What it cannot tell is an install that fails to import: `run` says so
    before any worker starts, and `list --fresh` imports every framework."""
    if accelerator_possible():
        return None
    missing = missing_packages(name)
    if missing:
        return Description(name, absent=absent_message(name, missing))
    adapter = importlib.import_module(registered()[name])
    incomplete = incompleteness(adapter)
    if incomplete:
        return Description(name, incomplete=incomplete)
    try:
        impls = adapter.implementations()
    except Exception:  # noqa: BLE001 - an adapter whose implementations depend on its framework: described by import
        return None
    versions = package_versions(adapter)
    version = ", ".join(f"{dist} {v}" for dist, v in versions.items()) or "version unknown"
    return Description(name, version=version, devices=("cpu",), implementations=_by_op(impls))


def _by_op(impls: list) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    return {op: [(i.id, i.name + (f"  [{', '.join(i.devices)} only]" if i.devices else ""), tuple(sorted(i.options)))
                 for i in sorted((i for i in impls if i.op == op), key=lambda i: i.naive)]
            for op in OPS if any(i.op == op for i in impls)}


def _quiet() -> None:
    """A describing process keeps the frameworks' own log lines (absl, oneDNN, CUDA probes) out of the terminal: what
    it has to say it returns."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


# What else can change a description with the same packages installed: the devices a framework sees, its backend.
_DESCRIPTION_ENV = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "DEV", "KERAS_BACKEND", "JAX_PLATFORMS", "CONFORMANCE_ADAPTERS")


def description_key(name: str) -> str | None:
    """What a framework's description depends on, read without importing the framework: the adapter's own source, the
    installed versions of the distributions it declares, the interpreter, the suite's version, the GPU device files and
    the settings that pick devices or backends. None where the adapter module cannot be read (it is described afresh)."""
    from .. import __version__

    where = registered()[name]
    try:
        module = importlib.import_module(where)
        source = Path(module.__file__ or "").read_bytes()
    except (ImportError, OSError):
        return None
    gpus = sorted(p.name for p in Path("/dev").glob("nvidia[0-9]*")) if Path("/dev").is_dir() else []
    parts = [name, where, hashlib.sha256(source).hexdigest(), json.dumps(package_versions(module), sort_keys=True),
             sys.version, __version__, " ".join(gpus), *(f"{v}={os.environ.get(v, '')}" for v in _DESCRIPTION_ENV)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _cached(folder: Path, name: str, key: str | None) -> Description | None:
    if key is None:
        return None
    try:
        doc = json.loads((folder / f"{name}.json").read_text())
        if doc.get("key") != key:
            return None
        d = doc["description"]
        return Description(d["name"], d["absent"], d["version"], tuple(d["devices"]),
                           {op: [(i, label, tuple(opts)) for i, label, opts in impls] for op, impls in d["implementations"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, damaged or from another release of the suite: described afresh


def _keep(folder: Path, key: str | None, d: Description) -> None:
    """Keep a description for the next `list` (atomically; a cache that cannot be written costs only the time)."""
    if key is None or d.absent or d.incomplete:  # cheap to describe again, and may be installed or mended any moment
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f".{d.name}.{os.getpid()}.json"
        part.write_text(json.dumps({"key": key, "description": asdict(d)}))
        os.replace(part, folder / f"{d.name}.json")
    except OSError:
        pass


def describe_all(names: Iterable[str] | None = None, cache: Path | None = None, imported: bool = False) -> Iterator[Description]:
    """Every registered framework (or `names`), in registration order: read without importing the framework where that
    is certain to say the same (described_without_import; never with `imported`), else from `cache` where it holds a
    description for the same adapter, packages and devices (description_key), else in a fresh process of its own (as
    many at once as there are cores: most of the time is each framework's import)."""
    names = list(registered() if names is None else names)
    found = {n: d for n in names if not imported and (d := described_without_import(n)) is not None}
    keys = {n: description_key(n) if cache else None for n in names if n not in found}
    found |= {n: d for n in keys if cache and (d := _cached(cache, n, keys[n])) is not None}
    missing = [n for n in names if n not in found]
    if not missing:
        yield from (found[n] for n in names)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with mp.get_context("spawn").Pool(max(1, min(len(missing), cores)), initializer=_quiet, maxtasksperchild=1) as pool:
        fresh = pool.imap(describe, missing)
        for n in names:  # in order: a kept description where there is one, else the next fresh one
            if n not in found:
                found[n] = next(fresh)
                if cache:
                    _keep(cache, keys[n], found[n])
            yield found[n]
