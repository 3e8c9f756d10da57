"""The names fixed by the project's contract (the SPEC): ops, quantities, dtypes, devices, modes, statuses. Frameworks
are whatever adapters are registered (conformance/adapters/__init__.py)."""

# The SPEC's four ops, then the masked pair: an extension this project proposes for the SPEC (cases/README.md,
# "Masked softmax"): a case's `mask` selects the classes that take part; masked entries get probability 0.
OPS = ("softmax", "log_softmax", "softmax_cross_entropy", "sparse_softmax_cross_entropy", "masked_softmax", "masked_log_softmax")
QUANTITIES = ("value", "grad_logits", "grad_labels", "hvp")
DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("cpu", "gpu")
MODES = ("eager", "compiled")
# in the order a reader needs them: every count and table lists statuses in this order
STATUSES = ("pass", "known", "fail", "error", "unsupported", "skip")
BEHAVIOURS = ("finite", "nonfinite", "all_nan", "error")
REDUCTIONS = ("none", "sum", "mean")
RETURNS = (*REDUCTIONS, "auto")  # what a user's cross-entropy without a reduction keyword returns (`check --returns`)

CROSS_ENTROPY_OPS = ("softmax_cross_entropy", "sparse_softmax_cross_entropy")
MASKED_OPS = ("masked_softmax", "masked_log_softmax")
SOFTMAX_LIKE = ("softmax", "log_softmax", *MASKED_OPS)  # output shaped like the logits
UNMASKED = {"masked_softmax": "softmax", "masked_log_softmax": "log_softmax"}  # the op on the kept classes

# Which quantities exist for which op: labels are differentiable only when they are dense.
APPLICABLE_QUANTITIES = {
    "softmax": ("value", "grad_logits", "hvp"),
    "log_softmax": ("value", "grad_logits", "hvp"),
    "softmax_cross_entropy": ("value", "grad_logits", "grad_labels", "hvp"),
    "sparse_softmax_cross_entropy": ("value", "grad_logits", "hvp"),
    "masked_softmax": ("value", "grad_logits", "hvp"),
    "masked_log_softmax": ("value", "grad_logits", "hvp"),
}
DEFAULT_QUANTITIES = ("value", "grad_logits")
