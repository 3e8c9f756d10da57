"""Tests that can fail: the bundled corpus must kill each of the suite's own mutants (tests/mutant_adapter.py:
realistic kernel bugs behind PyTorch's public functions, plugged in as framework "mutant" through
$CONFORMANCE_ADAPTERS). A mutant is killed when some record of the corpus fails or errors with the bug and not
without it. The mutation score is printed at the end of the run.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import mutant_adapter
import pytest

from conformance import bundled
from conformance.adapters import load_adapter
from conformance.api import judge_case
from conformance.cases import load
from conformance.runner import Selection

pytest.importorskip("torch", reason="the mutants are built on PyTorch's public functions")
ROOT = Path(__file__).resolve().parent.parent
CASES = load([bundled.cases_dir()])


def _records(op: str, monkeypatch) -> dict[tuple, str]:
    monkeypatch.setenv("CONFORMANCE_ADAPTERS", "mutant=mutant_adapter")
    adapter = load_adapter("mutant")
    out = {}
    for case in CASES:
        if op not in case.ops:
            continue
        sel = Selection(("mutant",), case.dtypes, ("cpu",), ("eager",), ops=(op,))
        for r in judge_case(adapter, case, sel):
            out[(r["case"], r["impl"], r["quantity"], r["dtype"])] = r["status"]
    return out


@cache
def _clean(op: str) -> dict[tuple, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CONFORMANCE_MUTANT", raising=False)
        return _records(op, mp)


@pytest.mark.parametrize("mutant", sorted(mutant_adapter.MUTANTS))
def test_the_corpus_kills_the_mutant(mutant, monkeypatch):
    op = mutant_adapter.MUTANTS[mutant][0]
    clean = _clean(op)
    monkeypatch.setenv("CONFORMANCE_MUTANT", mutant)
    mutated = _records(op, monkeypatch)
    killers = sorted(k for k, status in mutated.items() if status in ("fail", "error") and clean.get(k) not in ("fail", "error"))
    assert killers, f"mutant {mutant} survives the bundled corpus: no case of {op} tells it from the real kernel"


def test_there_are_at_least_15_mutants():
    assert len(mutant_adapter.MUTANTS) >= 15
    assert os.environ.get("CONFORMANCE_MUTANT") is None  # no mutant leaks into the rest of the tests
