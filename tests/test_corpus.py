"""The corpus as tests: every (case, op, dtype, framework, implementation) of the bundled corpus runs through its
adapter in eager mode and is judged against the oracle, with known divergences applied. Choose the frameworks with
--frameworks (or CONFORMANCE_FRAMEWORKS); absent ones skip.

The whole corpus is marked `corpus` and left out of the default run (`pytest -m corpus` runs it): `.ci/run` runs
the same corpus once, eager and compiled, with `conformance run`, which exits 1 on any unexplained record, and
gates it. The default run judges the published values (every cross-entropy op and option there) through every
framework, in this process and, for the Keras backends, in a `conformance run` of their own.

A failure message carries a copy-paste repro: the case id and the exact command that re-runs it.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache

import pytest

from conformance.adapters import load_adapter, package_versions, registered
from conformance.corpus import bundled
from conformance.corpus.cases import load
from conformance.judge import known
from conformance.model.record import message as reason
from conformance.run.api import judge_case
from conformance.run.repro import command
from conformance.run.runner import Selection

CORPUS = bundled.cases_dir()
CASES = load([CORPUS])
ENTRIES = known.load(case_ids=[c.full_id for c in CASES], frameworks=registered())


@cache
def adapter(name):
    return load_adapter(name)


SMOKE = "published-values"


def _params(smoke: bool):
    for case in CASES:
        if (case.suite == SMOKE) == smoke:
            for framework in registered():
                marks = () if smoke else (pytest.mark.corpus,)
                yield pytest.param(case.full_id, framework, id=f"{framework}-{case.full_id}", marks=marks)


@pytest.mark.parametrize("case_id, framework", [*_params(True), *_params(False)])
def test_case(case_id, framework, selected_frameworks, own_process_frameworks):
    if framework in own_process_frameworks:
        pytest.skip(f"{framework} needs a process of its own: test_own_process_frameworks_pass_the_corpus runs it")
    if framework not in selected_frameworks:
        pytest.skip(f"{framework} not selected or not installed")
    case = next(c for c in CASES if c.full_id == case_id)
    fw = adapter(framework)
    records = judge_case(fw, case, Selection((framework,), case.dtypes, ("cpu",), ("eager",)))
    records, _ = known.apply(records, ENTRIES, {framework: package_versions(fw)})
    bad = [r for r in records if r.status.unexplained]
    assert records, "no record produced"
    assert not bad, "\n".join(
        f"{r['status']}: {r['impl']} {r['op']} {r['quantity']} {r['dtype']}: "
        f"{reason(r)}\n"
        f"  repro: {command(r)}"
        for r in bad)


@pytest.mark.parametrize("scope", [pytest.param(("--case", f"{SMOKE}/*"), id=SMOKE), pytest.param((), id="corpus", marks=pytest.mark.corpus)])
def test_own_process_frameworks_pass_the_corpus(scope, own_process_frameworks, tmp_path):
    """The corpus (or its published values), eager, for each framework that cannot share this process (keras-jax): a
    `conformance run` in a subprocess, which must end with every record passing or explained by the registry (exit 0)."""
    if not own_process_frameworks:
        pytest.skip("no such framework selected or installed")
    for name in own_process_frameworks:
        res = subprocess.run([sys.executable, "-m", "conformance.app.cli", "run", "--frameworks", name, "--modes", "eager", *scope,
                              "--out", str(tmp_path / name)], capture_output=True, text=True, cwd=tmp_path, timeout=1200)
        assert res.returncode == 0, f"{name}: exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-1500:]}"
