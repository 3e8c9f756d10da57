"""The case loader: valid files load, every broken field is named in one line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance.corpus import bundled
from conformance.corpus.cases import CaseFileError, load, load_file
from conformance.corpus.inputs import build

CORPUS = bundled.cases_dir()

GOOD = """
suite: demo
defaults: {dtypes: [float32, float64]}
cases:
  - id: one
    description: A plain case.
    ops: [softmax, log_softmax]
    logits: [[0.0, 1.0, "inf"]]
  - id: two
    description: A sparse case with a generator.
    ops: [sparse_softmax_cross_entropy]
    logits: {generate: normal, shape: [4, 3], seed: 1}
    sparse_labels: [0, 1, 2, 0]
    options: {reduction: mean, ignore_index: 0}
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_bundled_corpus_loads():
    cases = load([CORPUS])
    ids = [c.full_id for c in cases]
    assert len(ids) == len(set(ids))
    assert all(c.description for c in cases)


def test_good_file_defaults_and_generators(tmp_path):
    cases = load_file(write(tmp_path, GOOD))
    assert [c.id for c in cases] == ["one", "two"]
    assert cases[0].dtypes == ("float32", "float64")
    assert np.isinf(cases[0].raw_logits()[0, 2])
    # seeded: the same generator gives the same numbers twice
    assert np.array_equal(cases[1].raw_logits(), load_file(write(tmp_path, GOOD, "d.yaml"))[1].raw_logits())
    inp = build(cases[1], "sparse_softmax_cross_entropy", "float32")
    assert inp.logits.dtype == np.float32 and inp.cotangent.shape == ()


@pytest.mark.parametrize("case_text, field", [
    ("  - id: x\n    ops: [softmax]\n    logits: [1.0]\n", "description"),
    ("  - id: x\n    description: d\n    ops: [softmaxx]\n    logits: [1.0]\n", "ops"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    dtypes: [float8]\n    logits: [1.0]\n", "dtypes"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    logits: [[1.0], [1.0, 2.0]]\n", "logits"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    logits: [1.0, infinity]\n", "logits"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    logits: {generate: normal, shape: [3]}\n", "logits"),
    ("  - id: x\n    description: d\n    ops: [softmax_cross_entropy]\n    logits: [[1.0, 2.0]]\n    labels: [[1.0]]\n", "labels"),
    ("  - id: x\n    description: d\n    ops: [sparse_softmax_cross_entropy]\n    logits: [[1.0, 2.0]]\n    sparse_labels: [0, 1]\n",
     "sparse_labels"),
    ("  - id: x\n    description: d\n    ops: [sparse_softmax_cross_entropy]\n    logits: [[1.0, 2.0]]\n    sparse_labels: [0]\n"
     "    options: {reduction: average}\n", "options.reduction"),
    ("  - id: x\n    description: d\n    ops: [sparse_softmax_cross_entropy]\n    logits: [[1.0, 2.0]]\n    sparse_labels: [0]\n"
     "    options: {weight: [1.0]}\n", "options.weight"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    logits: [1.0]\n    axis: 3\n", "axis"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    logits: [1.0]\n    colour: red\n", "colour"),
    ("  - id: x\n    description: d\n    ops: [softmax]\n    logits: [1.0]\n    expect: {valu: [1.0]}\n", "expect.valu"),
])
def test_broken_field_is_named(tmp_path, case_text, field):
    path = write(tmp_path, "suite: s\ncases:\n" + case_text)
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    message = str(info.value)
    assert str(path) in message and "case 'x'" in message and f"field '{field}'" in message
    assert "\n" not in message


def test_not_yaml_and_duplicates(tmp_path):
    with pytest.raises(CaseFileError, match="not valid YAML at line"):
        load_file(write(tmp_path, "suite: s\ncases: [\n"))
    dup = "suite: s\ncases:\n" + "  - {id: a, description: d, ops: [softmax], logits: [1.0]}\n" * 2
    with pytest.raises(CaseFileError, match="duplicate id"):
        load_file(write(tmp_path, dup))
    one = "suite: s\ncases:\n  - {id: a, description: d, ops: [softmax], logits: [1.0]}\n"
    write(tmp_path, one, "a.yaml")
    write(tmp_path, one, "b.yaml")
    with pytest.raises(CaseFileError, match="already used"):
        load([tmp_path])
