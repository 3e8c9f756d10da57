"""Speed: the benchmark suite (pytest-benchmark, suite/), its runner (bench), the roofs and overhead
measurements (measure), the speed report and the speed half of the gate."""
