"""Pre-flight checks of data files, and datasets' read errors turned into one line that says what is
wrong with the file and how to fix it."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

from datasets import DatasetDict

from ..errors import DataError, DatasetNotFoundError, first_line
from .labels import MISSING_VALUE_WORDS

__all__ = [
    "check_delimiter",
    "check_file",
    "check_header",
    "has_no_rows",
    "json_shape_error",
    "missing_words_in_numbers",
    "read_error",
]


_TEXT_BOMS = {
    b"\xff\xfe\x00\x00": "utf-32",
    b"\x00\x00\xfe\xff": "utf-32",
    b"\xff\xfe": "utf-16",
    b"\xfe\xff": "utf-16",
}


_BINARY_MAGIC = {
    b"PK\x03\x04": ("a zip archive (an Excel workbook?)", "export the sheet as CSV UTF-8"),
    b"\x1f\x8b": ("gzip-compressed", "decompress it first (gunzip)"),
    b"PAR1": ("a parquet file", "give it the .parquet suffix"),
}
_CONTROL_BYTES = [byte for byte in range(32) if chr(byte) not in "\t\n\r\f\v\x1b"]


def check_file(path: Path) -> None:
    """Refuse, in one line, a file that can't hold this format's rows: a parquet file without parquet's
    magic bytes (arrow's own error names neither file nor fix), a UTF-16/32 text file, a binary file."""
    if path.suffix.lower() == ".parquet":
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(max(0, path.stat().st_size - 4))
            tail = handle.read(4)
        if head != b"PAR1" or tail != b"PAR1" or path.stat().st_size < 12:
            what = (
                "empty (0 bytes)" if not head
                else "cut short or damaged (parquet's closing PAR1 bytes are missing)" if head == b"PAR1"
                else "not a parquet file (no PAR1 magic bytes)"
            )  # fmt: skip
            raise DatasetNotFoundError(
                f"{path} is {what}; re-export it, e.g. with pandas' df.to_parquet(), or give it the suffix of "
                "its real format."
            )
        return
    with path.open("rb") as handle:
        head = handle.read(8192)
    encoding = next((name for bom, name in _TEXT_BOMS.items() if head.startswith(bom)), None)
    if encoding:
        raise DatasetNotFoundError(
            f"{path} is {encoding.upper()} text; re-save it as UTF-8, e.g. iconv -f {encoding} -t utf-8 "
            f"{path.name} > {path.stem}-utf8{path.suffix}."
        )
    fmt = path.suffix.lstrip(".").upper()
    known = next((known for magic, known in _BINARY_MAGIC.items() if head.startswith(magic)), None)
    if known:
        raise DatasetNotFoundError(f"{path} is {known[0]}, not {fmt} text; {known[1]}.")
    if b"\x00" in head:
        odd, even = head[1::2], head[0::2]  # UTF-16 without a BOM: every other byte of ASCII text is NUL
        for nuls, name in ((odd, "UTF-16LE"), (even, "UTF-16BE")):
            if len(nuls) > 8 and nuls.count(0) > 0.9 * len(nuls):
                raise DatasetNotFoundError(
                    f"{path} is {name} text; re-save it as UTF-8, e.g. iconv -f {name.lower()} -t utf-8 "
                    f"{path.name} > {path.stem}-utf8{path.suffix}."
                )
    control = sum(head.count(byte) for byte in _CONTROL_BYTES)
    if control > 0.05 * len(head):  # text has tabs and newlines, a stray NUL at most; binary data is ~10 %
        raise DatasetNotFoundError(
            f"{path} is binary ({control * 100 // len(head)} % control bytes in its first {len(head)} bytes), "
            f"not {fmt} text; pass the data file itself, saved as UTF-8 text."
        )


def has_no_rows(path: Path) -> bool:
    """A header-only CSV, an empty JSON file or a zero-row parquet file (``datasets`` fails on these
    with messages that don't say which file is empty)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_metadata(path).num_rows == 0
        except Exception as exc:  # noqa: BLE001 - arrow raises several types for a damaged footer
            reason = first_line(exc)
            raise DatasetNotFoundError(
                f"{path} is not a readable parquet file ({reason}); re-export it."
            ) from None
    with path.open(encoding="utf-8", errors="replace") as handle:
        if suffix in (".csv", ".tsv"):
            rows = (line for line in handle if line.strip())
            return next(rows, None) is None or next(rows, None) is None  # header only
        return handle.read(4096).strip() in ("", "[]")


def check_header(path: Path) -> list[str]:
    """The names a CSV/TSV header gives more than one column (pandas reads the copies as ``notes``,
    ``notes.1``; prepare_data refuses them only where the run uses them). A parquet schema naming a column
    twice is refused: arrow can't read it at all, with a message about field references."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        header = pq.read_schema(path).names
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
    repeated = [
        name for name, count in Counter(name.strip() for name in header).items() if count > 1 and name
    ]
    if repeated and path.suffix.lower() == ".parquet":
        raise DataError(
            f"The header of {path} names column(s) {', '.join(repr(name) for name in repeated)} more than once; "
            "give every column its own name."
        )
    return repeated


def check_delimiter(loaded: DatasetDict, data_files: dict[str, str]) -> None:
    """A .csv written with semicolons (or a .tsv with commas) reads as one column named 'text;label'."""
    columns = loaded["train"].column_names if "train" in loaded else []
    if len(columns) != 1:
        return
    name, file = columns[0], Path(data_files["train"])
    found = next((mark for mark in (";", "\t", ",", "|") if mark in name), None)
    if found:
        shown = {"\t": "tab", ";": "';'", ",": "','", "|": "'|'"}[found]
        expected = "tabs" if file.suffix.lower() == ".tsv" else "commas"
        raise DatasetNotFoundError(
            f"{file} reads as a single column {name!r}: its fields look {shown}-separated, but a "
            f"{file.suffix} file is read with {expected}; re-save it as .csv with commas or .tsv with tabs."
        )


def _json_shape_problem(path: Path) -> str | None:
    """What makes a JSON file that is not records (one object holding the rows, a bare number ...) one
    line; ``None`` when it looks like records or JSON lines."""
    if path.stat().st_size > 200_000_000:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return _json_lines_shape_problem(path)  # JSON lines, or broken (reported elsewhere)
    if isinstance(document, list):
        odd = next((item for item in document if not isinstance(item, dict)), None)
        if odd is None:
            return None
        return f"a list holding {type(odd).__name__} values, not records (objects)"
    if isinstance(document, dict):
        values = list(document.values())
        nested = [
            key
            for key, value in document.items()
            if isinstance(value, dict)
            or (isinstance(value, list) and value and all(isinstance(item, dict) for item in value))
        ]
        columnar = len(values) > 1 and all(isinstance(value, list) for value in values)
        if nested:
            return f"one JSON object whose key {nested[0]!r} holds the data, not a list of records"
        if columnar:
            return "one JSON object of columns (lists), not a list of records"
        return None
    return f"a single JSON {type(document).__name__}, not records"


def _json_lines_shape_problem(path: Path) -> str | None:
    """JSON lines whose lines parse but are not objects (a list or a number a line): which line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return None  # broken JSON: _bad_json_line names the line
        if not isinstance(value, dict):
            return f"JSON lines whose line {number} holds a {type(value).__name__}, not a record (object)"
    return None


def _bad_json_line(path: Path) -> str | None:
    """'line N is not valid JSON (why)': where one JSON document breaks, or the first line of a JSON lines
    file that isn't JSON."""
    if path.stat().st_size > 200_000_000:
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
        return None
    except ValueError as error:
        if not error.msg.startswith("Extra data"):  # one document (e.g. pretty-printed), broken here
            return f"line {error.lineno} is not valid JSON ({error.msg} at column {error.colno})"
    for number, line in enumerate(text.splitlines(), start=1):  # JSON lines
        if line.strip():
            try:
                json.loads(line)
            except ValueError as error:
                return f"line {number} is not valid JSON ({error.msg} at column {error.colno})"
    return None


def json_shape_error(path: Path) -> DatasetNotFoundError | None:
    problem = _json_shape_problem(path)
    if problem is None:
        return None
    return DatasetNotFoundError(
        f"{path} is {problem}; hftl reads a list of records "
        '([{"text": ..., "label": ...}, ...]) or JSON lines (one record a line).'
    )


def _first_non_utf8_line(path: Path) -> tuple[int, int] | None:
    """(line number, offending byte) of the first line that isn't UTF-8, or ``None``."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, line[error.start]
    return None


def missing_words_in_numbers(exc: Exception, data_files: dict[str, str], options: dict) -> dict | None:
    """CSV options reading ``NA`` (``null``, ``#N/A`` ...) as missing in the columns train holds numbers in,
    when another split file failed on such a word there ('Failed to parse string: 'NA' as a scalar of
    type int64': datasets casts every split to the first file's types); ``None`` for other errors. A
    number column with R's NA reads as pandas would read it; texts and word labels keep the words."""
    import pandas as pd

    cause, word = exc, None
    for _ in range(10):
        if cause is None:
            break
        found = re.search(
            r"Failed to parse string: '(.*?)' as a scalar of type (?:int|uint|float|double)", str(cause)
        )
        word = word or (found.group(1) if found else None)
        cause = cause.__cause__ or cause.__context__
    if word is None or word.strip() not in MISSING_VALUE_WORDS or "train" not in data_files:
        return None
    train = pd.read_csv(data_files["train"], **{key: value for key, value in options.items() if key != "na_values"},
                        na_values=[""], encoding="utf-8-sig")  # fmt: skip
    numeric = {str(column) for column, dtype in train.dtypes.items() if pd.api.types.is_numeric_dtype(dtype)}
    missing = ["", *sorted(MISSING_VALUE_WORDS)]
    return {**options, "na_values": {str(c): missing if str(c) in numeric else [""] for c in train.columns}}


def read_error(exc: Exception, data_files: dict[str, str], builder: str) -> DatasetNotFoundError:
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
                # bytes 0x80-0x9f are control characters in Latin-1 but quotes, dashes, € in Windows-1252
                source = "cp1252" if 0x80 <= bad[1] <= 0x9F else "latin1"
                return DatasetNotFoundError(
                    f"{file} is not UTF-8 text (line {bad[0]} has byte 0x{bad[1]:02x}); re-save it as UTF-8, "
                    f"e.g. iconv -f {source} -t utf-8 {Path(file).name} > {Path(file).stem}-utf8{Path(file).suffix}."
                )
    if builder == "json":
        for file in data_files.values():
            if error := json_shape_error(Path(file)):
                return error
            bad_line = _bad_json_line(Path(file))
            if bad_line:
                return DatasetNotFoundError(f"{file}: {bad_line}; fix or remove that line.")
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
