"""Hyperparameter search: trials (each one a single fine-tuning run) over a search space."""

__all__: list[str] = []
