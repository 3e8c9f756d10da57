"""The corpus as tests: every (case, op, dtype, framework, implementation) of the bundled cases/ runs
through its adapter in eager mode and is judged against the oracle, with known divergences applied.
Choose the frameworks with --frameworks (or CONFORMANCE_FRAMEWORKS); absent ones skip.

A failure message carries a copy-paste repro: the case id and the exact command that re-runs it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from conformance import known
from conformance.adapters import load_adapter, registered
from conformance.cases import load
from conformance.runner import case_inputs, records_for

CORPUS = Path(__file__).resolve().parent.parent / "cases"
CASES = load([CORPUS])
ENTRIES = known.load()


@cache
def adapter(name):
    return load_adapter(name)


def _params():
    for case in CASES:
        for framework in registered():
            yield pytest.param(case.full_id, framework, id=f"{framework}-{case.full_id}")


@pytest.mark.corpus
@pytest.mark.parametrize("case_id, framework", list(_params()))
def test_case(case_id, framework, selected_frameworks):
    if framework not in selected_frameworks:
        pytest.skip(f"{framework} not selected or not installed")
    case = next(c for c in CASES if c.full_id == case_id)
    fw = adapter(framework)
    records = []
    for c, inputs, refs in case_inputs([case], case.dtypes):
        records.extend(records_for(fw, c, inputs, refs, modes=("eager",), devices=("cpu",)))
    known.apply(records, ENTRIES, {framework: fw.version()})
    bad = [r for r in records if r["status"] in ("fail", "error")]
    assert records, "no record produced"
    assert not bad, "\n".join(
        f"{r['status']}: {r['impl']} {r['op']} {r['quantity']} {r['dtype']}: "
        f"{r.get('detail') or (r.get('error') or {}).get('message')}\n"
        f"  repro: conformance run --cases {case.path} --frameworks {framework} --modes eager --dtypes {r['dtype']}"
        for r in bad)
