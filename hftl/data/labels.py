"""Label maps built once from the training split in a deterministic order (classification tasks' hooks)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass

from datasets import ClassLabel, Dataset, List, Sequence, Value

from .._log import log
from ..errors import DataError

__all__ = [
    "LabelSpace",
    "build_label_space",
    "clean_label_names",
    "encode_labels",
    "is_unlabelled",
    "is_multi_label",
    "MISSING_VALUE_WORDS",
    "missing_value_labels",
]

# Invisible characters a copy-paste leaves in a label. Zero-width space, word joiner and BOM carry no
# meaning anywhere; the zero-width (non-)joiners do inside words (Persian, Indic scripts, emoji), so those
# are removed only at the ends, with the whitespace.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff"))
_EDGES = " \t\n\r\f\v\u00a0\u200c\u200d"
# What pandas reads as missing by default (pandas._libs.parsers.STR_NA_VALUES, less ""): hftl's CSVs keep
# them as text so that a class named "None" survives; missing_value_labels decides per label column.
MISSING_VALUE_WORDS = frozenset(
    {"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
     "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip


@dataclass(frozen=True)
class LabelSpace:
    """The classes a model predicts, in id order.

    Args:
        names: Class names; the index is the class id.
        multi_label: Each example carries a set of these classes (sigmoid per class, BCE loss) rather
            than exactly one (softmax, cross-entropy).

    Example:
        >>> LabelSpace(["neg", "pos"]).label2id
        {'neg': 0, 'pos': 1}
    """

    names: list[str]
    multi_label: bool = False

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)


def _clean(name: str) -> str:
    return name.translate(_INVISIBLE).strip(_EDGES).strip()


def _is_strings(feature) -> bool:
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def clean_label_names(splits: dict[str, Dataset], column: str) -> dict[str, Dataset]:
    """Strip whitespace and zero-width characters around (and zero-width spaces inside) string labels,
    in every split alike, counted in one log line: ``'pos '`` is the class ``pos``, not a class of its own."""
    changed, example = {}, None
    for name, split in splits.items():
        feature = split.features[column]
        inner = getattr(feature, "feature", None) if isinstance(feature, (List, Sequence)) else None
        if not (_is_strings(feature) or _is_strings(inner)):
            continue
        values = split[column]
        flat = [value for row in values for value in (row or [])] if inner is not None else values
        dirty = [value for value in flat if isinstance(value, str) and _clean(value) != value]
        if not dirty:
            continue
        changed[name], example = len(dirty), example or dirty[0]

        def clean(batch, nested=inner is not None):
            rows = batch[column]
            if nested:
                return {column: [[_clean(v) for v in row] if row is not None else None for row in rows]}
            return {column: [_clean(v) if isinstance(v, str) else v for v in rows]}

        splits[name] = split.map(clean, batched=True, desc=f"labels ({name})")
    if changed:
        counts = ", ".join(f"{name} {count}" for name, count in changed.items())
        log(
            f"stripped whitespace and zero-width characters from {sum(changed.values())} label(s) ({counts}), "
            f"e.g. {example!r} -> {_clean(example)!r}"
        )
    return splits


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def missing_value_labels(splits: dict[str, Dataset], column: str) -> dict[str, Dataset]:
    """R's ``NA`` (``null``, ``#N/A`` ...) among numeric labels marks a row without a label, as pandas
    would read it: refused with the count in train (or a partly labelled split); a split labelled only
    with such words becomes an unlabelled split (None). Among word labels such a word is a class name (a
    class called ``None``): kept, with one log line."""
    words_in: dict[str, Counter] = {}
    other_texts, numeric_dtype = set(), False
    for name, split in splits.items():
        feature = split.features.get(column)
        if isinstance(feature, Value) and not _is_strings(feature):
            numeric_dtype = numeric_dtype or feature.dtype.startswith(("int", "uint", "float"))
            continue
        if not _is_strings(feature):
            continue
        distinct = {value for value in split.unique(column) if value is not None}
        found = {value for value in distinct if _clean(value) in MISSING_VALUE_WORDS}
        other_texts |= {_clean(value) for value in distinct - found}
        if found:
            words_in[name] = Counter(value for value in split[column] if value in found)
    if not words_in:
        return splits
    numbers = all(_is_number(text) for text in other_texts) and (bool(other_texts) or numeric_dtype)
    total = sum(words_in.values(), Counter())
    shown = ", ".join(f"{_clean(word)!r} {count}" for word, count in total.most_common(4))
    if not numbers:
        log(
            f"label column '{column}': {sum(total.values())} row(s) labelled with a word pandas reads as missing "
            f"({shown}) are kept as a class of that name, since the other labels are words; drop those rows "
            "if they mean 'no label'"
        )
        return splits
    for name, found in words_in.items():
        count, split = sum(found.values()), splits[name]
        if name == "train" or count + sum(1 for value in split[column] if value is None) < len(split):
            where = "training rows" if name == "train" else f"rows of the {name} split"
            marks = ", ".join(repr(_clean(word)) for word in found)
            raise DataError(
                f"{count} {where} have no label ({marks} in label column '{column}' marks a missing value, "
                "as its other labels are numbers); drop or label them."
            )
        splits[name] = split.map(  # all missing: an unlabelled split, as an empty field would make it
            lambda batch: {column: [None for _ in batch[column]]}, batched=True, desc=f"labels ({name})"
        )
    return splits


def _check_look_alikes(counts: Counter, column: str) -> None:
    """Classes that are one text apart only in case, or in Unicode encoding (full-width letters,
    ligatures, invisible format characters inside: the same after NFKC), get a word before training.

    Case-only differences stay separate classes, named with their counts in one log line: ``C#``/``c#``
    (keys), ``CO``/``Co`` (chemistry), ``IT``/``it`` are real classes; single characters (``A``/``a``,
    letter recognition) are not even logged. Encoding differences are refused: such a pair is almost
    surely one class typed on two keyboards, and which spelling to keep is the data owner's call."""
    groups: dict[str, list[str]] = {}
    normal: dict[str, str] = {}
    for name in counts:
        bare = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")  # format chars: ZWJ, ZWNJ ...
        normal[name] = unicodedata.normalize("NFKC", bare)
        groups.setdefault(normal[name].casefold(), []).append(name)
    alike = [sorted(group) for group in groups.values() if len(group) > 1]
    # casefold() calls a ligature (ﬁ) a case variant too: a name that normalising changes is the tell
    encoded = [group for group in alike if any(normal[name] != name for name in group)]
    if encoded:
        pairs = "; ".join(" / ".join(repr(name) for name in group) for group in encoded[:3])
        raise DataError(
            f"Label column '{column}' has classes that are the same text in two Unicode encodings ({pairs}"
            f"{' ...' if len(encoded) > 3 else ''}: full-width letters, ligatures or invisible characters); "
            "write each class one way in the data (unicodedata.normalize('NFKC', ...)), or rename one."
        )
    cased = [group for group in alike if len(group[0]) > 1]
    if cased:
        shown = "; ".join(" / ".join(f"{name!r} {counts[name]}" for name in group) for group in cased[:5])
        log(
            f"label column '{column}': {len(cased)} group(s) of classes differ only in case and train as "
            f"separate classes ({shown}{' ...' if len(cased) > 5 else ''}); if one is a class written two "
            "ways, write it one way in the data"
        )


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


