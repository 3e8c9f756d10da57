"""Options and per-process setup of the benchmark suite: one framework per pytest process, pinned to the same
cores and thread count as every other framework's process, its adapter loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.adapters import load_adapter
from conformance.speed import measure as speed


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance bench")
    group.addoption("--bench-framework", required=True)
    group.addoption("--bench-profile", default="quick", choices=("quick", "full"))
    group.addoption("--bench-dtypes", default=None, help="comma-separated (default: the profile's)")
    group.addoption("--bench-modes", default="eager,compiled")
    group.addoption("--bench-devices", default="cpu,gpu")
    group.addoption("--bench-shapes", default=None, help="comma-separated NxC (default: the profile's)")
    group.addoption("--bench-threads", type=int, default=os.cpu_count() or 1)
    group.addoption("--bench-warmup-seconds", type=float, default=0.1)
    group.addoption("--bench-ids", default=None, help="a file of benchmark names, one per line: run only these (gate --confirm)")


def _csv(text):
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _pin(threads: int) -> list[int]:
    """Pin this process to `threads` cores: some frameworks size their pools from the cores they see, so pinning is the one
    control that treats every framework alike."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    return cores


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--bench-threads")
    cores = _pin(threads)
    adapter = load_adapter(config.getoption("--bench-framework"))
    adapter.set_threads(threads)  # before the framework runs its first op (some frameworks fix their pools at the first op)
    requested = _csv(config.getoption("--bench-devices"))
    found = adapter.devices()
    config._bench = {
        "adapter": adapter, "threads": threads, "cores": cores, "profile": config.getoption("--bench-profile"),
        "devices": [d for d in requested if d in found],
        "missing_devices": [d for d in requested if d not in found],
        "roofs": {}, "warmup_seconds": config.getoption("--bench-warmup-seconds"),
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--bench-ids: exactly the named benchmarks (names hold '|' and '[', which -k expressions cannot match)."""
    path = config.getoption("--bench-ids")
    if not path:
        return
    wanted = set(Path(path).read_text(encoding="utf-8").split("\n")) - {""}
    keep = [item for item in items if item.name in wanted]
    config.hook.pytest_deselected(items=[item for item in items if item.name not in wanted])
    items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """Said even under -q: `conformance bench` relays these lines."""
    b = config._bench
    for d in b["missing_devices"]:
        terminalreporter.write_line(f"conformance bench: {d} requested but not visible to {b['adapter'].NAME}: its benchmarks are skipped")


def pytest_report_header(config: pytest.Config) -> list[str]:
    b = config._bench
    lines = [f"conformance bench: {b['adapter'].NAME} {b['adapter'].version()}, {b['threads']} threads on cores {b['cores']}"]
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config, b = metafunc.config, metafunc.config._bench
    if "spec" in metafunc.fixturenames:
        profile = b["profile"]
        dtypes = _csv(config.getoption("--bench-dtypes") or ",".join(speed.DTYPES[profile]))
        shapes = config.getoption("--bench-shapes")
        shapes = tuple(tuple(int(n) for n in s.split("x")) for s in _csv(shapes)) if shapes else None
        specs = speed.specs(b["adapter"].NAME, b["adapter"].implementations(), profile, dtypes,
                            _csv(config.getoption("--bench-modes")), b["devices"], shapes)
        metafunc.parametrize("spec", specs, ids=[s.id for s in specs])
    if "overhead" in metafunc.fixturenames:
        cases = speed.overhead_specs(b["adapter"].implementations(), _csv(config.getoption("--bench-modes")), b["devices"])
        metafunc.parametrize("overhead", cases, ids=[f"overhead|{i}|{p}|{m}|{speed.shape_text(s)}|{d}" for i, p, m, s, d in cases])


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> dict:
    return pytestconfig._bench


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    b = config._bench
    adapter = b["adapter"]
    machine_info["conformance"] = {
        "framework": adapter.NAME, "version": adapter.version(), "flags": adapter.flags(), "threads": b["threads"],
        "max_time": config.getoption("benchmark_max_time"), "cores": b["cores"], "profile": b["profile"], "devices": b["devices"],
        "missing_devices": b["missing_devices"],
        "roofs": {d: r.describe() if r else "unavailable" for d, r in b["roofs"].items()},
    }
