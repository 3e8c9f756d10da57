"""The corpus as pytest items, in the wheel (entry point `pytest11`): `pytest --conformance` in a user's own project
collects one item per (framework, case, op, dtype, mode), judged against the oracle with the registry applied, so
`-k`, `-x`, pytest-xdist's `-n` and `--junitxml` work as for any test. One setting picks the frameworks, as in
array-api-tests: `--conformance-frameworks a,b` or $CONFORMANCE_FRAMEWORKS (default: every installed one).
`--conformance-results PATH` writes the records to a results.json that `conformance report` and `gate` read.

A failing item lists its failing records, each with the command that re-runs it. Frameworks that cannot share a
process with another (those that declare OWN_PROCESS) are left out unless named.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import pytest

FRAMEWORKS_ENV = "CONFORMANCE_FRAMEWORKS"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "softmax-conformance: the corpus as test items")
    group.addoption("--conformance", action="store_true", help="collect the case corpus as test items")
    group.addoption("--conformance-frameworks", default=None, help=f"comma-separated frameworks (default ${FRAMEWORKS_ENV}, else every installed one)")
    group.addoption("--conformance-cases", action="append", default=None, metavar="PATH", help="case files or folders (default: the bundled corpus)")
    group.addoption("--conformance-modes", default="eager", help="comma-separated modes (default eager)")
    group.addoption("--conformance-dtypes", default=None, help="comma-separated dtypes (default: each case's own)")
    group.addoption("--conformance-results", default=None, metavar="PATH", help="write every record to this results.json")


class CorpusItem(pytest.Item):
    """One (framework, case, op, dtype, mode): every implementation and quantity of it."""

    def __init__(self, *, framework: str, case, op: str, dtype: str, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.framework, self.case, self.op, self.dtype, self.mode = framework, case, op, dtype, mode
        self.add_marker(pytest.mark.conformance)

    def runtest(self) -> None:
        from ..adapters import package_versions
        from ..corpus import conditions
        from ..judge import known
        from ..model.record import message, unexplained
        from ..run.repro import command
        from ..run.runner import Selection, judge_case

        adapter = _adapter(self.framework)
        sel = Selection((self.framework,), (self.dtype,), ("cpu",), (self.mode,), ops=(self.op,))
        records = judge_case(adapter, self.case, sel)
        records, _ = known.apply(records, _entries(tuple(self.config.getoption("conformance_cases") or ())), {self.framework: package_versions(adapter)},
                    {self.case.full_id: conditions.of(self.case)})
        _keep(self.config, records)
        bad = [r for r in records if unexplained(r) and not r.naive]
        if bad:
            raise CorpusFailure("\n".join(f"{r.status}: {r.impl} {r.quantity}: {message(r)}\n  re-run: {command(r)}" for r in bad))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: str | None = None) -> str:
        if isinstance(excinfo.value, CorpusFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.framework} {self.case.full_id} {self.op} {self.dtype} {self.mode}"


class CorpusFailure(Exception):
    """A corpus item's unexplained records, said with their re-run commands."""


@cache
def _adapter(name: str):  # noqa: ANN202 - an adapter module
    from ..adapters import load_adapter

    return load_adapter(name)


@cache
def _entries(case_paths: tuple[str, ...]):  # noqa: ANN202 - registry entries
    from ..adapters import registered
    from ..corpus import bundled
    from ..corpus.cases import load
    from ..judge import known

    ids = [c.full_id for c in load([bundled.cases_dir(), *map(Path, case_paths)])]
    return known.load(None, registered(), ids)


def _frameworks(config: pytest.Config) -> list[str]:
    from ..adapters import declared, missing_packages, registered

    chosen = config.getoption("conformance_frameworks") or os.environ.get(FRAMEWORKS_ENV)
    names = [n.strip() for n in chosen.split(",") if n.strip()] if chosen else None
    known_names = registered()
    if names:
        unknown = [n for n in names if n not in known_names]
        if unknown:
            raise pytest.UsageError(f"--conformance-frameworks: unknown framework {unknown[0]!r}; known: {', '.join(known_names)}")
        return names
    installed = [n for n in known_names if not missing_packages(n) and not declared(n, "GPU_ONLY")]
    return [n for n in installed if not declared(n, "OWN_PROCESS")]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("conformance"):
        return
    from ..corpus import bundled
    from ..corpus.cases import load
    from ..model.names import DTYPES, MODES

    modes = [m for m in config.getoption("conformance_modes").split(",") if m]
    dtypes = config.getoption("conformance_dtypes")
    dtypes = [d for d in dtypes.split(",") if d] if dtypes else None
    for value, allowed, what in ((modes, MODES, "mode"), (dtypes or [], DTYPES, "dtype")):
        if any(v not in allowed for v in value):
            raise pytest.UsageError(f"--conformance-{what}s: one of {', '.join(allowed)}")
    paths = [Path(p) for p in (config.getoption("conformance_cases") or [])] or [bundled.cases_dir()]
    cases = load(paths)
    for framework in _frameworks(config):
        for case in cases:
            for op in case.ops:
                for dtype in case.dtypes:
                    if dtypes and dtype not in dtypes:
                        continue
                    for mode in modes:
                        name = f"{framework}::{case.full_id}::{op}::{dtype}::{mode}"
                        items.append(CorpusItem.from_parent(session, name=name, framework=framework, case=case, op=op, dtype=dtype, mode=mode))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: an item of the case corpus (softmax-conformance)")
    config._conformance_records = []  # noqa: SLF001 - this plugin's own store on the config


def _keep(config: pytest.Config, records: list[dict]) -> None:
    if config.getoption("conformance_results"):
        config._conformance_records.extend(records)  # noqa: SLF001


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the records: a worker of pytest-xdist writes its share beside the results file, the controller (or a
    run without workers) merges the shares into results.json."""
    config = session.config
    target = config.getoption("conformance_results")
    if not target or not config.getoption("conformance"):
        return
    from ..run import results as results_io

    target = Path(target)
    parts = target.with_name(target.name + ".parts")
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        parts.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parts, suffix=".json")
        os.close(fd)
        results_io.write({"records": config._conformance_records}, Path(tmp))  # noqa: SLF001
        return
    records = list(config._conformance_records)  # noqa: SLF001
    if parts.is_dir():
        for part in sorted(parts.glob("*.json")):
            records.extend(results_io.read_part(part))
            part.unlink()
        parts.rmdir()
    complete = exitstatus in (0, 1) and not session.shouldstop
    doc = results_io.document(records, {}, {"complete": complete, "stale_known": [], "known_divergences": [],
                                            "selection": {"frameworks": sorted({r.framework for r in records})}})
    results_io.write(doc, target)
