"""Knowledge-distillation losses as small pure functions (Hinton et al. 2015; hidden states as in TinyBERT).

Each task owns its soft-target and true-label terms (``Task.distill_soft_loss`` / ``distill_hard_loss``);
classification's, :func:`soft_target_loss`, is re-exported here from ``hftl.techniques.soft_targets``.
"""

from __future__ import annotations

import torch

from ...techniques.soft_targets import soft_target_loss

__all__ = ["distillation_loss", "soft_target_loss", "hidden_state_loss"]


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
