"""Loading raw data: a built-in name, local files (or a folder of them), or a Hub dataset id."""

from __future__ import annotations

import os
import re
from pathlib import Path

from datasets import DatasetDict, load_dataset

from ..errors import DataError, DatasetNotFoundError
from ..resolve import hub_status
from .builtin import builtin_datasets, load_builtin

__all__ = ["load_raw_dataset", "FILE_FORMATS"]

# file suffix -> datasets builder (and its extra arguments)
FILE_FORMATS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
SPLIT_FILE_STEMS = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}


def _has_no_rows(path: Path) -> bool:
    """A header-only CSV, an empty JSON file or a zero-row parquet file (``datasets`` fails on these
    with messages that don't say which file is empty)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows == 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        if suffix in (".csv", ".tsv"):
            rows = (line for line in handle if line.strip())
            return next(rows, None) is None or next(rows, None) is None  # header only
        return handle.read(4096).strip() in ("", "[]")


def _load_files(data_files: dict[str, str]) -> DatasetDict:
    for split, file in data_files.items():
        if _has_no_rows(Path(file)):
            raise DataError(
                f"The {split} split file {file} has no rows; add examples to it, or remove it so hftl "
                "carves one from train."
            )
    suffixes = {Path(path).suffix.lower() for path in data_files.values()}
    if len(suffixes) != 1:
        raise DatasetNotFoundError(
            f"Split files mix formats ({', '.join(sorted(suffixes))}); use one format for all splits."
        )
    builder, options = FILE_FORMATS[suffixes.pop()]
    try:
        return load_dataset(builder, data_files=data_files, **options)
    except Exception as exc:  # noqa: BLE001 - pandas/arrow parse errors come in many types
        raise _read_error(exc, data_files, builder) from None


def _first_non_utf8_line(path: Path) -> tuple[int, int] | None:
    """(line number, offending byte) of the first line that isn't UTF-8, or ``None``."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, line[error.start]
    return None


def _read_error(exc: Exception, data_files: dict[str, str], builder: str) -> DatasetNotFoundError:
    """One line for a file ``datasets`` could not parse. It wraps the parser's error in a generic
    DatasetGenerationError, so the cause is looked up in the chain (and in the file, for encodings)."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if builder != "parquet":
        for file in data_files.values():
            bad = _first_non_utf8_line(Path(file))
            if bad:
                return DatasetNotFoundError(
                    f"{file} is not UTF-8 text (line {bad[0]} has byte 0x{bad[1]:02x}); re-save it as UTF-8, "
                    f"e.g. iconv -f latin1 -t utf-8 {Path(file).name} > {Path(file).stem}-utf8{Path(file).suffix}."
                )
    for error in chain:
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if ragged:
            header, line, saw = ragged.groups()
            return DatasetNotFoundError(
                f"{', '.join(data_files.values())}: line {line} has {saw} fields but the header has {header}; "
                'quote values that contain the delimiter ("a, b") or fix that row.'
            )
    message = next((str(error).strip() for error in reversed(chain) if str(error).strip()), "")
    first_line = message.splitlines()[0] if message else type(exc).__name__
    return DatasetNotFoundError(
        f"Could not read {', '.join(data_files.values())}: {first_line}. Check the file is valid {builder}."
    )


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def _is_image_folder(folder: Path) -> bool:
    """One subfolder per class (optionally under train/ and test/) holding image files."""
    return any(path.suffix.lower() in IMAGE_SUFFIXES for path in folder.glob("*/*")) or any(
        path.suffix.lower() in IMAGE_SUFFIXES for path in folder.glob("*/*/*")
    )


def _load_folder(folder: Path) -> DatasetDict:
    if not any(
        SPLIT_FILE_STEMS.get(f.stem.lower()) and f.suffix.lower() in FILE_FORMATS for f in folder.iterdir()
    ):
        if _is_image_folder(folder):
            # datasets' packaged imagefolder builder: labels from subfolder names, splits from train/test
            return load_dataset("imagefolder", data_dir=str(folder))
    data_files = {}
    for file in sorted(folder.iterdir()):
        split = SPLIT_FILE_STEMS.get(file.stem.lower())
        if split and file.suffix.lower() in FILE_FORMATS:
            if split in data_files:
                raise DatasetNotFoundError(
                    f"Folder '{folder}' has two files for the {split} split ({Path(data_files[split]).name}, "
                    f"{file.name}); keep one."
                )
            data_files[split] = str(file)
    if "train" not in data_files:
        raise DatasetNotFoundError(
            f"Folder '{folder}' has no train file; name the files train.csv / validation.csv / test.csv "
            f"(or .json, .jsonl, .parquet, .tsv)."
        )
    return _load_files(data_files)


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
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetNotFoundError(
            f"Dataset '{name}' could not be loaded from the Hub: {first_line}. Check the id and "
            "--dataset_config, or pass a local file."
        ) from None
    if not isinstance(loaded, DatasetDict):
        loaded = DatasetDict(train=loaded)
    return loaded


def load_raw_dataset(name: str, config: str | None = None) -> tuple[DatasetDict, str]:
    """Load ``name`` as a ``DatasetDict`` of raw splits, plus a short description of its source.

    Looks, in order, for a built-in dataset, a local file or folder, then a Hub dataset id. Split names
    ``valid``/``val``/``dev`` are renamed ``validation``.
    """
    if name in builtin_datasets():
        return load_builtin(name), f"built-in dataset {name}"
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        splits, source = _load_folder(path), f"folder {path}"
    elif path.is_file():
        if path.suffix.lower() not in FILE_FORMATS:
            raise DatasetNotFoundError(
                f"Dataset file '{name}' has an unsupported suffix; use one of {', '.join(FILE_FORMATS)}."
            )
        splits, source = _load_files({"train": str(path)}), f"file {path}"
    elif path.suffix.lower() in FILE_FORMATS or name.startswith((".", "/", "~")):
        raise DatasetNotFoundError(f"Dataset file '{name}' does not exist; check the path.")
    else:
        splits, source = _load_hub(name, config), f"Hub dataset {name}"
    for old in list(splits):
        new = SPLIT_FILE_STEMS.get(old.lower(), old)
        if new != old and new not in splits:
            splits[new] = splits.pop(old)
    return splits, source
