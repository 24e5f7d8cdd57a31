"""Finding the label and input columns: given explicitly, or inferred from common names."""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset, Value

from ..errors import DataError

__all__ = [
    "LABEL_COLUMN_NAMES",
    "TEXT_COLUMN_NAMES",
    "TEXT_PAIR_NAMES",
    "IMAGE_COLUMN_NAMES",
    "find_label_column",
    "find_text_columns",
]

LABEL_COLUMN_NAMES = (
    "label", "labels", "category", "class", "target", "sentiment", "stars", "rating", "topic", "intent", "tags",
)  # fmt: skip
TEXT_COLUMN_NAMES = (
    "text", "sentence", "content", "review", "document", "body", "tweet", "comment", "message", "utterance",
)  # fmt: skip
IMAGE_COLUMN_NAMES = (
    "image",
    "img",
    "picture",
    "photo",
    "path",
    "file",
    "filename",
    "filepath",
    "image_path",
)
TEXT_PAIR_NAMES = (
    ("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
    ("question", "sentence"), ("text_a", "text_b"), ("text1", "text2"),
)  # fmt: skip


def _listing(columns: Sequence[str]) -> str:
    return ", ".join(columns) if columns else "(none)"


def _check_exists(kind: str, names: Sequence[str], columns: Sequence[str], flag: str) -> None:
    for name in names:
        if name not in columns:
            raise DataError(
                f"{kind} column '{name}' not found; columns are: {_listing(columns)}. Fix {flag}."
            )


def find_label_column(dataset: Dataset, given: str | None, names: Sequence[str] = LABEL_COLUMN_NAMES) -> str:
    """The label column: ``given`` if set (and present), else the one column with a label-like name (one
    of ``names``, lower case: the task's ``label_column_names``)."""
    columns = dataset.column_names
    if given:
        _check_exists("Label", [given], columns, "--label_column")
        return given
    found = [name for name in columns if name.lower() in names]
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(
            f"No label column found; columns are: {_listing(columns)}. Pass --label_column NAME"
            + (
                ". The first line reads as data, not names: add a header line, e.g. text,label."
                if _looks_like_data(columns)
                else "."
            )
        )
    raise DataError(f"Several columns could be the label ({_listing(found)}); pass --label_column NAME.")


def _looks_like_data(columns: Sequence[str]) -> bool:
    """Column names that read as a sentence or a number: a file without a header line lent its first row."""
    return any(
        len(name.split()) >= 3 or len(name) > 40 or name.strip().lstrip("-").replace(".", "", 1).isdigit()
        for name in columns
    )


def _is_string(dataset: Dataset, name: str) -> bool:
    feature = dataset.features.get(name)
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def find_text_columns(dataset: Dataset, given: Sequence[str] | None, label_column: str) -> list[str]:
    """One text column, or two for sentence pairs: ``given`` if set, else inferred from the names.

    Inference takes a known pair (``sentence1``/``sentence2``, ``premise``/``hypothesis``, ...), else the
    one column with a text-like name, else the only string column besides the label.
    """
    columns = dataset.column_names
    if given:
        if len(given) > 2:
            raise DataError(f"--text_column takes one column or a pair, got {len(given)}: {_listing(given)}.")
        _check_exists("Text", given, columns, "--text_column")
        if label_column in given:
            raise DataError(
                f"Column '{label_column}' is both the label and a text column; fix --text_column."
            )
        return list(given)
    lowered = {name.lower(): name for name in columns}
    for first, second in TEXT_PAIR_NAMES:
        if first in lowered and second in lowered:
            return [lowered[first], lowered[second]]
    named = [name for name in columns if name.lower() in TEXT_COLUMN_NAMES and name != label_column]
    if len(named) == 1:
        return named
    if len(named) > 1:
        raise DataError(
            f"Several columns could be the text ({_listing(named)}); pass --text_column NAME "
            "(or two comma-separated names for a sentence pair)."
        )
    strings = [name for name in columns if name != label_column and _is_string(dataset, name)]
    if len(strings) == 1:
        return strings
    raise DataError(
        f"No text column found; columns are: {_listing(columns)}. Pass --text_column NAME "
        "(or two comma-separated names for a sentence pair)."
    )
