"""Layer 4, judging one answer: the extended-precision oracle, the tolerance model, the comparison, and the
known-divergence registry."""
