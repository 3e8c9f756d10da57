"""The names fixed by the project's contract (the SPEC): ops, quantities, dtypes, devices, modes, statuses. Frameworks
are whatever adapters are registered (conformance/adapters/__init__.py)."""

from .ops import TABLE
from .status import STATUSES as STATUSES  # the one order (model/status.py)

# Every op of the op table (model/ops.py): the SPEC's four, the masked pair (an extension this project proposes for the
# SPEC, docs/case-format.md, "Masked ops") and the fused linear cross-entropy of LLM heads.
OPS = tuple(TABLE)
# the SPEC's four, then a gradient per further primal of an op (grad_hidden, grad_weight, grad_bias)
QUANTITIES = tuple(dict.fromkeys(("value", "grad_logits", "grad_labels", "hvp", *(q for o in TABLE.values() for q in o.gradients))))
DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("cpu", "gpu")
MODES = ("eager", "compiled")
BEHAVIOURS = ("finite", "nonfinite", "all_nan", "error")
REDUCTIONS = ("none", "sum", "mean")
# what a case may ask of every call beside its verdict (run/properties.py): the same row answered alike whatever the
# batch around it, and the same call answered alike when made again
PROPERTIES = ("batch_invariance", "determinism")
RETURNS = (*REDUCTIONS, "auto")  # what a user's cross-entropy without a reduction keyword returns (`check --returns`)

CROSS_ENTROPY_OPS = tuple(o.name for o in TABLE.values() if o.loss)
MASKED_OPS = tuple(o.name for o in TABLE.values() if o.masked)
SOFTMAX_LIKE = tuple(o.name for o in TABLE.values() if o.shaped_like_logits)  # output shaped like the logits
UNMASKED = {o.name: o.base for o in TABLE.values() if o.base}  # the op on the kept classes
LOGIT_OPS = tuple(o.name for o in TABLE.values() if o.logits_given)  # the ops a case gives logits to (fuzz draws those)

# Which quantities exist for which op: labels are differentiable only when they are dense.
APPLICABLE_QUANTITIES = {o.name: o.quantities for o in TABLE.values()}
DEFAULT_QUANTITIES = ("value", "grad_logits")
