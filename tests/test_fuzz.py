"""The fuzzer: a bounded run finds nothing beyond the registry, finds a planted bug, and writes a case that replays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from results_factory import record

from conformance.app.cli import main
from conformance.app.fuzz import drawn_case, fuzz, write_case
from conformance.corpus.cases import load

ROOT = Path(__file__).resolve().parent.parent


def test_bounded_fuzz_run(tmp_path, selected_frameworks):
    frameworks = tuple(f for f in selected_frameworks if f in ("numpy", "torch"))
    if not frameworks:
        pytest.skip("needs numpy or torch")
    rep = fuzz(frameworks, ("log_softmax", "sparse_softmax_cross_entropy"), ("float32",), max_examples=15, seconds=60,
               out=tmp_path, seed=1)
    assert rep.examples > 0 and rep.covered
    if rep.found is not None:  # a real disagreement: the shrunk case must load as a corpus file
        assert load([rep.case_file])


def test_a_planted_bug_is_found_and_the_written_case_replays_it(tmp_path, monkeypatch):
    """A softmax without the max shift, under the fused function's name (tests/fault_adapter.py): the fuzzer must find
    it, shrink it, and write a case on which `conformance run` fails the same implementation."""
    monkeypatch.setenv("CONFORMANCE_ADAPTERS", "fault=fault_adapter")
    monkeypatch.setenv("CONFORMANCE_FAULT", "unshifted")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    rep = fuzz(("fault",), ("softmax",), ("float32",), max_examples=300, seconds=120, out=tmp_path / "found", seed=0)
    assert rep.found is not None, f"the planted bug survived {rep.examples} examples"
    assert rep.found["framework"] == "fault" and rep.found["impl"] == "scipy.special.softmax"
    assert load([rep.case_file])
    code = main(["run", "--cases", str(rep.case_file), "--frameworks", "fault", "--modes", "eager", "--jobs", "1", "--out", str(tmp_path / "replay")])
    assert code == 1


def test_written_case_is_a_valid_corpus_file(tmp_path):
    case = drawn_case(("softmax_cross_entropy",), ("float64",)).example()
    found = record(framework="x", impl="y", quantity="value", status="fail", detail="at [0]: got 1, oracle 2")
    path = write_case(case, found, tmp_path, seed=3)
    loaded = load([path])
    assert loaded[0].suite == "fuzz-found-3" and "Found by conformance fuzz" in loaded[0].description
    assert yaml.safe_load(path.read_text())["cases"][0]["source"] == "conformance fuzz --seed 3"


def test_draws_reach_the_edges():
    """Infinities, NaN, subnormals and huge magnitudes are drawn; an input with no answer is judged as invalid."""
    import math

    from hypothesis import find, settings
    from hypothesis import strategies as st

    from conformance.app.fuzz import _has_answer, _value

    value = st.composite(lambda draw: _value(draw, 10.0))()
    quiet = settings(max_examples=3000, database=None)
    for wanted in (math.isnan, lambda v: v == math.inf, lambda v: v == -math.inf, lambda v: 0 < abs(v) < 1e-38, lambda v: abs(v) >= 1e30):
        find(value, wanted, settings=quiet)
    assert _has_answer([[0.0, float("-inf")]]) and not _has_answer([[float("-inf"), float("-inf")]])
    assert not _has_answer([[float("nan"), 1.0]]) and not _has_answer([[float("inf"), 1.0]])