def is_multi_label(feature, delimiter: str | None) -> bool:
    """A column of lists, or of strings split by ``--label_delimiter``, gives several labels per row."""
    if isinstance(feature, (List, Sequence)):
        return True
    return bool(delimiter) and isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def _label_sets(split: Dataset, column: str, delimiter: str | None, split_name: str) -> list[list[str]]:
    """Each row's labels as strings (class names of a ``ClassLabel`` list, split strings, ...)."""
    feature = split.features[column]
    inner = getattr(feature, "feature", None)
    names = inner.names if isinstance(inner, ClassLabel) else None
    if isinstance(inner, Value) and inner.dtype.startswith("float"):
        raise DataError(
            f"Label column '{column}' holds lists of numbers; hftl reads them as label names, not as "
            'multi-hot vectors. Write each row\'s label names, e.g. ["sport", "politics"].'
        )
    sets = []
    for index, value in enumerate(split[column]):
        if value is None:
            raise DataError(
                f"Row {index} of the {split_name} split has no value in label column '{column}'; use an "
                "empty list (or empty string) for 'no label', or drop the row."
            )
        if isinstance(value, str):
            value = [_clean(part) for part in value.split(delimiter)] if delimiter else [value]
            value = [part for part in value if part]
        if not isinstance(value, (list, tuple)) or any(isinstance(item, (list, dict)) for item in value):
            raise DataError(
                f"Label column '{column}' row {index} is {value!r}; multi-label rows need a list of names."
            )
        sets.append([names[item] if names else str(_key(item)) for item in value])
    return sets


def _multi_label_space(train: Dataset, column: str, delimiter: str | None) -> LabelSpace:
    sets = _label_sets(train, column, delimiter, "train")
    distinct = {name for labels in sets for name in labels}
    if len(distinct) < 2:
        raise DataError(
            f"Multi-label column '{column}' has {len(distinct)} distinct label(s) in train; a classifier "
            "needs at least 2."
        )
    _check_look_alikes(Counter(name for row in sets for name in row), column)
    numeric = all(name.lstrip("-").isdigit() for name in distinct)
    return LabelSpace(sorted(distinct, key=int if numeric else str), multi_label=True)


