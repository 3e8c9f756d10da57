"""The op table: what each op of the contract takes, returns and differentiates, in one place (an OpInfo-style
table). The corpus loader, the oracle, the adapters' argument passing and the names of `names.py` read it; adding an
op is its entry here, its oracle, its doors in the adapters that offer it, and its cases.

An op's arguments, in the order a framework's function receives them:
  primals   the differentiable float arrays (a gradient `grad_<name>` each): the logits, or the hidden states, the
            classifier's weight and its bias for the fused linear cross-entropy; the first is the HVP's variable
  labels    what comes after them: dense labels (differentiable: `grad_labels`), integer class indices, a boolean mask
            of the classes that take part, or nothing
"""

from __future__ import annotations

from dataclasses import dataclass

# What an op's label argument is: nothing, dense labels, integer class indices, a mask over the classes, or targets
# that a case gives either way (integer or dense: the fused linear cross-entropy takes both).
LABEL_KINDS = ("none", "dense", "sparse", "mask", "targets")
# What an op returns: probabilities or log-probabilities shaped like the logits, a loss per row (reduced by
# `reduction`), or the log of the softmax's normaliser per row (logsumexp: never reduced).
OUTPUTS = ("probabilities", "log_probabilities", "loss", "log_normaliser")
SEEDED_COTANGENT = {"generate": "normal", "seed": 0}


@dataclass(frozen=True)
class Op:
    name: str
    primals: tuple[str, ...]  # differentiable float arguments, in call order
    labels: str  # one of LABEL_KINDS
    output: str  # one of OUTPUTS
    optional_primals: tuple[str, ...] = ()  # primals a case may leave out (a bias): their gradient is then not asked
    base: str | None = None  # the op this one is over the kept classes (masked ops), judged by its oracle (`masked`)
    # `ones`, or a seeded generator: the gradient of sum(softmax) is identically zero, so softmax needs another
    default_cotangent: str | dict = "ones"
    logits_given: bool = True  # the case gives logits (else they are computed inside the op: hidden @ weight.T + bias)

    @property
    def gradients(self) -> tuple[str, ...]:
        """One gradient quantity per primal, then the dense labels' where labels can be dense."""
        dense = ("grad_labels",) if self.labels in ("dense", "targets") else ()
        return tuple(f"grad_{p}" for p in self.primals) + dense

    @property
    def quantities(self) -> tuple[str, ...]:
        return ("value", *self.gradients, "hvp")

    @property
    def default_quantities(self) -> tuple[str, ...]:
        """What a case asks when it names none: the value and the gradient of every primal."""
        return ("value", *(f"grad_{p}" for p in self.primals))

    @property
    def masked(self) -> bool:
        """Over the classes a mask keeps: the mask is the op's label argument, or (a masked cross-entropy) comes
        beside its dense labels, read from the inputs by the door."""
        return self.base is not None

    @property
    def loss(self) -> bool:
        """A loss per row, reduced by `reduction` (else the output is shaped like the logits)."""
        return self.output == "loss"

    @property
    def shaped_like_logits(self) -> bool:
        """The output has the logits' shape (else one value per row, or a reduced loss)."""
        return self.output in ("probabilities", "log_probabilities")

    def output_shape(self, logits_shape: tuple[int, ...], axis: int, reduction: str) -> tuple[int, ...]:
        """The output's shape for logits of this shape: theirs, or one value per row (the class axis dropped), or a
        scalar where a loss is reduced."""
        if self.shaped_like_logits:
            return logits_shape
        if self.loss and reduction != "none":
            return ()
        return logits_shape[:axis] + logits_shape[axis + 1:]

    def takes(self, kind: str) -> bool:
        """Whether the op takes labels of `kind` ("dense" or "sparse"; "targets" takes either)."""
        return self.labels == kind or (self.labels == "targets" and kind in ("dense", "sparse"))


_LOGITS = ("logits",)
TABLE: dict[str, Op] = {op.name: op for op in (
    Op("softmax", _LOGITS, "none", "probabilities", default_cotangent=SEEDED_COTANGENT),
    Op("log_softmax", _LOGITS, "none", "log_probabilities"),
    Op("softmax_cross_entropy", _LOGITS, "dense", "loss"),
    Op("sparse_softmax_cross_entropy", _LOGITS, "sparse", "loss"),
    Op("masked_softmax", _LOGITS, "mask", "probabilities", base="softmax", default_cotangent=SEEDED_COTANGENT),
    Op("masked_log_softmax", _LOGITS, "mask", "log_probabilities", base="log_softmax"),
    # The cross-entropy over the classes a mask keeps (a loss's `where=` argument): -sum over kept classes of y log p, p the
    # softmax of the kept logits; label mass on a masked class is left out, as `where=` leaves it out of the sum.
    Op("masked_softmax_cross_entropy", _LOGITS, "dense", "loss", base="softmax_cross_entropy"),
    # Its integer-label form (a loss's `where=` beside class indices; a vocabulary mask before a language model's loss):
    # -log p_t over the kept classes. A target on a masked class has probability 0: no finite answer (+inf), an invalid input.
    Op("masked_sparse_softmax_cross_entropy", _LOGITS, "sparse", "loss", base="sparse_softmax_cross_entropy"),
    # The fused classifier and loss of LLM heads: the [tokens, vocabulary] logits hidden @ weight.T + bias are part of
    # the op (never rounded by the oracle), and the class axis is the last.
    Op("linear_cross_entropy", ("hidden", "weight", "bias"), "targets", "loss", optional_primals=("bias",),
       logits_given=False),
    # log sum_j exp(x_j) along the class axis: the softmax's normaliser (log_softmax = x - logsumexp), and the term a
    # z-loss squares; its gradient is the softmax.
    Op("logsumexp", _LOGITS, "none", "log_normaliser"),
)}


def op(name: str) -> Op:
    """The table's entry; KeyError names the ops that exist."""
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; the ops are {', '.join(TABLE)}") from None
