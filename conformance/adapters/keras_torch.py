"""Keras 3 on its PyTorch backend: the same public Keras calls as on TensorFlow and JAX (keras_api), run as torch
code, so gradients come from torch.autograd and compiled mode is torch.compile(fullgraph=True), exactly as for
torch's own functions (the torch adapter does the running). Compare keras-torch/keras/... with
tensorflow/keras/... and keras-jax/keras/... for the same case: the report's cross-backend table does."""

from __future__ import annotations

from . import keras_api
from . import torch as _torch

NAME = "keras-torch"
SHARED_DOORS = keras_api.SHARED_DOORS
REQUIRES = ("keras", "torch")
PACKAGES = ("keras", "torch")
NUMERIC_ENV = _torch.NUMERIC_ENV
DEVICE_ASSERTS = _torch.DEVICE_ASSERTS  # its compiled kernels are Inductor's: the torch adapter says where they abort
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 133, ("compiled", "float16"): 141, ("compiled", "float32"): 289,
                ("compiled", "float64"): 240, ("eager", "bfloat16"): 7, ("eager", "float16"): 4,
                ("eager", "float32"): 6, ("eager", "float64"): 3}
QUICK_SECONDS = {"eager": 0, "compiled": 43}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"compiled": 0.32}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
START_SECONDS = 8.3  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 7.5  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 0, "compiled": 23}, "START_SECONDS": 5.3, "IMPORT_SECONDS": 4.7}}
COMPILER = _torch.COMPILER
OWN_PROCESS = True  # Keras's backend is fixed per process: never loaded beside another adapter's Keras

# the torch adapter runs these: one framework's machinery, another framework's API on top
devices, device_problems, set_threads = _torch.devices, _torch.device_problems, _torch.set_threads
evaluate, benchmark_call, bare_call = _torch.evaluate, _torch.benchmark_call, _torch.bare_call
cache_damaged, discard_cache = _torch.cache_damaged, _torch.discard_cache

load, version, flags, implementations = keras_api.on_backend(NAME, "torch", _torch)
