"""The pytest-benchmark suite behind `conformance bench` (run one framework per process)."""
