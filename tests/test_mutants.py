"""Tests that can fail: the bundled corpus must kill each of the suite's own mutants (tests/mutant_adapter.py:
realistic kernel bugs written on PyTorch's public functions), each judged through `conformance.testing.check` exactly
as a kernel engineer's own function is: f(x[, labels]) with the class axis and the options as keywords, beside
torch's own function for the op. A mutant is killed when some record of it fails where torch's function passes.
The mutation score is printed at the end of the run.
"""

from __future__ import annotations

import dataclasses
import os

import mutant_adapter
import pytest

from conformance.corpus.cases import Options
from conformance.run.check import _compared
from conformance.testing import check

pytest.importorskip("torch", reason="the mutants are built on PyTorch's public functions")


@dataclasses.dataclass(frozen=True)
class _Call:
    """What a mutant's forward reads of the harness's inputs: the class axis and the options."""

    axis: int
    options: Options


def as_user_function(forward):
    """A mutant's forward as `conformance check` takes a user's function: f(x[, labels]) with the class axis and the
    cross-entropy options as keywords (the check reads them from the signature; it never emulates one)."""

    def fn(x, labels=None, dim=-1, reduction="none", label_smoothing=0.0, ignore_index=None, weight=None):
        weights = None if weight is None else tuple(float(w) for w in weight.tolist())
        return forward(x, labels, _Call(dim, Options(reduction, label_smoothing, ignore_index, weights)))
    return fn


@pytest.mark.parametrize("mutant", sorted(mutant_adapter.MUTANTS))
def test_the_corpus_kills_the_mutant(mutant):
    op, forward = mutant_adapter.MUTANTS[mutant]
    mutant_adapter.base.load(None)  # the mutants call torch through the torch adapter's module
    result = check(as_user_function(forward), op=op, framework="torch", modes=["eager"])
    killers = result.comparison()["yours fails where the framework's passes"]
    assert killers, f"mutant {mutant} survives the bundled corpus: no case of {op} tells it from torch's own function"


def test_a_shift_by_the_batchs_max_is_killed_by_rows_of_opposite_sign():
    """The case made for it: a row at +1000 above one at -1000 (one shift for the batch underflows the second row)."""
    mutant_adapter.base.load(None)
    result = check(as_user_function(mutant_adapter.batch_max_shift), op="softmax", framework="torch", modes=["eager"])
    # the sibling test's criterion (CheckResult.comparison), per record: which cases tell the mutant from torch's own
    killers = {mine.case for mine, theirs in result.pairs if _compared(mine, theirs) == "yours fails where the framework's passes"}
    assert "extreme-logits/huge-rows-of-opposite-sign" in killers, killers


def test_there_are_at_least_15_mutants():
    assert len(mutant_adapter.MUTANTS) >= 15
    assert os.environ.get("CONFORMANCE_MUTANT") is None  # no mutant leaks into the rest of the tests
