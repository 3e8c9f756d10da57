"""The names fixed by the project's contract (the SPEC): ops, quantities, dtypes, devices, modes, statuses. Frameworks
are whatever adapters are registered (conformance/adapters/__init__.py)."""

OPS = ("softmax", "log_softmax", "softmax_cross_entropy", "sparse_softmax_cross_entropy")
QUANTITIES = ("value", "grad_logits", "grad_labels", "hvp")
DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("cpu", "gpu")
MODES = ("eager", "compiled")
STATUSES = ("pass", "fail", "error", "known", "unsupported", "skip")
BEHAVIOURS = ("finite", "nonfinite", "all_nan", "error")
REDUCTIONS = ("none", "sum", "mean")

CROSS_ENTROPY_OPS = ("softmax_cross_entropy", "sparse_softmax_cross_entropy")

# Which quantities exist for which op: labels are differentiable only when they are dense.
APPLICABLE_QUANTITIES = {
    "softmax": ("value", "grad_logits", "hvp"),
    "log_softmax": ("value", "grad_logits", "hvp"),
    "softmax_cross_entropy": ("value", "grad_logits", "grad_labels", "hvp"),
    "sparse_softmax_cross_entropy": ("value", "grad_logits", "hvp"),
}
DEFAULT_QUANTITIES = ("value", "grad_logits")
