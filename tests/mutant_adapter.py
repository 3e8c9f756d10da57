"""Realistic kernel bugs, one at a time, behind PyTorch's public functions: the suite's own mutants.

Registered as framework "mutant" through $CONFORMANCE_ADAPTERS ("mutant=mutant_adapter", tests/ on the path);
$CONFORMANCE_MUTANT names the bug (MUTANTS), which replaces one fused implementation's forward; everything else is
the torch adapter unchanged, gradients and HVPs by torch.autograd through the mutated forward. Gradient bugs are
written as forwards whose value is right and whose derivative is wrong (a term that is zero but not constant), the
way a fused kernel with a wrong backward behaves. tests/test_mutants.py judges each through conformance.testing.check,
as a user's own function beside torch's, and requires that every one is killed: some record fails where torch's own
function passes. As a framework it also serves tests/test_entry_points.py (a third-party adapter module).
"""

from __future__ import annotations

import dataclasses
import os

from conformance.adapters import torch as base

NAME = "mutant"
REQUIRES = ("torch",)
PACKAGES = ()
GPU = False
load, version, flags, evaluate, set_threads = base.load, base.version, base.flags, base.evaluate, base.set_threads
benchmark_call, bare_call = base.benchmark_call, base.bare_call


def devices() -> list[str]:
    return ["cpu"]


def _t():
    return base.torch


def _lse(x, axis):
    return _t().logsumexp(x, dim=axis, keepdim=True)


# --- softmax
def no_max_shift(x, labels, inputs):
    e = _t().exp(x)
    return e / e.sum(dim=inputs.axis, keepdim=True)


def batch_max_shift(x, labels, inputs):
    # one shift for the whole batch, not each row's: a row far below the batch's max underflows to 0/0
    e = _t().exp(x - x.amax())
    return e / e.sum(dim=inputs.axis, keepdim=True)


def epsilon_in_denominator(x, labels, inputs):
    e = _t().exp(x - x.amax(dim=inputs.axis, keepdim=True))
    return e / (e.sum(dim=inputs.axis, keepdim=True) + 1e-7)


def half_precision_accumulation(x, labels, inputs):
    e = _t().exp(x - x.amax(dim=inputs.axis, keepdim=True))
    return e / e.half().sum(dim=inputs.axis, keepdim=True).to(x.dtype)


def last_axis_only(x, labels, inputs):
    return _t().softmax(x, dim=-1)


def softmax_vjp_without_the_coupling_term(x, labels, inputs):
    p = _t().softmax(x, dim=inputs.axis).detach()
    return p + p * (x - x.detach())  # value p; Jacobian diag(p) instead of diag(p) - p p^T


# --- log_softmax
def log_of_p_plus_epsilon(x, labels, inputs):
    return _t().log(_t().softmax(x, dim=inputs.axis) + 1e-12)


def lse_without_max(x, labels, inputs):
    return x - _t().log(_t().exp(x).sum(dim=inputs.axis, keepdim=True))


def float32_inside(x, labels, inputs):
    return base.F.log_softmax(x.float(), dim=inputs.axis).to(x.dtype)


def zero_second_derivative(x, labels, inputs):
    p = _t().softmax(x, dim=inputs.axis).detach()
    lse = _lse(x, inputs.axis).detach() + ((x - x.detach()) * p).sum(dim=inputs.axis, keepdim=True)
    return x - lse  # first derivative right, second derivative zero (a backward that is not differentiable itself)


# --- dense cross-entropy
def smoothing_over_c_minus_1(x, labels, inputs):
    eps, classes = inputs.options.label_smoothing, x.shape[inputs.axis]
    if eps:
        labels = (1 - eps) * labels + eps / max(classes - 1, 1)
        inputs = dataclasses.replace(inputs, options=dataclasses.replace(inputs.options, label_smoothing=0.0))
    return base.cross_entropy(x, labels, inputs)


def mean_over_elements(x, labels, inputs):
    if inputs.options.reduction != "mean":
        return base.cross_entropy(x, labels, inputs)
    rows = base.cross_entropy(x, labels, dataclasses.replace(inputs, options=dataclasses.replace(inputs.options, reduction="none")))
    return rows.sum() / x.numel()


