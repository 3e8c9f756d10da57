"""A dynamic-shape compile reads the sizes of the call that compiles it as hints (adapters/shape_hints.py): a record
must be the same whichever case compiled its graph first, and in whichever run filled the compile cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from results_factory import load as load_results

from conformance.adapters.shape_hints import CANONICAL_SIZES, canonical, shapes
from conformance.app.cli import main
from conformance.corpus.cases import Options
from conformance.corpus.inputs import Inputs


def _inputs(shape: tuple[int, ...], sparse: list[int] | None = None, options: Options = Options()) -> Inputs:
    logits = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    rows = shape[:-1]
    return Inputs(op="sparse_softmax_cross_entropy" if sparse is not None else "softmax", dtype="float32", logits=logits,
                  labels=None, sparse_labels=None if sparse is None else np.asarray(sparse, np.int64), axis=len(shape) - 1,
                  options=options, cotangent=np.ones(rows if sparse is not None else shape, np.float32),
                  direction=np.ones(shape, np.float32))


def test_one_pattern_gets_one_set_of_shapes_whatever_its_sizes():
    a, b = canonical(_inputs((1000, 256))), canonical(_inputs((3, 4096)))
    assert shapes(a) == shapes(b)
    assert a.logits.shape == CANONICAL_SIZES[:2]


def test_sizes_zero_and_one_and_shared_sizes_are_the_pattern():
    assert canonical(_inputs((1, 256))).logits.shape == (1, CANONICAL_SIZES[0])
    assert canonical(_inputs((0, 9))).logits.shape == (0, CANONICAL_SIZES[0])
    square = canonical(_inputs((6, 6))).logits.shape
    assert square[0] == square[1]  # one symbol for both: another pattern than (5, 7)
    assert canonical(_inputs((6, 6))).logits.shape != canonical(_inputs((6, 8))).logits.shape


def test_a_graph_specialised_on_the_example_sizes_keeps_them_and_moves_the_classes():
    """Impl.fixes_example_sizes: the warm-up's graph must be the one that serves the case, so the sizes the compiler
    makes numbers stay the case's own; the class count still moves, so that each case of that batch size gets its
    hints from the same canonical call."""
    a, b = canonical(_inputs((2, 3, 40)), keep_example_sizes=True), canonical(_inputs((2, 3, 4096)), keep_example_sizes=True)
    assert a.logits.shape == b.logits.shape == (2, 3, CANONICAL_SIZES[0])
    moved = canonical(dataclasses.replace(_inputs((6, 40)), axis=0), keep_example_sizes=True)
    assert moved.logits.shape == (CANONICAL_SIZES[0], 40)


def test_class_indices_keep_their_kind():
    got = canonical(_inputs((4, 300), sparse=[299, 300, -1, -100], options=Options(ignore_index=-100)))
    classes = got.logits.shape[1]
    assert list(got.sparse_labels[:4]) == [299 % classes, 300, -1, -100]  # in range, past the classes, negative, ignored
    small = canonical(_inputs((2, 3), sparse=[0, 3]))  # one past 3 classes must stay past the canonical classes too
    assert 0 <= small.sparse_labels[0] < small.logits.shape[1] <= small.sparse_labels[1]


def test_class_weights_fix_the_class_count():
    weighted = canonical(_inputs((4, 3), sparse=[0, 1, 2, 0], options=Options(weight=(1.0, 2.0, 3.0))))
    assert weighted.logits.shape == (CANONICAL_SIZES[0], 3)


def test_a_compiled_record_does_not_depend_on_the_case_before_it(tmp_path):
    """float16 log(softmax(x)) of [[12, 0, -12]] under torch.compile: after a [1, 256] slice of another case compiled
    the graph it answered [-2, 1, nan], alone [-2, 1, 1] (each with an empty compile cache)."""
    pytest.importorskip("torch")
    answers = []
    for run, cases in enumerate((["low-precision/float16-exp-overflow"],
                                 ["batch-invariance/rows-1000-classes-256", "low-precision/float16-exp-overflow"])):
        out = tmp_path / str(run)
        args = ["run", "--frameworks", "torch", "--modes", "compiled", "--dtypes", "float16", "--include-naive", "--jobs", "1",
                "--impl", "naive: torch.log(torch.softmax(x))", "--out", str(out), "--compile-cache", str(tmp_path / f"cache{run}")]
        assert main([*args, *(a for c in cases for a in ("--case", c))]) in (0, 1)
        answers.append([r["output"] for r in load_results(out / "results.json")["records"]
                        if r["case"] == "low-precision/float16-exp-overflow" and r["quantity"] == "grad_logits"])
    assert answers[0] and answers[0] == answers[1]
