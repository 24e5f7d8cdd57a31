"""Inputs to predict: a data file, a folder of images, stdin (one text per line, or JSONL) or Python
values, read into rows with an id each; the rows a model can't read (empty text, a missing or broken
image file) are found here, to be reported and skipped."""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, Image
from PIL import Image as PILImage

from ..data.loading import FILE_FORMATS, load_raw_dataset
from ..errors import DataError, DatasetNotFoundError

__all__ = ["InputRows", "read_inputs", "find_problems", "IMAGE_SUFFIXES", "ID_COLUMN"]

ID_COLUMN = "id"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
_TEXT_SUFFIXES = (".txt",)  # one text per line, as stdin
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


@dataclass
class InputRows:
    """Rows to predict and where they came from.

    Args:
        rows: The raw rows (every column of the input; an image folder gives one ``image`` column of paths).
        ids: Each row's id: the input's ``id`` column, else its row number (from 0) or, for a folder, its
            path inside the folder.
        source: The input as messages name it.
        base: The folder relative image paths are read against.
        kind: ``file``, ``images`` (a folder), ``lines`` (text lines) or ``python``.
    """

    rows: Dataset
    ids: list
    source: str
    base: Path = field(default_factory=Path.cwd)
    kind: str = "file"


def _with_ids(rows: Dataset, source: str, base: Path, kind: str) -> InputRows:
    if len(rows) == 0:
        raise DataError(f"{source} has no rows; give it one input per row (a header line first for CSV/TSV).")
    column = next((name for name in rows.column_names if name.lower() == ID_COLUMN), None)
    ids = (
        [str(value) if value is not None else str(i) for i, value in enumerate(rows[column])]
        if column
        else list(range(len(rows)))
    )
    return InputRows(rows, ids, source, base, kind)


def _lines(text: str, source: str) -> InputRows:
    """One text per line, or JSONL when every non-empty line is a JSON object."""
    lines = text.splitlines()
    filled = [line for line in lines if line.strip()]
    if not filled:
        raise DataError(f"{source} is empty; give one text per line, or JSONL rows.")
    try:
        objects = [json.loads(line) for line in filled]
    except ValueError:
        objects = None
    if objects is not None and all(isinstance(item, dict) for item in objects):
        return _with_ids(Dataset.from_list(objects), source, Path.cwd(), "file")
    return _with_ids(Dataset.from_dict({"text": lines}), source, Path.cwd(), "lines")


def _image_folder(folder: Path) -> InputRows:
    files = sorted(
        path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and not path.is_dir()
    )
    if not files:
        raise DataError(
            f"Folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}); pass a folder of images or a "
            "data file."
        )
    relative = [path.relative_to(folder).as_posix() for path in files]
    rows = Dataset.from_dict({"image": [str(path) for path in files]})
    return InputRows(rows, relative, f"folder {folder}", folder, "images")


def read_inputs(source, *, stdin=None) -> InputRows:
    """The rows of ``source``: a file (CSV/TSV/JSON/JSONL/parquet, or .txt one text per line), a folder of
    images, ``-`` for ``stdin`` (one text per line, or JSONL), a list of texts or of row dicts, or a
    ``datasets.Dataset``. A DataError (one line) for a missing, empty or unknown input."""
    if isinstance(source, Dataset):
        return _with_ids(source, "the given dataset", Path.cwd(), "python")
    if isinstance(source, (list, tuple)):
        if source and all(isinstance(item, dict) for item in source):
            return _with_ids(Dataset.from_list(list(source)), "the given rows", Path.cwd(), "python")
        if all(isinstance(item, str) or item is None for item in source):
            return _with_ids(
                Dataset.from_dict({"text": list(source)}), "the given texts", Path.cwd(), "lines"
            )
        raise DataError("predict() takes a list of texts or of row dicts; got other values.")
    if str(source) == "-":
        return _lines((stdin or sys.stdin).read(), "stdin")
    path = Path(str(source)).expanduser()
    if path.is_dir():
        return _image_folder(path)
    if not path.is_file():
        raise DataError(
            f"Input '{source}' does not exist; pass a data file, a folder of images or - for stdin."
        )
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        return _lines(path.read_text(encoding="utf-8", errors="replace"), f"file {path}")
    if suffix in IMAGE_SUFFIXES:
        rows = Dataset.from_dict({"image": [str(path.resolve())]})
        return InputRows(rows, [path.name], f"file {path}", path.parent, "images")
    if suffix not in FILE_FORMATS or FILE_FORMATS[suffix][0] == "conll":
        known = ", ".join([".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", "a folder of images", "-"])
        raise DataError(
            f"Input '{source}' has an unknown format ({suffix or 'no suffix'}); use one of {known}."
        )
    if path.stat().st_size == 0:
        raise DataError(f"Input file {path} is empty; give it a header line and one input per row.")
    try:
        raw, _ = load_raw_dataset(str(path))
    except DatasetNotFoundError:
        raise
    except DataError as error:
        if "has no rows" in str(error):
            raise DataError(f"Input file {path} has no rows, only a header; add one input per row.") from None
        raise
    return _with_ids(raw["train"], f"file {path}", path.parent, "file")


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.translate(_INVISIBLE).strip())


def _image_problem(value, base: Path) -> tuple[str | None, str | None]:
    """(why an image can't be read or None, its absolute path)."""
    if isinstance(value, PILImage.Image):
        return None, None
    if isinstance(value, dict):  # an Image feature's raw form
        if value.get("bytes"):
            return None, None
        value = value.get("path")
    if _blank(value):
        return "no image", None
    path = (base / str(value)).resolve()
    if not path.is_file():
        return "missing image file", None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as image:
                image.load()
    except Exception:  # noqa: BLE001 - PIL raises many types for bad files
        return "unreadable image file", None
    return None, str(path)


def find_problems(inputs: InputRows, columns: list[str], modality: str) -> tuple[Dataset, dict[int, str]]:
    """The rows the model can read (image paths made absolute, typed as images) and, by row number, why
    each other row can't be read (``empty text``, ``missing image file``, ``unreadable image file``)."""
    rows, problems = inputs.rows, {}
    if modality == "image":
        column = columns[0]
        typed = isinstance(rows.features[column], Image)
        raw = rows.cast_column(column, Image(decode=False)) if typed else rows
        paths = []
        for index, value in enumerate(raw[column]):
            why, path = _image_problem(value, inputs.base)
            if why:
                problems[index] = why
            paths.append(path)
        if not typed:  # file names read against the input's folder, then typed as images
            rows = rows.map(
                lambda batch, idx: {column: [paths[i] for i in idx]}, with_indices=True, batched=True
            )
        keep = [index for index in range(len(rows)) if index not in problems]
        return rows.select(keep).cast_column(column, Image()), problems
    for column in columns:
        for index, value in enumerate(rows[column]):
            if _blank(value) or (isinstance(value, list) and not value):
                problems.setdefault(index, "empty text")
    keep = [index for index in range(len(rows)) if index not in problems]
    return rows.select(keep), problems
