"""Loading raw data: a built-in name, local files (or a folder of them), or a Hub dataset id."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from datasets import DatasetDict, load_dataset

from .._log import log
from ..errors import DataError, DatasetNotFoundError, first_line
from ..resolve import hub_status
from ._file_checks import (
    check_delimiter,
    check_file,
    check_header,
    has_no_rows,
    json_shape_error,
    missing_words_in_numbers,
    read_error,
)
from .builtin import builtin_datasets, load_builtin
from .conll import CONLL_SUFFIXES, read_conll

__all__ = ["DataSource", "load_raw_dataset", "duplicated_columns", "FILE_FORMATS", "split_files"]

# pandas reads "NA", "null", "None", "nan" ... as missing by default; as class names or texts they are
# values, so only an empty field is missing
_CSV_MISSING = {"keep_default_na": False, "na_values": [""]}
# file suffix -> datasets builder (and its extra arguments)
FILE_FORMATS = {
    ".csv": ("csv", _CSV_MISSING),
    ".tsv": ("csv", {"delimiter": "\t", **_CSV_MISSING}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
    **{suffix: ("conll", {}) for suffix in CONLL_SUFFIXES},  # token/tag text, read by read_conll
}
_SOURCE_WORDS = {"builtin": "built-in dataset", "folder": "folder", "file": "file", "hub": "Hub dataset"}


@dataclass(frozen=True)
class DataSource:
    """Where the data came from: ``kind`` is ``builtin``, ``folder``, ``file`` or ``hub``; ``str()`` is
    the description logs and messages show (``folder data/news``)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{_SOURCE_WORDS[self.kind]} {self.name}"


SPLIT_FILE_STEMS = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}


def duplicated_columns(splits: DatasetDict) -> dict[str, tuple[str, list[str]]]:
    """Header name given to several columns -> (the file, the column names pandas read its copies as),
    for data loaded from CSV/TSV files."""
    return getattr(splits, "_duplicated_columns", {})


def _file_formats(token_text: bool) -> dict[str, tuple[str, dict]]:
    """The suffix -> reader table; ``token_text`` (token classification) reads .txt and .tsv as CoNLL text."""
    return {**FILE_FORMATS, **dict.fromkeys((".txt", ".tsv"), ("conll", {}))} if token_text else FILE_FORMATS


def _load_files(data_files: dict[str, str], formats: dict = FILE_FORMATS) -> DatasetDict:
    conll = {suffix for suffix, (builder, _) in formats.items() if builder == "conll"}
    for split, file in data_files.items():
        check_file(Path(file))
        if Path(file).suffix.lower() not in conll and has_no_rows(Path(file)):  # read_conll says it itself
            raise DataError(
                f"The {split} split file {file} has no rows; add examples to it, or remove it so hftl "
                "carves one from train."
            )
    suffixes = {Path(path).suffix.lower() for path in data_files.values()}
    if len(suffixes) != 1 and not suffixes <= conll:  # train.conll with dev.bio is one format
        raise DatasetNotFoundError(
            f"Split files mix formats ({', '.join(sorted(suffixes))}); use one format for all splits."
        )
    builder, options = formats[min(suffixes)]
    if builder == "conll":
        return DatasetDict({split: read_conll(file) for split, file in data_files.items()})
    repeated = {}
    if builder in ("csv", "parquet"):
        for file in data_files.values():
            for name in check_header(Path(file)):
                repeated.setdefault(name, Path(file).name)
    try:
        try:
            loaded = load_dataset(builder, data_files=data_files, **options)
        except Exception as exc:  # noqa: BLE001 - pandas/arrow parse errors come in many types
            retry = missing_words_in_numbers(exc, data_files, options) if builder == "csv" else None
            if retry is None:
                raise
            loaded = load_dataset(builder, data_files=data_files, **retry)
    except Exception as exc:  # noqa: BLE001
        raise read_error(exc, data_files, builder) from None
    if repeated:  # kept on the DatasetDict (renaming splits and columns keeps the object) for prepare_data
        columns = {column for split in loaded.values() for column in split.column_names}
        loaded._duplicated_columns = {
            name: (
                file,
                sorted(column for column in columns if re.fullmatch(rf"{re.escape(name)}(\.\d+)?", column)),
            )
            for name, file in repeated.items()
        }
    if builder == "csv":
        check_delimiter(loaded, data_files)
    if builder == "json":  # one object holding the rows reads as one row, a list of strings as one column
        for split, file in data_files.items():
            odd = len(loaded[split]) == 1 or len(loaded[split].column_names) == 1
            if odd and (error := json_shape_error(Path(file))):
                raise error
    return loaded


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def _is_image_folder(folder: Path) -> bool:
    """One subfolder per class (optionally under train/ and test/) holding image files."""
    return any(path.suffix.lower() in IMAGE_SUFFIXES for path in folder.glob("*/*")) or any(
        path.suffix.lower() in IMAGE_SUFFIXES for path in folder.glob("*/*/*")
    )


