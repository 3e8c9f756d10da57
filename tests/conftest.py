"""Test options: the library under test is chosen by one setting, --frameworks (or CONFORMANCE_FRAMEWORKS)."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--frameworks", default=os.environ.get("CONFORMANCE_FRAMEWORKS", "all"),
                     help="comma-separated frameworks whose corpus tests run (default: every installed one)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer than a few seconds")
    from conformance.adapters import registered

    wanted = config.getoption("--frameworks", default="all")
    unknown = [n for n in _names(wanted) if n not in registered()]
    if unknown:  # a typo would otherwise skip every corpus test and pass
        pytest.exit(f"--frameworks: unknown framework {unknown[0]!r}; known: all, {', '.join(registered())}", returncode=2)


def _names(wanted: str) -> list[str]:
    return [] if wanted == "all" else [n.strip() for n in wanted.split(",") if n.strip()]


def _installed(pytestconfig) -> list[str]:
    from conformance.adapters import missing_packages, registered

    names = _names(pytestconfig.getoption("--frameworks")) or list(registered())
    return [n for n in names if n in registered() and not missing_packages(n)]


@pytest.fixture(scope="session")
def selected_frameworks(pytestconfig) -> list[str]:
    """The selected frameworks that can be loaded in this (the pytest) process."""
    from conformance.adapters import declared

    return [n for n in _installed(pytestconfig) if not declared(n, "OWN_PROCESS", False)]


@pytest.fixture(scope="session")
def own_process_frameworks(pytestconfig) -> list[str]:
    """Selected frameworks that need a process of their own (Keras on a backend other than the one TensorFlow's
    adapter fixes): their tests run `conformance run` in a subprocess."""
    from conformance.adapters import declared

    return [n for n in _installed(pytestconfig) if declared(n, "OWN_PROCESS", False)]


@pytest.fixture(scope="session", autouse=True)
def _private_compile_cache(tmp_path_factory):
    """`conformance run` keeps compiled programs in ~/.cache by default; the tests keep theirs to themselves."""
    old = os.environ.get("CONFORMANCE_CACHE_DIR")
    os.environ["CONFORMANCE_CACHE_DIR"] = str(tmp_path_factory.mktemp("compile-cache"))
    yield
    if old is None:
        os.environ.pop("CONFORMANCE_CACHE_DIR", None)
    else:
        os.environ["CONFORMANCE_CACHE_DIR"] = old


def pytest_terminal_summary(terminalreporter):
    """The mutation score of tests/test_mutants.py, when it ran."""
    import sys

    module = sys.modules.get("test_mutants") or sys.modules.get("tests.test_mutants")
    score = getattr(module, "SCORE", None)
    if score:
        killed = sum(score.values())
        survivors = ", ".join(sorted(m for m, k in score.items() if not k)) or "none"
        terminalreporter.write_line(f"mutation score: {killed}/{len(score)} of the suite's own mutants killed by the bundled corpus "
                                    f"(survivors: {survivors})")
