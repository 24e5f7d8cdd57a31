"""Knowledge distillation pieces: the loss, the truncated student, the teacher, the trainer.

``--method distill`` (:mod:`hftl.methods.distill`) puts them together; :func:`hftl.distill` is the
Python entry point.
"""

from .loss import distillation_loss, hidden_state_loss, soft_target_loss
from .student import kept_layer_indices, truncate_layers

__all__ = [
    "distillation_loss",
    "hidden_state_loss",
    "soft_target_loss",
    "kept_layer_indices",
    "truncate_layers",
]