def gradient_assumes_normalised_labels(x, labels, inputs):
    loss = base.cross_entropy(x, labels, inputs)
    extra = (labels.sum(dim=inputs.axis, keepdim=True).detach() - 1) * (_lse(x, inputs.axis) - _lse(x, inputs.axis).detach())
    # value unchanged; d/dx gains -(sum(y) - 1) p: the kernel returns p - y whatever the labels sum to
    return loss - _reduce_like(extra.squeeze(inputs.axis), inputs)


def label_gradient_sign(x, labels, inputs):
    logp = base.F.log_softmax(x, dim=inputs.axis).detach()
    return base.cross_entropy(x, labels, inputs) + _reduce_like(2 * ((labels - labels.detach()) * logp).sum(dim=inputs.axis), inputs)


def sum_returns_mean(x, labels, inputs):
    if inputs.options.reduction != "sum":
        return base.cross_entropy(x, labels, inputs)
    return base.cross_entropy(x, labels, dataclasses.replace(inputs, options=dataclasses.replace(inputs.options, reduction="mean")))


# --- sparse cross-entropy
def ignored_rows_in_the_mean(x, labels, inputs):
    opts = inputs.options
    if opts.reduction != "mean" or opts.ignore_index is None:
        return base.cross_entropy(x, labels, inputs)
    rows = base.cross_entropy(x, labels, dataclasses.replace(inputs, options=dataclasses.replace(opts, reduction="none")))
    return rows.sum() / rows.numel()


def negative_labels_wrap(x, labels, inputs):
    keep = labels == inputs.options.ignore_index if inputs.options.ignore_index is not None else _t().zeros_like(labels, dtype=_t().bool)
    return base.cross_entropy(x, _t().where(keep, labels, labels % x.shape[inputs.axis]), inputs)


def class_weights_ignored(x, labels, inputs):
    return base.cross_entropy(x, labels, dataclasses.replace(inputs, options=dataclasses.replace(inputs.options, weight=None)))


def _reduce_like(per_row, inputs):
    reduction = inputs.options.reduction
    return per_row.sum() if reduction == "sum" else (per_row.mean() if reduction == "mean" else per_row)


# mutant -> (op it replaces, forward, what it would look like in a kernel)
MUTANTS = {
    "no-max-shift": ("softmax", no_max_shift),
    "batch-max-shift": ("softmax", batch_max_shift),
    "epsilon-in-denominator": ("softmax", epsilon_in_denominator),
    "half-precision-accumulation": ("softmax", half_precision_accumulation),
    "last-axis-only": ("softmax", last_axis_only),
    "softmax-vjp-without-coupling": ("softmax", softmax_vjp_without_the_coupling_term),
    "log-of-p-plus-epsilon": ("log_softmax", log_of_p_plus_epsilon),
    "lse-without-max": ("log_softmax", lse_without_max),
    "float32-inside": ("log_softmax", float32_inside),
    "zero-second-derivative": ("log_softmax", zero_second_derivative),
    "smoothing-over-c-minus-1": ("softmax_cross_entropy", smoothing_over_c_minus_1),
    "mean-over-elements": ("softmax_cross_entropy", mean_over_elements),
    "gradient-assumes-normalised-labels": ("softmax_cross_entropy", gradient_assumes_normalised_labels),
    "label-gradient-sign": ("softmax_cross_entropy", label_gradient_sign),
    "sum-returns-mean": ("softmax_cross_entropy", sum_returns_mean),
    "ignored-rows-in-the-mean": ("sparse_softmax_cross_entropy", ignored_rows_in_the_mean),
    "negative-labels-wrap": ("sparse_softmax_cross_entropy", negative_labels_wrap),
    "class-weights-ignored": ("sparse_softmax_cross_entropy", class_weights_ignored),
}


def implementations():
    """The torch adapter's fused implementations as framework "mutant", one of them mutated ($CONFORMANCE_MUTANT; none:
    the clean reference the mutants are compared with)."""
    chosen = MUTANTS.get(os.environ.get("CONFORMANCE_MUTANT", ""))
    impls = []
    for impl in base.implementations():
        if impl.naive:
            continue
        impl = dataclasses.replace(impl, framework=NAME)
        if chosen and impl.op == chosen[0]:
            impl = dataclasses.replace(impl, forward=chosen[1])
        impls.append(impl)
    return impls
