"""The masked cross-entropy (optax's `where=`): the oracle's answer from its derivation, the doors of JAX and NumPy
judged on the bundled suite in both modes (a compiled program built for one mask must not answer for another), and a
user's own function taking the mask as `where=`."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from results_factory import load as load_results

from conformance.app.cli import main
from conformance.corpus.cases import load
from conformance.corpus.inputs import build
from conformance.judge import oracle

CASE = textwrap.dedent("""\
    suite: mce
    description: the derivation case
    cases:
      - id: two-of-three
        description: logits [1, 2, 3], the third class masked, labels [0.5, 0.5, 0.25] (mass on the masked class left out)
        ops: [masked_softmax_cross_entropy]
        dtypes: [float64]
        logits: [[1.0, 2.0, 3.0]]
        labels: [[0.5, 0.5, 0.25]]
        mask: [[true, true, false]]
    """)


def test_the_oracle_is_the_cross_entropy_over_the_kept_classes(tmp_path):
    path = tmp_path / "mce.yaml"
    path.write_text(CASE)
    (case,) = load([path])
    inputs = build(case, "masked_softmax_cross_entropy", "float64")
    p1, p2 = 1 / (1 + math.e), math.e / (1 + math.e)  # the softmax of [1, 2]
    assert float(oracle.compute(inputs, "value").value[0]) == pytest.approx(-(0.5 * math.log(p1) + 0.5 * math.log(p2)), rel=1e-15)
    grad_logits = np.asarray(oracle.compute(inputs, "grad_logits").value, dtype=np.float64)[0]
    assert grad_logits == pytest.approx([p1 - 0.5, p2 - 0.5, 0.0], rel=1e-15, abs=1e-300)  # (sum y) p - y over the kept
    grad_labels = np.asarray(oracle.compute(inputs, "grad_labels").value, dtype=np.float64)[0]
    assert grad_labels == pytest.approx([-math.log(p1), -math.log(p2), 0.0], rel=1e-15)  # a left-out label has no say


def test_the_doors_pass_the_suite_in_both_modes_and_their_divergences_are_registered(tmp_path):
    pytest.importorskip("optax")
    out = tmp_path / "out"
    assert main(["run", "--case", "masked-cross-entropy/*", "--frameworks", "numpy,jax", "--out", str(out)]) == 0
    records = load_results(out / "results.json")["records"]
    compiled = {r["case"] for r in records if r["impl_id"] == "jax/optax/softmax_cross_entropy/where" and r["mode"] == "compiled"
                and r["quantity"] == "value" and r["status"] == "pass"}
    assert {"masked-cross-entropy/attention-like-rows", "masked-cross-entropy/shared-class-mask"} <= compiled
    known = {r["known_id"] for r in records if r["status"] == "known"}
    assert known == {"optax-masked-cross-entropy-label-gradient-nan-at-masked-classes", "masked-cross-entropy-of-a-fully-masked-row-sums-nothing",
                     "optax-integer-label-where-reads-a-masked-targets-logit"}


def test_a_users_masked_cross_entropy_takes_the_mask_as_where(tmp_path):
    pytest.importorskip("jax")
    mine = tmp_path / "mine.py"
    mine.write_text(textwrap.dedent("""\
        import jax, jax.numpy as jnp

        def masked_ce(logits, labels, where, axis=-1):
            log_p = jax.nn.log_softmax(logits, axis=axis, where=where)
            return -jnp.sum(jnp.where(where, labels * jnp.where(where, log_p, 0.0), 0.0), axis=axis)
        """))
    main(["check", f"{mine}:masked_ce", "--op", "masked_softmax_cross_entropy", "--framework", "jax", "--modes", "eager",
          "--case", "masked-cross-entropy/attention-like-rows", "--dtypes", "float32", "--out", str(tmp_path / "out")])
    records = load_results(tmp_path / "out" / "results.json")["records"]
    assert {r["quantity"] for r in records if r["status"] == "pass"} == {"value", "grad_logits", "grad_labels"}


SPARSE_CASE = textwrap.dedent("""\
    suite: msce
    description: the integer-label derivation case
    cases:
      - id: two-of-three
        description: logits [1, 2, 3], the third class masked, the target class 1
        ops: [masked_sparse_softmax_cross_entropy]
        dtypes: [float64]
        quantities: [value, grad_logits]
        logits: [[1.0, 2.0, 3.0]]
        sparse_labels: [1]
        mask: [[true, true, false]]
    """)


def test_the_integer_label_oracle_is_minus_log_p_of_the_target_over_the_kept_classes(tmp_path):
    path = tmp_path / "msce.yaml"
    path.write_text(SPARSE_CASE)
    (case,) = load([path])
    inputs = build(case, "masked_sparse_softmax_cross_entropy", "float64")
    p1, p2 = 1 / (1 + math.e), math.e / (1 + math.e)
    assert float(oracle.compute(inputs, "value").value[0]) == pytest.approx(math.log1p(math.exp(-1)), rel=1e-15)  # -log p2
    grad_logits = np.asarray(oracle.compute(inputs, "grad_logits").value, dtype=np.float64)[0]
    assert grad_logits == pytest.approx([p1, p2 - 1, 0.0], rel=1e-15, abs=1e-300)  # p - onehot(t) over the kept classes


def test_the_integer_label_doors_pass_where_they_can_and_a_target_on_a_masked_class_is_named(tmp_path):
    """optax's `softmax_cross_entropy_with_integer_labels(where=)` and the SciPy form, both modes: every valid case
    passes, the derivation's 0.31326168751822286 included; a target on a masked class has no finite answer."""
    pytest.importorskip("optax")
    out = tmp_path / "out"
    main(["run", "--case", "masked-cross-entropy/*", "--op", "masked_sparse_softmax_cross_entropy", "--frameworks", "numpy,jax",
          "--out", str(out)])
    records = load_results(out / "results.json")["records"]
    valid = [r for r in records if not r["invalid"] and r["status"] != "unsupported"]
    assert valid and all(r["status"] == "pass" for r in valid), [(r["case"], r["impl_id"], r["quantity"], r["dtype"], r["status"]) for r in valid
                                                                   if r["status"] != "pass"][:5]
    assert {r["impl_id"] for r in valid} == {"jax/optax/softmax_cross_entropy_with_integer_labels/where", "numpy/scipy/where/sparse_cross_entropy"}
    assert any(r["case"] == "masked-cross-entropy/integer-label-two-kept-classes-of-three" and r["mode"] == "compiled" for r in valid)
    invalid = [r for r in records if r["case"] == "masked-cross-entropy/target-on-a-masked-class" and r["status"] != "unsupported"]
    assert invalid and all(r["status"] in ("pass", "known") for r in invalid)
