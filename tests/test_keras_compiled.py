"""Keras calls under torch.compile compile once per shape pattern: the state a model's first step leaves behind (Keras's
name-scope stack, a layer's parent path) is made when the adapter loads, not by the first compiled call, whose side
effect would fail a guard of its own graph and compile the same function again (adapters/keras_api.py); and a Keras
loss with a mean, whose graph is specialised on the per-example sizes, is warmed up on those sizes (Impl.fixes_example_sizes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# In a process of its own: Keras's backend is fixed per process. Each door is evaluated twice on one case (the first
# evaluation makes the canonical warm-up call and the case's call); the graphs Dynamo compiled are counted per door.
SCRIPT = r"""
import dataclasses, json, sys, tempfile
from pathlib import Path
import numpy as np
from conformance.adapters import load_adapter
from conformance.corpus.cases import Options
from conformance.corpus.inputs import Inputs

adapter = load_adapter("keras-torch", Path(tempfile.mkdtemp()))
import torch
from torch._dynamo.utils import counters

x = np.array([[0.5, 1.5, 0.1], [2.2, 1.3, 1.7]], np.float32)
dense = Inputs(op="softmax_cross_entropy", dtype="float32", logits=x, labels=np.eye(3, dtype=np.float32)[[1, 2]],
               sparse_labels=None, axis=1, options=Options(), cotangent=np.ones(2, np.float32), direction=np.ones_like(x))
masked = Inputs(op="masked_softmax", dtype="float32", logits=x, labels=None, sparse_labels=None, axis=1, options=Options(),
                cotangent=np.ones_like(x), direction=np.ones_like(x), mask=np.array([[1, 1, 0], [1, 0, 1]], bool))
# a mean: Keras divides by the per-example losses' count made a number, so the graph is specialised on their sizes
mean = Options(reduction="mean")
dense_mean = dataclasses.replace(dense, options=mean, cotangent=np.ones((), np.float32))
sparse_mean = dataclasses.replace(dense_mean, op="sparse_softmax_cross_entropy", labels=None, sparse_labels=np.array([1, 2]))
graphs = {}
for name, key, inputs in (("dense", "keras/CategoricalCrossentropy", dense), ("masked", "keras/layers/Softmax/mask", masked),
                          ("dense mean", "keras/CategoricalCrossentropy", dense_mean),
                          ("sparse mean", "keras/SparseCategoricalCrossentropy", sparse_mean)):
    impl = next(i for i in adapter.implementations() if i.key == key)
    before = counters["stats"]["unique_graphs"]
    for _ in range(2):
        out = adapter.evaluate(impl, inputs, ("value", "grad_logits"), "compiled", "cpu")
        assert all(isinstance(v, np.ndarray) for v in out.values()), out
    graphs[name] = counters["stats"]["unique_graphs"] - before
print(json.dumps(graphs))
"""


def test_a_keras_loss_and_layer_compile_one_graph_each_mean_losses_included():
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    graphs = json.loads(res.stdout.strip().splitlines()[-1])
    assert graphs == {"dense": 1, "masked": 1, "dense mean": 1, "sparse mean": 1}, graphs
