"""The textbook formulas, written once: softmax as exp(x) / sum(exp(x)), the log taken after the softmax, and
logsumexp as log(sum(exp(x))).

They are kept to show, with numbers, what the fused public functions protect against (overflow of exp, log of an
underflowed probability). Each adapter gives the few primitives they need in its own framework's terms (`Namespace`)
and the label users would recognise; the formulas themselves are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Impl


@dataclass(frozen=True)
class Namespace:
    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    sum: Callable[[Any, int, bool], Any]  # sum(x, axis, keepdims)
    softmax: Callable[[Any, int], Any]  # the framework's own softmax(x, axis)
    pick: Callable[[Any, Any, int], Any]  # pick(values, class_index, axis): the entry of each row's class, axis dropped
    spelling: str  # how this framework spells exp, sum, log and softmax, space-separated: the labels use them

    def labels(self) -> dict[str, str]:
        """op -> the formula as a user of this framework would write it (display text: ids do not depend on it)."""
        exp, total, log, softmax = self.spelling.split()
        return {"softmax": f"{exp}(x) / {total}({exp}(x))", "log_softmax": f"{log}({softmax}(x))",
                "softmax_cross_entropy": f"-{total}(y * {log}({softmax}(x)))", "sparse_softmax_cross_entropy": f"-{log}({softmax}(x))[t]",
                "logsumexp": f"{log}({total}({exp}(x)))"}


def implementations(framework: str, ns: Namespace) -> list[Impl]:
    """One naive implementation per op, with stable keys naive/<name> (what baselines and the registry match)."""

    def naive_softmax(x, labels, inputs):
        e = ns.exp(x)
        return e / ns.sum(e, inputs.axis, True)

    def naive_log_softmax(x, labels, inputs):
        return ns.log(ns.softmax(x, inputs.axis))

    def naive_cross_entropy(x, labels, inputs):
        return -ns.sum(labels * naive_log_softmax(x, labels, inputs), inputs.axis, False)

    def naive_sparse_cross_entropy(x, labels, inputs):
        return -ns.pick(naive_log_softmax(x, labels, inputs), labels, inputs.axis)

    def naive_logsumexp(x, labels, inputs):
        return ns.log(ns.sum(ns.exp(x), inputs.axis, False))

    formulas = {"softmax": (naive_softmax, "softmax"), "log_softmax": (naive_log_softmax, "log_softmax"), "logsumexp": (naive_logsumexp, "logsumexp"),
                "softmax_cross_entropy": (naive_cross_entropy, "cross_entropy"),
                "sparse_softmax_cross_entropy": (naive_sparse_cross_entropy, "sparse_cross_entropy")}
    labels = ns.labels()
    return [Impl(framework, f"naive: {labels[op]}", op, fn, naive=True, key=f"naive/{key}") for op, (fn, key) in formulas.items()]
