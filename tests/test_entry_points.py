"""The public doors the adapters claim to cover: aliases are what they say, each door is its own implementation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_tf_math_aliases_are_the_same_functions_as_tf_nn():
    """The README and the labels say tf.math.softmax is tf.nn.softmax: one kernel, so one implementation."""
    tf = pytest.importorskip("tensorflow")
    assert tf.math.softmax is tf.nn.softmax and tf.math.log_softmax is tf.nn.log_softmax


def test_torch_doors_are_distinct_implementations():
    torch_adapter = pytest.importorskip("conformance.adapters.torch")
    pytest.importorskip("torch")
    torch_adapter.load(None)
    ids = {i.id for i in torch_adapter.implementations()}
    assert {"torch/functional/softmax", "torch/special/softmax", "torch/special/log_softmax", "torch/CrossEntropyLoss",
            "torch/sparse/CrossEntropyLoss", "torch/nll_loss/log_softmax"} <= ids


def test_keras_backends_are_one_per_process():
    """KERAS_BACKEND is read at the first import: a worker for another backend refuses to load in this process
    rather than running Keras on the wrong backend under the wrong name."""
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    code = ("import os; os.environ['KERAS_BACKEND']='tensorflow'\n"
            "import keras\n"
            "from conformance.adapters import keras_api\n"
            "try:\n    keras_api.load('jax')\nexcept ImportError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if "No module named" in out.stderr:
        pytest.skip("tensorflow backend not installed")
    assert "refused: keras runs on tensorflow" in out.stdout, out.stderr[-500:]
