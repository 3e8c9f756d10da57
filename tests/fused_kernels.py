"""A fused linear cross-entropy written as LLM-training kernels write it (Liger-Kernel's, Cut Cross-Entropy's shape):
a torch.autograd.Function that computes the loss and precomputes the gradients in its forward, in float32, and
scales them by the incoming cotangent in its backward. `fused_linear_cross_entropy` is right; `planted(bug)` gives
the same kernel with one of the bugs those projects reported:

  rounded_p_y         the true-class gradient p_y - 1 from a p rounded to the input dtype (Liger-Kernel PR 1329)
  first_cotangent     a reduction='none' backward that scales every row by grad_output[0] (Liger-Kernel #968)
  writes_hidden       the hidden-state gradient stored into the hidden states' memory (Liger-Kernel #272)
  no_bias_gradient    no gradient for the bias (ml-cross-entropy #52's bias path)
  weight_by_rows      the weight gradient of the mean divided by the token count, not the counted targets
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

BUGS = ("rounded_p_y", "first_cotangent", "writes_hidden", "no_bias_gradient", "weight_by_rows")


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, reduction, ignore_index, bug):
        shape, dtype = hidden.shape[:-1], hidden.dtype
        h = hidden.reshape(-1, hidden.shape[-1])
        t = targets.reshape(-1)
        z = h.float() @ weight.float().T + (0 if bias is None else bias.float())
        counted = t != ignore_index
        safe = torch.where(counted, t, 0)
        lse = torch.logsumexp(z, dim=-1)
        loss = torch.where(counted, lse - z.gather(1, safe[:, None])[:, 0], 0.0)
        p = torch.softmax(z, dim=-1)
        if bug == "rounded_p_y":
            p = p.to(dtype).float()
        g = (p - torch.nn.functional.one_hot(safe, z.shape[-1]).float()) * counted[:, None]
        count = counted.sum().float()
        ctx.save_for_backward(hidden, h, weight, g)
        ctx.settings = (reduction, bug, count, shape, bias is not None)
        if reduction == "mean":
            out = loss.sum() / count
        elif reduction == "sum":
            out = loss.sum()
        else:
            out = loss.reshape(shape)
        return out.to(dtype)

    @staticmethod
    @once_differentiable  # no double backward, said so: an HVP is `unsupported`, never a silent zero
    def backward(ctx, grad_out):
        hidden, h, weight, g = ctx.saved_tensors
        reduction, bug, count, shape, has_bias = ctx.settings
        if reduction == "none":
            per_row = grad_out.reshape(-1).float()
            scale = per_row[0] if bug == "first_cotangent" else per_row[:, None]
        else:  # every target ignored: the mean has no value, but no logit enters it, so its gradient is 0 (g is 0)
            scale = grad_out.float() / (count.clamp(min=1.0) if reduction == "mean" else 1.0)
        gz = g * scale
        grad_h = (gz @ weight.float()).to(hidden.dtype).reshape(hidden.shape)
        weight_scale = count / h.shape[0] if bug == "weight_by_rows" and reduction == "mean" else 1.0
        grad_w = (gz.T @ h.float() * weight_scale).to(weight.dtype)
        grad_b = None if not has_bias or bug == "no_bias_gradient" else gz.sum(0).to(weight.dtype)
        if bug == "writes_hidden":
            hidden.data.copy_(grad_h)  # the memory saving that costs the caller its activations
        return grad_h, grad_w, grad_b, None, None, None, None


def planted(bug: str | None):
    def fused_linear_cross_entropy(hidden, weight, targets, bias=None, reduction="mean", ignore_index=-100):
        return _Fused.apply(hidden, weight, bias, targets, reduction, ignore_index, bug)
    fused_linear_cross_entropy.__qualname__ = f"planted_{bug}" if bug else "fused_linear_cross_entropy"
    return fused_linear_cross_entropy


fused_linear_cross_entropy = planted(None)
# one importable name per planted bug, so that `conformance check tests/fused_kernels.py:<bug>` names it
rounded_p_y, first_cotangent, writes_hidden, no_bias_gradient, weight_by_rows = (planted(bug) for bug in BUGS)
