"""ONNX Runtime, the deployment path: one-node models at opset 13+ and 11, the losses with their own options, masks
through Where, and PyTorch's functions exported with torch.onnx.export, judged like every framework's."""

from __future__ import annotations

import pytest

from conformance.app.cli import main
from conformance.report import cross_backend
from conformance.run import results as results_io

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _run(tmp_path, *args) -> list[dict]:
    assert main(["run", "--out", str(tmp_path), "--jobs", "1", *args]) == 0
    return results_io.read(tmp_path / "results.json")["records"]


def test_opset_11_normalises_another_block_where_the_class_axis_is_not_last(tmp_path):
    records = _run(tmp_path, "--frameworks", "onnxruntime", "--case", "shapes/class-axis-middle", "--case", "published-values/*",
                   "--quantity", "value", "--dtypes", "float32")
    by = {(r["impl_id"], r["case"], r["mode"]): r for r in records}
    for mode in ("eager", "compiled"):
        middle = ("shapes/class-axis-middle", mode)
        assert by[("onnxruntime/Softmax-13", *middle)]["status"] == "pass"
        old = by[("onnxruntime/Softmax-11", *middle)]
        assert old["status"] == "known" and old["known_status"] == "fail" and old["known_id"].startswith("onnx-opset-11")
        assert old["tol_ratio"] > 1e3  # another function, not a rounding difference
        last = ("published-values/softmax-four-logits", mode)  # the class axis last: the two opsets agree
        assert by[("onnxruntime/Softmax-11", *last)]["status"] == by[("onnxruntime/Softmax-13", *last)]["status"] == "pass"


def test_an_inference_runtime_offers_values_only(tmp_path):
    records = _run(tmp_path, "--frameworks", "onnxruntime", "--case", "gradients/cross-entropy-soft", "--dtypes", "float64")
    assert {r["status"] for r in records if r["quantity"] != "value"} == {"unsupported"}
    assert any(r["status"] == "pass" and r["quantity"] == "value" for r in records)


def test_exported_pytorch_functions_run_beside_the_records_they_come_from(tmp_path):
    pytest.importorskip("torch")
    records = _run(tmp_path, "--frameworks", "torch,onnxruntime", "--case", "published-values/*", "--case", "model-shapes/sequence-*",
                   "--modes", "eager", "--dtypes", "float32", "--quantity", "value")
    exported = [r for r in records if r["impl_id"].startswith("onnxruntime/torch.onnx/")]
    assert exported and all(r["status"] in ("pass", "unsupported") for r in exported)
    pairs = {row[0]: row for row in cross_backend.pair_counts(records)}
    assert pairs["torch/sparse_cross_entropy"][1] == "onnxruntime / torch" and pairs["torch/sparse_cross_entropy"][2] >= 4
