"""Collated batches: the target columns, and the rest, which the model's forward() takes."""

from __future__ import annotations

__all__ = ["TARGET_COLUMNS", "model_inputs"]

TARGET_COLUMNS = ("labels", "teacher_logits")  # the true labels, distillation's cached teacher logits


def model_inputs(batch: dict, device=None) -> dict:
    """``batch`` without its target columns (moved to ``device`` when given)."""
    return {
        key: value if device is None else value.to(device)
        for key, value in batch.items()
        if key not in TARGET_COLUMNS
    }
