"""Transfer-learning techniques layered on Trainer: freezing schedules, discriminative learning rates,
class weights, regularisation, the LR finder and hyperparameter search."""

from ..options.techniques import TechniqueOptions  # re-exported: the switches this package implements

__all__ = ["TechniqueOptions"]
