"""Trainer whose training loss is the distillation loss; evaluation reports the student's own loss."""

from __future__ import annotations

import torch
from torch import nn

from ...techniques.soft_targets import soft_target_loss, true_label_loss
from ...trainer import HftlTrainer
from .loss import hidden_state_loss
from .teacher import teacher_inputs

__all__ = ["DistillationTrainer", "PROJECTION_NAME"]

# a learned student-to-teacher width map for hidden-state matching lives on the student while it trains
# (so DDP syncs it and the optimizer sees it) and is removed before saving
PROJECTION_NAME = "hftl_hidden_projection"


class DistillationTrainer(HftlTrainer):
    """``HftlTrainer`` with a frozen teacher; the training loss is ``alpha · hard + (1 - alpha) · soft``, both
    terms the task's (``Task.distill_hard_loss``, ``Task.distill_soft_loss``).

    Args:
        teacher: The teacher model (eval mode, no gradients); ``None`` when every training row carries
            cached ``teacher_logits``.
        alpha: Weight of the true-label loss.
        temperature: Softmax temperature of the soft targets.
        task: The task whose losses these are (``Task.distill_view``; default: classification, single- or
            multi-label from the labels' shape).
        hidden_weight: Weight of the hidden-state MSE (0 turns it off).
        layer_map: ``(student, teacher)`` indices into ``output_hidden_states`` for that MSE.
        pixel_map: Turns the student's pixels into the teacher's (images whose mean/std or size
            differ; see :class:`~hftl.methods.distill.teacher.PixelMap`); ``None`` for text or equal settings.
    """

    def __init__(
        self,
        *args,
        teacher=None,
        alpha=0.5,
        temperature=2.0,
        task=None,
        hidden_weight=0.0,
        layer_map=None,
        pixel_map=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.teacher = teacher
        self.alpha, self.temperature = alpha, temperature
        self.task = task if task is not None else _ClassProbabilities()
        self.hidden_weight, self.layer_map, self.pixel_map = hidden_weight, layer_map or [], pixel_map
        if teacher is not None:
            dtype = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
            if dtype is not None and self.args.device.type == "cuda":
                teacher.to(dtype)  # the training precision: half the memory, same autocast math
            teacher.to(self.args.device)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "teacher_logits" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "teacher_logits"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        cached = inputs.pop("teacher_logits", None)
        if not model.training:  # evaluation: the student's task loss, comparable with other methods
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        want_hidden = self.hidden_weight > 0
        labels = inputs.pop("labels")
        outputs = model(**inputs, output_hidden_states=want_hidden)
        if (
            self.class_loss is not None
        ):  # the task's planned loss: class weights, label smoothing, standardised MSE
            hard = self.class_loss(outputs.logits, labels)
        else:
            hard = self.task.distill_hard_loss(outputs.logits, labels)
        teacher_outputs = None
        if cached is None or want_hidden:
            with torch.no_grad():
                teacher_outputs = self.teacher(
                    **teacher_inputs(inputs, self.pixel_map), output_hidden_states=want_hidden
                )
        teacher = cached if cached is not None else teacher_outputs.logits
        soft = self.task.distill_soft_loss(
            outputs.logits, teacher.to(outputs.logits.device), labels, self.temperature
        )
        loss = self.alpha * hard + (1.0 - self.alpha) * soft
        if want_hidden:
            projection = getattr(self.accelerator.unwrap_model(model), PROJECTION_NAME, None)
            loss = loss + self.hidden_weight * hidden_state_loss(
                outputs.hidden_states,
                teacher_outputs.hidden_states,
                self.layer_map,
                inputs.get("attention_mask"),
                projection,
            )
        return (loss, outputs) if return_outputs else loss


class _ClassProbabilities:
    """The losses of a trainer built without a task: classification's, single- or multi-label by the labels'
    shape (multi-hot rows shaped like the logits), as ``ClassificationTask`` computes them."""

    def distill_soft_loss(self, student_logits, teacher_logits, labels, temperature) -> torch.Tensor:
        return soft_target_loss(
            student_logits, teacher_logits, temperature, labels.dim() == student_logits.dim()
        )

    def distill_hard_loss(self, logits, labels) -> torch.Tensor:
        return true_label_loss(logits, labels, labels.dim() == logits.dim())


def add_projection(student: nn.Module, student_width: int, teacher_width: int) -> None:
    """Attach the learned width map for hidden-state matching (identity-free: a plain Linear)."""
    setattr(student, PROJECTION_NAME, nn.Linear(student_width, teacher_width))


def remove_projection(student: nn.Module) -> None:
    if hasattr(student, PROJECTION_NAME):
        delattr(student, PROJECTION_NAME)
