"""Test options: the library under test is chosen by one setting, --frameworks (or CONFORMANCE_FRAMEWORKS)."""

from __future__ import annotations

import importlib.util
import os

import pytest

# TensorFlow and Triton (torch.compile's, in the `fused` extra) each register LLVM's command-line options; once
# TensorFlow has, Triton's import aborts the process ("Option 'bitcode-mdindex-threshold' registered more than
# once"), while Triton first and TensorFlow after is fine. The tests load both frameworks in one process (a pytest
# worker runs whichever tests it is dealt), so Triton goes first; `conformance run` gives each framework its own worker.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401


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

    return [n for n in _installed(pytestconfig) if not declared(n, "OWN_PROCESS")]


@pytest.fixture(scope="session")
def own_process_frameworks(pytestconfig) -> list[str]:
    """Selected frameworks that need a process of their own (Keras on a backend other than the one TensorFlow's
    adapter fixes): their tests run `conformance run` in a subprocess."""
    from conformance.adapters import declared

    return [n for n in _installed(pytestconfig) if declared(n, "OWN_PROCESS")]


@pytest.fixture(scope="session", autouse=True)
def _private_compile_cache(tmp_path_factory):
    """`conformance run` keeps compiled programs in ~/.cache by default; the tests keep theirs to themselves."""
    saved = {k: os.environ.get(k) for k in ("CONFORMANCE_CACHE_DIR", "CONFORMANCE_TORCH_HEADERS")}
    os.environ["CONFORMANCE_CACHE_DIR"] = str(tmp_path_factory.mktemp("compile-cache"))
    # Inductor's precompiled headers (a 150 MB g++ build) once for the session, not once per test that makes a cache
    os.environ["CONFORMANCE_TORCH_HEADERS"] = str(tmp_path_factory.mktemp("torch-headers"))
    yield
    for key, old in saved.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def pytest_terminal_summary(terminalreporter):
    """The mutation score of tests/test_mutants.py, from the test reports (so that it adds up under pytest-xdist too)."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
               if getattr(r, "when", "") == "call" and "test_the_corpus_kills_the_mutant[" in getattr(r, "nodeid", "")]
    if reports:
        survivors = ", ".join(sorted(r.nodeid.split("[", 1)[1].rstrip("]") for r in reports if r.failed)) or "none"
        terminalreporter.write_line(f"mutation score: {sum(r.passed for r in reports)}/{len(reports)} of the suite's own mutants killed by "
                                    f"the bundled corpus (survivors: {survivors})")
