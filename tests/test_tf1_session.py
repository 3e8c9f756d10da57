"""The seed's own API run the way TF1 code ran it: tf.compat.v1 calls built into a graph of placeholders, gradients
from tf.compat.v1.gradients, one Session.run. The published mean cross-entropy comes out of a Session, the documented
stop on the labels' gradient holds there too (a finding, registered with the eager doors' entry), and the Session
answers the eager doors' bits."""

from __future__ import annotations

import pytest
from results_factory import load as load_results

from conformance.app.cli import main

pytest.importorskip("tensorflow")


def test_the_session_doors_reproduce_the_published_loss_and_the_eager_doors_bits(tmp_path):
    out = tmp_path / "out"
    code = main(["run", "--frameworks", "tensorflow", "--modes", "eager", "--impl", "tensorflow/compat.v1/*",
                 "--case", "published-values/*", "--case", "gradients/cross-entropy-soft", "--out", str(out)])
    assert code == 0
    records = load_results(out / "results.json")["records"]
    session = [r for r in records if "/session/" in r["impl_id"]]
    assert {r["impl_id"] for r in session} == {"tensorflow/compat.v1/session/nn/softmax_cross_entropy_with_logits",
                                               "tensorflow/compat.v1/session/nn/softmax_cross_entropy_with_logits_v2",
                                               "tensorflow/compat.v1/session/losses/softmax_cross_entropy",
                                               "tensorflow/compat.v1/session/losses/sparse_softmax_cross_entropy"}
    published = [r for r in session if r["case"] == "published-values/mean-cross-entropy-two-rows" and r["quantity"] == "value"
                 and r["dtype"] == "float64" and r["status"] == "pass"]
    assert published and all(abs(r["output"] - 0.8393437) < 1e-6 for r in published)  # the published 0.839343
    no_gradient = {r["impl_id"] for r in session if r["quantity"] == "grad_labels" and r.get("known_id") == "tf-compat-v1-labels-get-no-gradient"}
    assert no_gradient == {"tensorflow/compat.v1/session/nn/softmax_cross_entropy_with_logits",
                           "tensorflow/compat.v1/session/losses/softmax_cross_entropy"}
    eager = {(r["case"], r["quantity"], r["dtype"], r["impl_id"]): r["answer"] for r in records if "/session/" not in r["impl_id"]}
    pairs = [(r["answer"], eager.get((r["case"], r["quantity"], r["dtype"], r["impl_id"].replace("/session", ""))))
             for r in session if r["answer"]]
    assert pairs and all(a == b for a, b in pairs)  # the same kernels, run by a Session
