"""Loss functions written in the style of well-known libraries, as people have them: the subjects of
tests/test_real_losses.py (`conformance check` on real signatures). Each is the library's formula, not a copy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class LabelSmoothingCrossEntropy(torch.nn.Module):
    """A vision library's label-smoothing loss: the mean over the batch, smoothing towards the uniform distribution,
    targets equal to ignore_index left out of both the sum and the count."""

    def __init__(self, label_smoothing: float = 0.1, ignore_index: int = -100):
        super().__init__()
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=-1)
        keep = target != self.ignore_index
        nll = -logp.gather(-1, torch.where(keep, target, 0).unsqueeze(-1)).squeeze(-1)
        smooth = -logp.mean(dim=-1)
        loss = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth
        return (loss * keep).sum() / keep.sum()


def smoothed_mean(logits, target, label_smoothing=0.0, ignore_index=-100):
    """The module above as a function of the options the corpus sets (two lines of glue)."""
    return LabelSmoothingCrossEntropy(label_smoothing, ignore_index)(logits, target)


def causal_lm_loss(logits, labels, num_items_in_batch=None, ignore_index=-100):
    """An NLP library's causal-LM loss: predict token t+1 from position t (labels shifted left), -100 ignored, the
    sum divided by num_items_in_batch where given (gradient accumulation), else the mean over counted tokens."""
    shift_logits = logits[..., :-1, :].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[..., 1:].reshape(-1)
    reduction = "sum" if num_items_in_batch is not None else "mean"
    loss = F.cross_entropy(shift_logits, shift_labels, ignore_index=ignore_index, reduction=reduction)
    return loss / num_items_in_batch if num_items_in_batch is not None else loss


def causal_lm_glue(logits, target):
    """Three lines of glue: the corpus's logits and targets as one sequence whose shift pairs row t with target t."""
    logits, target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
    padded_logits = torch.cat([logits, logits.new_zeros(1, logits.shape[-1])])[None]
    return causal_lm_loss(padded_logits, torch.cat([target.new_full((1,), -100), target])[None])


def masked_softmax(vector, mask, dim=-1):
    """An NLP toolkit's masked softmax: multiply by the mask, renormalise with 1e-13 added to the sum so that a fully
    masked row gives zeros instead of NaN."""
    mask = mask.to(vector.dtype)
    result = torch.softmax(vector * mask, dim=dim)
    result = result * mask
    return result / (result.sum(dim=dim, keepdim=True) + 1e-13)


def flat_cross_entropy(logits, target):
    """A function that expects flattened [N, C] input: any leading axes are folded into N, per-example losses returned flat."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")


def numpy_mean_cross_entropy(logits, labels, axis=-1):
    """A scikit-style softmax cross-entropy on dense labels: the mean over the batch."""
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return -np.mean(np.sum(labels * logp, axis=axis))