def _load_folder(folder: Path, formats: dict = FILE_FORMATS) -> DatasetDict:
    if not any(
        SPLIT_FILE_STEMS.get(f.stem.lower()) and f.suffix.lower() in formats for f in folder.iterdir()
    ):
        if _is_image_folder(folder):
            # datasets' packaged imagefolder builder: labels from subfolder names, splits from train/test
            try:
                return load_dataset("imagefolder", data_dir=str(folder))
            except ValueError as exc:
                raise _image_folder_error(exc, folder) from None
    return _load_files(split_files(folder, formats), formats)


def split_files(folder: Path, formats: dict = FILE_FORMATS) -> dict[str, str]:
    """A folder's split files (``train.csv``, ``validation.jsonl`` ...) by split name; one train file."""
    data_files = {}
    for file in sorted(folder.iterdir()):
        split = SPLIT_FILE_STEMS.get(file.stem.lower())
        if split and file.suffix.lower() in formats:
            if split in data_files:
                raise DatasetNotFoundError(
                    f"Folder '{folder}' has two files for the {split} split ({Path(data_files[split]).name}, "
                    f"{file.name}); keep one."
                )
            data_files[split] = str(file)
    if "train" not in data_files:
        raise DatasetNotFoundError(
            f"Folder '{folder}' has no train file; name the files train.csv / validation.csv / test.csv "
            f"(or .json, .jsonl, .parquet, .tsv, .conll)."
        )
    return data_files


def _image_folder_error(exc: Exception, folder: Path) -> DatasetNotFoundError:
    if "file_name" in str(exc):
        metadata = next(iter(sorted(folder.rglob("metadata.*"))), folder / "metadata.csv")
        return DatasetNotFoundError(
            f"{metadata} has no file_name column, which names the image each row describes; rename the "
            "column holding the file names to file_name."
        )
    reason = first_line(exc)
    return DatasetNotFoundError(f"Could not read the image folder {folder}: {reason}.")


def _strip_column_names(splits: DatasetDict) -> DatasetDict:
    """Header names with spaces around them (``text, label``) are stripped: ' label' would match no
    column hftl looks for, and no user means the space."""
    renamed = {}
    for name, split in splits.items():
        mapping = {column: column.strip() for column in split.column_names if column != column.strip()}
        if not mapping:
            continue
        stripped = [column.strip() for column in split.column_names]
        if len(set(stripped)) < len(stripped) or "" in stripped:
            raise DataError(
                f"The {name} split's columns {', '.join(repr(c) for c in split.column_names)} clash once the "
                "spaces around their names are removed; rename them."
            )
        splits[name] = split.rename_columns(mapping)
        renamed.update(mapping)
    if renamed:
        log(
            "stripped spaces around column name(s) "
            + ", ".join(f"{old!r} -> {new!r}" for old, new in renamed.items())
        )
    return splits


def _load_hub(name: str, config: str | None) -> DatasetDict:
    status = hub_status()
    known = ", ".join(sorted(builtin_datasets()))
    if status != "reachable":
        raise DatasetNotFoundError(
            f"Dataset '{name}' is not a local file or folder, not a built-in dataset ({known}), and "
            f"{status}, so it cannot be loaded from the Hub. Pass a CSV/JSON/JSONL/parquet file or a built-in name."
        )
    try:
        loaded = load_dataset(name, config)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for a missing repo/config
        reason = first_line(exc)
        raise DatasetNotFoundError(
            f"Dataset '{name}' could not be loaded from the Hub: {reason}. Check the id and "
            "--dataset_config, or pass a local file."
        ) from None
    if not isinstance(loaded, DatasetDict):
        loaded = DatasetDict(train=loaded)
    return loaded


def load_raw_dataset(
    name: str, config: str | None = None, *, token_text: bool = False
) -> tuple[DatasetDict, DataSource]:
    """Load ``name`` as a ``DatasetDict`` of raw splits, plus where it came from.

    Looks, in order, for a built-in dataset, a local file or folder, then a Hub dataset id. Split names
    ``valid``/``val``/``dev`` are renamed ``validation``. ``token_text`` (a token-classification task) reads
    ``.txt`` and ``.tsv`` files as CoNLL token/tag text too (``.conll``, ``.iob``, ``.bio``, ``.bioes`` always are).
    """
    formats = _file_formats(token_text)
    if name in builtin_datasets():
        return load_builtin(name), DataSource("builtin", name)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        splits, source = _load_folder(path, formats), DataSource("folder", str(path))
    elif path.is_file():
        if path.suffix.lower() not in formats:
            raise DatasetNotFoundError(
                f"Dataset file '{name}' has an unsupported suffix; use one of {', '.join(formats)}."
            )
        splits, source = _load_files({"train": str(path)}, formats), DataSource("file", str(path))
    elif path.suffix.lower() in formats or name.startswith((".", "/", "~")):
        raise DatasetNotFoundError(f"Dataset file '{name}' does not exist; check the path.")
    else:
        splits, source = _load_hub(name, config), DataSource("hub", name)
    for old in list(splits):
        new = SPLIT_FILE_STEMS.get(old.lower(), old)
        if new != old and new not in splits:
            splits[new] = splits.pop(old)
    return _strip_column_names(splits), source
