"""Labelled data other than the run's own, read for a saved model: one split of a file, folder, built-in
or Hub dataset, checked as training checks a split and encoded in the model's label space."""

from __future__ import annotations

import re
from dataclasses import replace

from datasets import Dataset

from ..data.columns import find_label_column
from ..data.labels import clean_label_names, is_unlabelled, missing_value_labels
from ..data.loading import load_raw_dataset
from ..errors import DataError

__all__ = ["labelled_split"]

# the messages encode_labels / check_tag_set give for labels outside the label space; the listing is kept
_UNSEEN = re.compile(
    r"has (?:labels the train split lacks \((?P<a>.*)\)|tag\(s\) (?P<b>.*) that the train split lacks)"
)


def _present(rows: Dataset, names: str | None) -> str | None:
    """``names`` (one column, or comma-separated ones) when ``rows`` has them all, else None."""
    if not names:
        return None
    wanted = [name.strip() for name in names.split(",")]
    return names if all(name in rows.column_names for name in wanted) else None


def labelled_split(saved, data: str, split: str, *, text_column=None, label_column=None) -> Dataset:
    """``split`` of ``data`` (a single file is all one split) with its inputs and ``labels`` encoded in
    ``saved``'s label space; the run's column names are used where the data has them."""
    task = saved.task
    raw, source = load_raw_dataset(str(data), token_text=getattr(task, "reads_token_text", False))
    if split in raw:
        rows = raw[split]
    elif len(raw) == 1:  # one file: the file is the data to evaluate, whatever split it was read as
        rows = next(iter(raw.values()))
    else:
        raise DataError(f"{source} has no split '{split}' (splits: {', '.join(raw)}); pick one with --split.")
    if len(rows) == 0:
        raise DataError(f"The {split} split of {source} has no rows; evaluate on labelled rows.")
    run = saved.data_args
    data_args = replace(
        run,
        dataset=str(data),
        text_column=text_column or _present(rows, run.text_column),
        image_column=_present(rows, run.image_column),
        label_column=label_column or _present(rows, run.label_column),
    )
    rows = task.combine_label_columns({split: rows}, data_args)[split]  # several regression targets
    column = find_label_column(rows, data_args.label_column, task.label_column_names)
    inputs = task.find_inputs(rows, column, data_args)
    rows = missing_value_labels({split: rows}, column)[split]
    if is_unlabelled(rows, column):
        raise DataError(
            f"The {split} split of {source} has no labels (all missing or -1); evaluate on labelled rows."
        )
    rows = task.check_inputs(split, rows.select_columns([*inputs, column]), inputs, data_args)
    rows = clean_label_names({split: rows}, column)[split]
    name = split if split != "train" else "evaluation"  # "train" would skip the tag checks of other splits
    try:
        return task.encode_labels(rows, name, column, saved.labels, data_args)
    except DataError as error:
        unseen = _UNSEEN.search(str(error))
        if unseen is None:
            raise
        names = saved.labels.names
        raise DataError(
            f"{source} has labels the model doesn't know ({unseen['a'] or unseen['b']}); it predicts "
            f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}. Drop those rows, or evaluate a model "
            "trained on them."
        ) from None
