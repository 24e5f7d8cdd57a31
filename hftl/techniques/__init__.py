"""Transfer-learning techniques layered on Trainer: freezing schedules, discriminative learning rates,
class weights, regularisation and the LR finder (their options: ``hftl.options.techniques``)."""

from ..options.techniques import TechniqueOptions  # re-exported: the switches this package implements

__all__ = ["TechniqueOptions"]
