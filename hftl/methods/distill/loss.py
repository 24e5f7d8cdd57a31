"""Knowledge-distillation losses as small pure functions (Hinton et al. 2015; hidden states as in TinyBERT)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["distillation_loss", "soft_target_loss", "hidden_state_loss"]


def soft_target_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, multi_label: bool = False
) -> torch.Tensor:
    """``T² · KL(teacher_T || student_T)``, zero when the logits are equal.

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


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    hard_loss: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
    multi_label: bool = False,
) -> torch.Tensor:
    """``alpha · hard_loss + (1 - alpha) · T² · KL(softmax(teacher/T) || softmax(student/T))``.

    Args:
        student_logits: ``(batch, classes)``.
        teacher_logits: ``(batch, classes)``, in the student's label order.
        hard_loss: The student's loss on the true labels (cross-entropy, or BCE for multi-label), as the
            model computes it.
        alpha: Weight of the true-label loss; ``1 - alpha`` goes to the teacher's soft targets.
        temperature: Softens both distributions; higher passes more of the teacher's "dark knowledge".
    """
    soft = soft_target_loss(student_logits, teacher_logits, temperature, multi_label)
    return alpha * hard_loss + (1.0 - alpha) * soft


def hidden_state_loss(
    student_states: tuple[torch.Tensor, ...],
    teacher_states: tuple[torch.Tensor, ...],
    layer_map: list[tuple[int, int]],
    attention_mask: torch.Tensor | None = None,
    projection: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Mean squared error between mapped hidden states, averaged over the mapped layer pairs.

    Args:
        student_states: The student's ``output_hidden_states`` (index 0 is the embeddings).
        teacher_states: The teacher's ``output_hidden_states``.
        layer_map: ``(student_index, teacher_index)`` pairs into those tuples.
        attention_mask: ``(batch, tokens)``; padding positions are left out of the mean.
        projection: Maps student width to teacher width when they differ (a learned ``nn.Linear``).
    """
    total = 0.0
    for student_index, teacher_index in layer_map:
        student = student_states[student_index].float()
        teacher = teacher_states[teacher_index].detach().float()
        if projection is not None:
            student = projection(student)
        error = (student - teacher).pow(2).mean(dim=-1)
        if attention_mask is not None and error.dim() == 2:
            mask = attention_mask.to(error.dtype)
            total = total + (error * mask).sum() / mask.sum().clamp(min=1)
        else:
            total = total + error.mean()
    return total / max(len(layer_map), 1)
