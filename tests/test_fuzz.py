"""The fuzzer: a bounded run finds nothing beyond the registry, or writes a loadable shrunk case."""

from __future__ import annotations

import pytest
import yaml

from conformance.cases import load
from conformance.fuzz import drawn_case, fuzz, write_case


def test_bounded_fuzz_run(tmp_path, selected_frameworks):
    frameworks = tuple(f for f in selected_frameworks if f in ("numpy", "torch"))
    if not frameworks:
        pytest.skip("needs numpy or torch")
    rep = fuzz(frameworks, ("log_softmax", "sparse_softmax_cross_entropy"), ("float32",), max_examples=15, seconds=60,
               out=tmp_path, seed=1)
    assert rep.examples > 0 and rep.covered
    if rep.found is not None:  # a real disagreement: the shrunk case must load as a corpus file
        assert load([rep.case_file])


def test_written_case_is_a_valid_corpus_file(tmp_path):
    case = drawn_case(("softmax_cross_entropy",), ("float64",)).example()
    record = {"framework": "x", "impl": "y", "quantity": "value", "status": "fail", "detail": "at [0]: got 1, oracle 2"}
    path = write_case(case, record, tmp_path, seed=3)
    loaded = load([path])
    assert loaded[0].suite == "fuzz-found-3" and "Found by conformance fuzz" in loaded[0].description
    assert yaml.safe_load(path.read_text())["cases"][0]["source"] == "conformance fuzz --seed 3"
