"""Knowledge distillation's classification terms as pure functions (Hinton et al. 2015): the soft-target KL
and the true-label loss over the rows that have labels. ``ClassificationTask``'s distillation hooks call
them; ``hftl.methods.distill.loss`` re-exports the first."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_target_loss", "true_label_loss"]


def soft_target_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, multi_label: bool = False
) -> torch.Tensor:
    """``T² · KL(teacher_T || student_T)``, zero when the logits are equal (Hinton et al. 2015).

    Single-label: softmax over classes, KL averaged over the batch. Multi-label: one Bernoulli per
    class (sigmoid), KL averaged over examples and classes. The ``T²`` factor keeps the gradient scale
    independent of the temperature. The teacher side is detached, so gradients reach only the student.
    """
    student = student_logits.float() / temperature
    teacher = teacher_logits.detach().float() / temperature
    if multi_label:
        p = torch.sigmoid(teacher)
        kl = F.binary_cross_entropy_with_logits(
            student, p, reduction="none"
        ) - F.binary_cross_entropy_with_logits(teacher, p, reduction="none")
        return kl.mean() * temperature**2
    kl = F.kl_div(
        F.log_softmax(student, dim=-1), F.log_softmax(teacher, dim=-1), log_target=True, reduction="batchmean"
    )
    return kl * temperature**2


def true_label_loss(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Cross-entropy (BCE for multi-label) over the rows that have labels; rows labelled -100 (hidden by
    ``--label_fraction``) only learn from the teacher. Zero, not NaN, for a batch without labels."""
    if multi_label:
        hidden = (labels == -100).all(dim=-1)
        if hidden.any():  # multi-hot rows of -100: hidden (the mean over the others, as without them)
            if hidden.all():
                return logits.sum() * 0.0
            logits, labels = logits[~hidden], labels[~hidden]
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    labelled = labels != -100
    if not labelled.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[labelled].float(), labels[labelled])