def build_label_space(train: Dataset, column: str, delimiter: str | None = None) -> LabelSpace:
    """Classes from the training split: a ``ClassLabel``'s own names, else the sorted distinct values.

    A column of lists, or of strings split by ``delimiter``, gives a multi-label space.
    """
    feature = train.features[column]
    if is_multi_label(feature, delimiter):
        return _multi_label_space(train, column, delimiter)
    if isinstance(feature, ClassLabel):
        return LabelSpace(list(feature.names))
    if not isinstance(feature, Value):
        raise DataError(
            f"Label column '{column}' holds {'mapping' if isinstance(feature, dict) else type(feature).__name__} values; classification needs one "
            "label per row, or a list of label names per row (multi-label). Pick another --label_column."
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
    if any(isinstance(key, str) for key in keys):
        _check_look_alikes(Counter(value for value in train[column] if isinstance(value, str)), column)
    if len(keys) < 2:
        raise DataError(
            f"Label column '{column}' has only {len(keys)} distinct value in train; a classifier needs "
            "at least 2 classes."
        )
    return LabelSpace([str(key) for key in keys])


def _unseen_error(split_name: str, unseen: list, labels: LabelSpace) -> DataError:
    listing = ", ".join(repr(value) for value in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
    return DataError(
        f"The {split_name} split has labels the train split lacks ({listing}); the model could never "
        f"predict them. Add training examples for them or drop those rows. Train labels: "
        f"{', '.join(labels.names[:10])}{' ...' if len(labels) > 10 else ''}."
    )


def _encode_multi_label(
    split: Dataset, split_name: str, column: str, labels: LabelSpace, delimiter
) -> Dataset:
    """Replace ``column`` by multi-hot float ``labels`` (what BCEWithLogitsLoss takes)."""
    sets = _label_sets(split, column, delimiter, split_name)
    known = labels.label2id
    unseen = sorted({name for row in sets for name in row if name not in known})
    if unseen:
        raise _unseen_error(split_name, unseen, labels)

    def encode(batch, indices):
        rows = []
        for index in indices:
            hot = [0.0] * len(labels)
            for name in sets[index]:
                hot[known[name]] = 1.0
            rows.append(hot)
        return {"labels": rows}

    encoded = split.map(
        encode, with_indices=True, batched=True, remove_columns=[column], desc=f"labels ({split_name})"
    )
    return encoded.cast_column("labels", List(Value("float32")))


def encode_labels(
    split: Dataset, split_name: str, column: str, labels: LabelSpace, delimiter: str | None = None
) -> Dataset:
    """Replace ``column`` by integer ``labels`` (a ``ClassLabel``), or multi-hot vectors for a multi-label
    space; refuse values train doesn't have."""
    if labels.multi_label:
        return _encode_multi_label(split, split_name, column, labels, delimiter)
    feature = split.features[column]
    if is_multi_label(feature, delimiter):
        raise DataError(
            f"The {split_name} split holds lists in label column '{column}' but train holds single labels."
        )
    known = labels.label2id
    values = _distinct(split, column)
    if isinstance(feature, ClassLabel):
        # datasets stores "no label" as -1 and doesn't range-check ids read back from parquet/arrow
        outside = sorted(
            value for value in values if value is not None and not 0 <= value < feature.num_classes
        )
        if outside:
            count = sum(1 for value in split[column] if value in set(outside))
            if outside == [-1]:
                raise DataError(
                    f"{count} rows of the {split_name} split have label -1 (no label) in label column "
                    f"'{column}'; drop or label them."
                )
            raise DataError(
                f"{count} rows of the {split_name} split have label ids {', '.join(map(str, outside[:5]))} beyond "
                f"the {feature.num_classes} class names of label column '{column}' ({', '.join(feature.names[:5])}); "
                "drop those rows or fix their ids."
            )
    if None in values:
        count = sum(1 for value in split[column] if value is None)
        raise DataError(
            f"{count} rows of the {split_name} split have no value in label column '{column}'; drop or fill them."
        )
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
    for value in values:
        if lookup is not None:
            ok = lookup.get(value) is not None
            shown = to_name.get(value, value)
        else:
            ok = value is not None and str(_key(value)) in known
            shown = value
        if not ok:
            unseen.append(shown)
    if unseen:
        raise _unseen_error(split_name, unseen, labels)

    def encode(batch):
        if lookup is not None:
            return {"labels": [lookup[value] for value in batch[column]]}
        return {"labels": [known[str(_key(value))] for value in batch[column]]}

    encoded = split.map(encode, batched=True, remove_columns=[column], desc=f"labels ({split_name})")
    return encoded.cast_column("labels", ClassLabel(names=labels.names))
