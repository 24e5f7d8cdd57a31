"""Using a saved model: load it as its run evaluated it (:func:`load_saved_model`), predict new inputs
(``hftl predict``) and score it on labelled data (``hftl evaluate``)."""

from .saved import SavedModel, load_saved_model

__all__ = ["SavedModel", "load_saved_model"]
