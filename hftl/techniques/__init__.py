"""Transfer-learning techniques layered on Trainer: freezing schedules, discriminative learning rates,
class weights, regularisation, the LR finder and hyperparameter search."""

from .options import TechniqueOptions

__all__ = ["TechniqueOptions"]
