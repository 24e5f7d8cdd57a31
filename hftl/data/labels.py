"""Label maps, built once from the training split in a deterministic order."""

from __future__ import annotations

from dataclasses import dataclass

from datasets import ClassLabel, Dataset, Value

from ..errors import DataError

__all__ = ["LabelSpace", "build_label_space", "encode_labels", "is_unlabelled"]


@dataclass(frozen=True)
class LabelSpace:
    """The classes a model predicts, in id order.

    Args:
        names: Class names; the index is the class id.

    Example:
        >>> LabelSpace(["neg", "pos"]).label2id
        {'neg': 0, 'pos': 1}
    """

    names: list[str]

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)


def _key(value):
    """Numbers compare as numbers (so 2 sorts before 10), everything else as its string."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _distinct(split: Dataset, column: str) -> list:
    return split.unique(column)


def is_unlabelled(split: Dataset, column: str) -> bool:
    """True for a split whose labels are all missing (``None``) or ``-1`` (GLUE-style test sets)."""
    if len(split) == 0 or not isinstance(split.features[column], (ClassLabel, Value)):
        return False
    values = set(_distinct(split, column))
    return values <= {None, -1}


def build_label_space(train: Dataset, column: str) -> LabelSpace:
    """Classes from the training split: a ``ClassLabel``'s own names, else the sorted distinct values."""
    feature = train.features[column]
    if isinstance(feature, ClassLabel):
        return LabelSpace(list(feature.names))
    if not isinstance(feature, Value):
        raise DataError(
            f"Label column '{column}' holds {type(feature).__name__} values (lists or mappings); "
            "single-label classification needs one label per row. Pick another --label_column."
        )
    values = _distinct(train, column)
    missing = sum(1 for value in train[column] if value is None) if None in values else 0
    if missing:
        raise DataError(
            f"{missing} training rows have no value in label column '{column}'; drop or fill them."
        )
    fractional = [value for value in values if isinstance(value, float) and not value.is_integer()]
    if fractional:
        raise DataError(
            f"Label column '{column}' holds fractional numbers (e.g. {fractional[0]}), which looks like "
            "regression; hftl trains classifiers, so use class labels."
        )
    keys = sorted({_key(value) for value in values}, key=lambda k: (isinstance(k, str), k))
    if len(keys) < 2:
        raise DataError(
            f"Label column '{column}' has only {len(keys)} distinct value in train; a classifier needs "
            "at least 2 classes."
        )
    return LabelSpace([str(key) for key in keys])


def encode_labels(split: Dataset, split_name: str, column: str, labels: LabelSpace) -> Dataset:
    """Replace ``column`` by integer ``labels`` (a ``ClassLabel``); refuse values train doesn't have."""
    feature = split.features[column]
    known = labels.label2id
    if isinstance(feature, ClassLabel):
        if list(feature.names) != labels.names:
            # same names, maybe another order: go through the names
            lookup = {index: known.get(name) for index, name in enumerate(feature.names)}
        else:
            lookup = {index: index for index in range(len(labels))}
        to_name = dict(enumerate(feature.names))
    else:
        lookup, to_name = None, {}
    unseen = []
    for value in _distinct(split, column):
        if lookup is not None:
            ok = lookup.get(value) is not None
            shown = to_name.get(value, value)
        else:
            ok = value is not None and str(_key(value)) in known
            shown = value
        if not ok:
            unseen.append(shown)
    if unseen:
        listing = ", ".join(repr(value) for value in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
        raise DataError(
            f"The {split_name} split has labels the train split lacks ({listing}); the model could never "
            f"predict them. Add training examples for them or drop those rows. Train labels: "
            f"{', '.join(labels.names[:10])}{' ...' if len(labels) > 10 else ''}."
        )

    def encode(batch):
        if lookup is not None:
            return {"labels": [lookup[value] for value in batch[column]]}
        return {"labels": [known[str(_key(value))] for value in batch[column]]}

    encoded = split.map(encode, batched=True, remove_columns=[column], desc=f"labels ({split_name})")
    return encoded.cast_column("labels", ClassLabel(names=labels.names))
