"""``hftl predict``: a saved model's predictions for new inputs (a data file, a folder of images, stdin),
as CSV or JSONL, one output row per input row in input order."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from datasets import ClassLabel, Dataset, List

from .._log import log
from ..data.columns import find_text_columns
from ..errors import ConfigError, DataError
from ..tasks import RegressionTask
from ..tasks.token_classification import TokenClassification
from ._inputs import ID_COLUMN, InputRows, find_problems, read_inputs
from ._records import classification_records, regression_records, render, token_records
from ._run import make_trainer
from .saved import SavedModel, load_saved_model

__all__ = ["predict", "run_command", "FORMATS"]

FORMATS = ("csv", "jsonl")
_SHOWN_IDS = 10  # ids listed per kind of skipped row


def _output_format(output: str | None, fmt: str | None) -> str:
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"--format must be csv or jsonl (got {fmt!r}).")
    if output is None:
        return fmt or "csv"
    suffix = Path(output).suffix.lower().lstrip(".")
    if fmt:
        return fmt
    if suffix in FORMATS:
        return suffix
    raise ConfigError(
        f"Output file '{output}' has no .csv or .jsonl suffix; name it so, or pass --format csv|jsonl."
    )


def _check_output(output: str | None, overwrite: bool, saved_path: Path | None = None) -> None:
    if output is None:
        return
    path = Path(output).expanduser()
    if path.is_dir():
        raise ConfigError(f"--output '{output}' is a folder; pass a file name ending in .csv or .jsonl.")
    if path.exists() and not overwrite:
        raise ConfigError(
            f"Output file '{output}' already exists; pass --overwrite to replace it, or pick another name."
        )


def _input_columns(saved: SavedModel, inputs: InputRows, text_column, image_column) -> list[str]:
    """The columns the model reads; one line for input of the wrong kind or a missing column."""
    rows = inputs.rows
    image_model = saved.task.modality == "image"
    if inputs.kind == "images" and not image_model:
        raise DataError(
            f"{inputs.source} holds images, but the model reads text ({saved.task.name}); pass a CSV/TSV/JSON/"
            "JSONL/parquet file with a text column, or text on stdin."
        )
    if image_model and text_column:
        raise ConfigError(f"--text_column doesn't apply: the model ({saved.task.name}) reads images.")
    if not image_model and image_column:
        raise ConfigError(f"--image_column doesn't apply: the model ({saved.task.name}) reads text.")
    given = image_column if image_model else text_column
    if given:
        names = [name.strip() for name in given.split(",") if name.strip()]
        missing = [name for name in names if name not in rows.column_names]
        if missing:
            flag = "--image_column" if image_model else "--text_column"
            raise DataError(
                f"Column '{missing[0]}' not found in {inputs.source}; its columns are: "
                f"{', '.join(rows.column_names)}. Fix {flag}."
            )
        return names
    candidates = rows.remove_columns([c for c in rows.column_names if c.lower() == ID_COLUMN])
    try:
        try:
            return saved.input_columns(candidates, label_column=None)
        except DataError:
            if not isinstance(saved.task, TokenClassification):
                raise
            return find_text_columns(candidates, None, "")  # plain texts, split into words here
    except DataError as error:
        what = "an image column (image files or paths)" if image_model else "a text column"
        raise DataError(
            f"The model ({saved.task.name}) reads {what}, and {inputs.source} has none it can tell "
            f"(columns: {', '.join(rows.column_names)}): {str(error).split(';')[0]}. Pass "
            f"{'--image_column' if image_model else '--text_column'} NAME."
        ) from None


def _check_text(rows: Dataset, columns: list[str], source: str, token_task: bool) -> None:
    """Text columns hold text (token classification: text or word lists), not numbers or mappings."""
    for column in columns:
        value = rows[0][column]
        if not (isinstance(value, str) or (token_task and isinstance(value, list))):
            raise DataError(
                f"Column '{column}' of {source} holds {type(value).__name__} values, not text; pass the text "
                "column with --text_column."
            )


def _token_rows(rows: Dataset, column: str, saved: SavedModel) -> tuple[Dataset, list[list[str]]]:
    """Word lists (texts split on whitespace) with placeholder tags: the task's preprocessing aligns them
    to subwords, which marks each word's first subword, the one training scored."""
    words = [value.split() if isinstance(value, str) else list(value) for value in rows[column]]
    table = Dataset.from_dict({"tokens": words, "labels": [[0] * len(sentence) for sentence in words]})
    return table.cast_column("labels", List(ClassLabel(names=list(saved.labels.names)))), words


def _report_skipped(problems: dict[int, str], ids: list) -> None:
    by_kind: dict[str, list] = defaultdict(list)
    for index, why in sorted(problems.items()):
        by_kind[why].append(ids[index])
    for why, skipped in by_kind.items():
        shown = ", ".join(map(str, skipped[:_SHOWN_IDS])) + (" ..." if len(skipped) > _SHOWN_IDS else "")
        log(
            f"skipped {len(skipped)} row(s) with {why} (ids: {shown}); written with an empty label and an error"
        )


