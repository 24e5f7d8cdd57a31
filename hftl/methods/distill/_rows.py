"""The distillation training set: labelled and unlabelled rows together, and a column added to it."""

from __future__ import annotations

from datasets import ClassLabel, Value, concatenate_datasets

__all__ = ["with_unlabelled", "add_column"]


def with_unlabelled(train, unlabelled):
    """Labelled and unlabelled training rows together; the unlabelled carry label -100 (no hard loss): a
    class id, or every value of a row's numbers (regression targets, multi-hot classes)."""
    feature = train.features["labels"]
    if isinstance(feature, ClassLabel) or (isinstance(feature, Value) and "int" in feature.dtype):
        train, unlabelled = (split.cast_column("labels", Value("int64")) for split in (train, unlabelled))
        feature = Value("int64")
    unlabelled = unlabelled.map(
        lambda batch: {"labels": [_hidden(value) for value in batch["labels"]]},
        batched=True,
        desc="unlabelled rows",
    )
    return concatenate_datasets([train, unlabelled.cast_column("labels", feature)])


def _hidden(value):
    """``value`` with every number -100 (the label no loss counts), in the same shape."""
    return [_hidden(item) for item in value] if isinstance(value, list) else -100


def add_column(dataset, name: str, values: list):
    """``add_column`` that keeps an on-the-fly transform: ``Dataset.add_column`` flattens the indices
    *through* the transform, which would decode and store every image."""
    transform = (
        dataset.format["format_kwargs"].get("transform") if dataset.format["type"] == "custom" else None
    )
    if transform is None:
        return dataset.add_column(name, values)
    return dataset.with_format(None).add_column(name, values).with_transform(transform)
