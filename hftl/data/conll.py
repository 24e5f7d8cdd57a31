"""CoNLL-style token/tag text files: one token per line with its tag in the last column, a blank line
between sentences (the format of CoNLL-2003, WNUT and most NER corpora)."""

from __future__ import annotations

import re
from pathlib import Path

from datasets import Dataset, Features, List, Value

from ..errors import DataError

__all__ = ["CONLL_SUFFIXES", "read_conll"]

# suffixes read as token/tag files; .txt and .tsv are left to the CSV reader (loading doesn't know the task)
CONLL_SUFFIXES = (".conll", ".iob", ".bio", ".bioes")
_DOCSTART = "-DOCSTART-"
_SPACES = re.compile(r" +")
FEATURES = Features({"tokens": List(Value("string")), "ner_tags": List(Value("string"))})


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path} is not UTF-8 text (line {line} has byte 0x{raw[error.start]:02x}); re-save it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}-utf8{path.suffix}."
        ) from None


def _fields(line: str) -> list[str]:
    """A line's columns: tab-separated when it has a tab (a token may then hold spaces), else space-separated.
    Only ASCII spaces and tabs separate: a token such as U+00A0 (tweets have them) stays a token."""
    if "\t" in line:
        fields = [field.strip(" ") for field in line.split("\t")]
        while fields and not fields[-1]:  # a trailing tab
            fields.pop()
        return fields
    return _SPACES.split(line.strip(" "))


def read_conll(path: str | Path) -> Dataset:
    """Read a CoNLL-style file into a ``Dataset`` with ``tokens`` and ``ner_tags`` (lists of strings).

    Each non-blank line holds a token in its first column and its tag in its last (tab- or space-separated;
    middle columns such as CoNLL-2003's POS and chunk tags are ignored). Blank or whitespace-only lines end a
    sentence; ``-DOCSTART-`` lines are skipped.

    Args:
        path: The file.

    Raises:
        DataError: The file is not UTF-8, a line has no tag, or the file holds no sentence.

    Example:
        >>> read_conll("train.conll")[0]
        {'tokens': ['EU', 'rejects', 'German', 'call'], 'ner_tags': ['B-ORG', 'O', 'B-MISC', 'O']}
    """
    path = Path(path)
    tokens, tags, sentence_tokens, sentence_tags = [], [], [], []
    for number, line in enumerate(_decode(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if sentence_tokens:
                tokens.append(sentence_tokens)
                tags.append(sentence_tags)
                sentence_tokens, sentence_tags = [], []
            continue
        fields = _fields(line)
        if fields[0] == _DOCSTART:
            continue
        if len(fields) < 2 or not fields[0] or not fields[-1]:
            what = (
                "no token before its tag" if len(fields) > 1 and not fields[0] else "a single column (no tag)"
            )
            raise DataError(
                f"{path}, line {number}: {line[:60]!r} has {what}; each line of a CoNLL file holds a token and its "
                "tag (tab- or space-separated), with a blank line between sentences."
            )
        sentence_tokens.append(fields[0])
        sentence_tags.append(fields[-1])
    if sentence_tokens:  # the last sentence, without a blank line after it
        tokens.append(sentence_tokens)
        tags.append(sentence_tags)
    if not tokens:
        raise DataError(
            f"{path} holds no sentences; a CoNLL file has a token and its tag on each line (e.g. 'Paris\\tB-LOC'), "
            "with a blank line between sentences."
        )
    return Dataset.from_dict({"tokens": tokens, "ner_tags": tags}, features=FEATURES)
