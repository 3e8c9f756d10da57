"""Keras 3 on its JAX backend: the same public Keras calls as on TensorFlow (keras_api), run as JAX code, so
gradients come from jax.vjp/jvp and compiled mode is jax.jit, exactly as for JAX's own functions (the jax adapter
does the running). "Does my Keras model compute the same loss on another backend?" is then a comparison of
records: keras-jax/keras/... against tensorflow/keras/... for the same case."""

from __future__ import annotations

from . import jax as _jax
from . import keras_api

NAME = "keras-jax"
SHARED_DOORS = keras_api.SHARED_DOORS
REQUIRES = ("keras", "jax")
PACKAGES = ("keras", "jax", "jaxlib", "ml_dtypes")
NUMERIC_ENV = _jax.NUMERIC_ENV
QUICK_COMPILE = _jax.QUICK_COMPILE
GPU_ENV = _jax.GPU_ENV
# Cold-cache seconds of one full run, every framework at once, on a 2-core AMD EPYC VM (tests/data/costs/cold-run-timing.json)
COLD_SECONDS = {("compiled", "bfloat16"): 37, ("compiled", "float16"): 31, ("compiled", "float32"): 45,
                ("compiled", "float64"): 41, ("eager", "bfloat16"): 27, ("eager", "float16"): 27,
                ("eager", "float32"): 40, ("eager", "float64"): 47}
QUICK_SECONDS = {"eager": 4, "compiled": 1}  # `run --quick`, cold, the same VM (tests/data/costs/quick-run-timing.json)
WARM_FRACTION = {"eager": 0.34, "compiled": 0.19}  # the same quick run again in its compile cache (tests/data/costs/quick-run-warm-pair.json)
START_SECONDS = 5.1  # its worker's seconds beyond its modes' in that quick run (shard_costs.overhead)
IMPORT_SECONDS = 4.0  # its worker's spawn to its framework imported in that quick run (start_s + import)
# the medians of 18 cold quick runs on a 2-core Xeon (tests/data/costs/quick-run-timing-intel-avx512.json)
ON_CPU = {"intel-avx512": {"QUICK_SECONDS": {"eager": 2, "compiled": 1}, "START_SECONDS": 3.1, "IMPORT_SECONDS": 2.4}}
OWN_PROCESS = True  # Keras's backend is fixed per process: never loaded beside the tensorflow adapter's Keras

# the jax adapter runs these: one framework's machinery, another framework's API on top
devices, device_problems, set_threads = _jax.devices, _jax.device_problems, _jax.set_threads
evaluate, benchmark_call, bare_call = _jax.evaluate, _jax.benchmark_call, _jax.bare_call

load, version, flags, implementations = keras_api.on_backend(NAME, "jax", _jax)
