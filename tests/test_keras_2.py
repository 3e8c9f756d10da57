"""Under TensorFlow 2.15 and before, `import keras` is Keras 2 (tf.keras): the Keras doors run its losses and Softmax
layer as they are, and `keras.ops`, which Keras 2 lacks, is unsupported with the reason, never an AttributeError
recorded as the framework's error. The history's real runs (tests/data/history/, tensorflow-cpu 2.12.1 to 2.15.1) ran
this path; here a stand-in module plays Keras 2 so that the check runs wherever the suite does."""

from __future__ import annotations

import types

import pytest

from conformance.adapters import keras_api
from conformance.adapters.base import Unsupported


@pytest.fixture
def keras_2(monkeypatch):
    fake = types.SimpleNamespace(__version__="2.15.0", backend=types.SimpleNamespace(floatx=lambda: "float32", backend=lambda: "tensorflow"))
    monkeypatch.setattr(keras_api, "keras", fake)
    return fake


def test_keras_2_has_no_ops_and_says_so(keras_2):
    assert keras_api.is_keras_2() and keras_api.floatx() == "float32"
    for door in (keras_api.ops_softmax, keras_api.ops_log_softmax, keras_api.ops_logsumexp, keras_api.ops_cross_entropy,
                 keras_api.ops_sparse_cross_entropy):
        with pytest.raises(Unsupported, match="keras.ops is Keras 3's; keras 2.15.0"):
            door(None, None, None)
    with pytest.raises(Unsupported, match="keras.ops is Keras 3's"):
        keras_api.ops_linear_cross_entropy(None, None, None, None, None)


def test_keras_3_reads_floatx_from_its_config(monkeypatch):
    fake = types.SimpleNamespace(__version__="3.15.1", config=types.SimpleNamespace(floatx=lambda: "float64"))
    monkeypatch.setattr(keras_api, "keras", fake)
    assert not keras_api.is_keras_2() and keras_api.floatx() == "float64"
