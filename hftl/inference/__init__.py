"""Using a saved model: load it as its run evaluated it (:func:`load_saved_model`), predict new inputs
(:func:`predict`, ``hftl predict``) and score it on labelled data (:func:`evaluate`, ``hftl evaluate``)."""

from .evaluate import EvaluationResult, evaluate
from .predict import predict
from .saved import SavedModel, load_saved_model

__all__ = ["EvaluationResult", "SavedModel", "evaluate", "load_saved_model", "predict"]
