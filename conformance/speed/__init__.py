"""Layer 6, speed: the benchmark suite (pytest-benchmark, suite/), its runner (bench), and the roofs and overhead
measurements (measure)."""
