"""Knowledge distillation (``--method distill``): the method, its loss, the teacher and the trainer.

:func:`hftl.distill` is the Python entry point.
"""

from .._student import kept_layer_indices, truncate_layers
from .loss import distillation_loss, hidden_state_loss, soft_target_loss
from .method import Distillation
from .trainer import DistillationTrainer

__all__ = [
    "Distillation",
    "DistillationTrainer",
    "distillation_loss",
    "hidden_state_loss",
    "soft_target_loss",
    "kept_layer_indices",
    "truncate_layers",
]