def predict(
    model: str | Path | SavedModel,
    inputs: Any,
    *,
    output: str | Path | None = None,
    all_scores: bool = False,
    threshold: float | None = None,
    batch_size: int = 32,
    text_column: str | None = None,
    image_column: str | None = None,
    format: str | None = None,  # noqa: A002 - the CLI flag's name
    overwrite: bool = False,
    trust_remote_code: bool = False,
    stdin: TextIO | None = None,
) -> list[dict]:
    """Predict every row of ``inputs`` with a saved model, in input order.

    Args:
        model: An hftl output folder, a merged or adapter folder, a Hub id, or a loaded :class:`SavedModel`.
        inputs: A CSV/TSV/JSON/JSONL/parquet file, a folder of images, ``"-"`` for stdin (one text per
            line, or JSONL), a list of texts or of row dicts, or a ``datasets.Dataset``.
        output: A ``.csv`` or ``.jsonl`` file to write (refused if it exists, unless ``overwrite``);
            None: nothing is written.
        all_scores: Add every class's probability (``scores``; CSV: ``score_<class>`` columns).
        threshold: Multi-label decision threshold (default: the one the run tuned and saved).
        batch_size: Rows per forward pass.
        text_column: The text column(s) (comma-separated for a pair; default: the run's, else inferred).
        image_column: The image column of a data file for an image model (default: inferred).
        format: ``csv`` or ``jsonl`` (default: from ``output``'s suffix, else csv).
        overwrite: Replace an existing ``output`` file.
        trust_remote_code: Run code shipped with a Hub model (off unless you trust it).
        stdin: The stream ``"-"`` reads (default ``sys.stdin``).

    Returns:
        One dict per input row: ``id``, the prediction (``label`` and ``score``; regression: one value per
        target; token classification: ``words``, ``tags``, ``entities``, ``score``), ``scores`` with
        ``all_scores``, and ``error`` for a row that couldn't be read (skipped, label empty).

    Example:
        >>> (row,) = predict("outputs/minilm-bbc", ["Shares fell sharply on Wall Street"])
        >>> row["label"], round(row["score"], 3)
        ('business', 0.981)
    """
    fmt = _output_format(None if output is None else str(output), format)
    _check_output(None if output is None else str(output), overwrite)
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1 (got {threshold}).")
    if batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1 (got {batch_size}).")
    rows_in = read_inputs(inputs, stdin=stdin)
    saved = (
        model
        if isinstance(model, SavedModel)
        else load_saved_model(model, trust_remote_code=trust_remote_code)
    )
    if saved.labels.multi_label and threshold is None:
        threshold = saved.threshold
        if threshold is None:
            raise ConfigError(
                "This multi-label model has no saved decision threshold (config.json multi_label_threshold); "
                "pass --threshold T (e.g. 0.5)."
            )
    elif threshold is not None and not saved.labels.multi_label:
        raise ConfigError(
            f"--threshold applies to multi-label models; this one is {saved.task.label_kind(saved.labels)}."
        )
    columns = _input_columns(saved, rows_in, text_column, image_column)
    good, problems = find_problems(rows_in, columns, saved.task.modality)
    if not len(good):
        raise DataError(
            f"None of the {len(rows_in.ids)} rows of {rows_in.source} can be read ({next(iter(problems.values()))})."
        )
    token_task = isinstance(saved.task, TokenClassification)
    if saved.task.modality != "image":
        _check_text(good, columns, rows_in.source, token_task)
    words = None
    if token_task:
        good, words = _token_rows(good, columns[0], saved)
        columns = ["tokens"]
    else:
        good = good.select_columns(columns)
    model_inputs = saved.rows_to_inputs(good, columns)
    with tempfile.TemporaryDirectory(prefix="hftl-predict-") as scratch:
        output_of = make_trainer(saved, batch_size, scratch).predict(model_inputs)
    logits = output_of.predictions[0] if isinstance(output_of.predictions, tuple) else output_of.predictions
    if token_task:
        records = token_records(logits, output_of.label_ids, words, saved.labels, all_scores)
    elif isinstance(saved.task, RegressionTask):
        records = regression_records(logits, saved.labels)
    else:
        records = classification_records(logits, saved.labels, threshold, all_scores)
    predicted = iter(records)
    empty = {key: ("" if key in ("label",) else None) for key in records[0]} if records else {"label": ""}
    rows = []
    for index, row_id in enumerate(rows_in.ids):
        if index in problems:
            rows.append(
                {
                    ID_COLUMN: row_id,
                    **{key: value for key, value in empty.items() if key != "scores"},
                    "error": problems[index],
                }
            )
        else:
            rows.append({ID_COLUMN: row_id, **next(predicted)})
    if problems:
        _report_skipped(problems, rows_in.ids)
        for row in rows:
            row.setdefault("error", "")
    if output is not None:
        _write(Path(output).expanduser(), render(rows, fmt))
        log(f"wrote {len(rows)} prediction(s) to {output}")
    return rows


def _write(path: Path, text: str) -> None:
    """Whole or nothing: a temporary file beside ``path``, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_command(args) -> int | None:
    """``hftl predict MODEL INPUT ...``: the predictions to ``--output`` (or stdout)."""
    rows = predict(
        args.model,
        args.input,
        output=args.output,
        all_scores=args.all_scores,
        threshold=args.threshold,
        batch_size=args.batch_size,
        text_column=args.text_column,
        image_column=args.image_column,
        format=args.format,
        overwrite=args.overwrite,
        trust_remote_code=args.trust_remote_code,
    )
    if args.output is None:
        sys.stdout.write(render(rows, _output_format(None, args.format)))
        sys.stdout.flush()
    return None
