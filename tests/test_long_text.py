"""--long_text: truncate (unchanged), head_tail (the first and last tokens), chunk (overlapping windows whose
logits are pooled per document in training, evaluation and test)."""

from __future__ import annotations

import json
import random

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from hftl import finetune
from hftl.errors import ConfigError
from hftl.methods import get_method
from hftl.options.checks import check_long_text
from hftl.options.config import DataArguments
from hftl.tasks import get_task
from hftl.tasks._long_text import WINDOWS, pool_windows

from .conftest import TINY_TRAINING, make_rows, write_csv
from .reliability.test_resume import (  # noqa: F401 - batches is a fixture
    RESUME_TRAINING,
    assert_same_run,
    batches,
    stop_and_resume,
)

TEXT = get_task("text-classification")
MAX_LENGTH = 32  # 30 text tokens a window with [CLS] and [SEP]


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir):
    return AutoTokenizer.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def words(tokenizer) -> list[tuple[str, int]]:
    """Distinct words the tokenizer keeps whole (one token each), with their ids."""
    found = []
    for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        if token.isalpha() and token.islower() and len(token) > 3 and tokenizer.tokenize(token) == [token]:
            found.append((token, token_id))
        if len(found) == 200:
            return found
    raise AssertionError("too few whole words in the vocabulary")


def document(words, n: int) -> tuple[str, list[int]]:
    return " ".join(word for word, _ in words[:n]), [token_id for _, token_id in words[:n]]


def tokenized(tokenizer, texts: list[str], **options) -> Dataset:
    data = DatasetDict({"train": Dataset.from_dict({"text": texts, "labels": [0] * len(texts)})})
    args = DataArguments(max_length=MAX_LENGTH, **options)
    return TEXT.preprocess(data, tokenizer, ["text"], MAX_LENGTH, args)["train"]


def test_truncate_tokenises_and_pads_as_before(tokenizer, words):
    """The default is the stock truncation, bit for bit: the tokenizer's own ids and stock padding."""
    texts = [document(words, 100)[0], "a short one", document(words, 31)[0]]
    rows = tokenized(tokenizer, texts)
    expected = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
    assert rows.column_names == ["labels", *expected.keys()]
    for name in expected:
        assert rows[name] == expected[name]
    features = [dict(row) for row in rows]
    ours = TEXT.collator(tokenizer, None)(features)
    stock = DataCollatorWithPadding(tokenizer)(features)
    assert ours.keys() == stock.keys() and WINDOWS not in ours
    assert all(torch.equal(ours[key], stock[key]) for key in stock)


def test_head_tail_keeps_the_first_and_last_tokens(tokenizer, words):
    long_text, ids = document(words, 100)
    short_text, short_ids = document(words, 30)  # exactly fits: untouched
    rows = tokenized(tokenizer, [long_text, short_text], long_text="head_tail")
    head, tail = 8, 22  # round(30 * 128 / 510) and the rest of the 30 text tokens
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert rows[0]["input_ids"] == [cls, *ids[:head], *ids[-tail:], sep]
    assert rows[0]["attention_mask"] == [1] * MAX_LENGTH and rows[0]["token_type_ids"] == [0] * MAX_LENGTH
    assert rows[1]["input_ids"] == [cls, *short_ids, sep]


@pytest.mark.parametrize("stride, max_chunks", [(8, None), (0, None), (10, 2)])
def test_chunk_windows_cover_the_document_with_the_stride(tokenizer, words, stride, max_chunks):
    text, ids = document(words, 100)
    options = {"long_text": "chunk", "chunk_stride": stride, "max_chunks": max_chunks}
    row = tokenized(tokenizer, [text, "short text"], **options)[0]
    windows = [window[1:-1] for window in row["input_ids"]]  # without [CLS] and [SEP]
    step, expected = 30 - stride, []
    for start in range(0, len(ids), step):
        expected.append(ids[start : start + 30])
        if start + 30 >= len(ids):
            break
    assert windows == expected[:max_chunks]
    for before, after in zip(windows, windows[1:], strict=False):
        assert before[-stride:] == after[:stride] if stride else before[-1] != after[0]
    if max_chunks is None:  # every token is in a window
        assert sorted({token for window in windows for token in window}) == sorted(ids)
    assert all(len(window) == MAX_LENGTH for window in row["input_ids"][:-1])


def test_the_collator_flattens_windows_and_indexes_their_documents(tokenizer, words):
    rows = tokenized(tokenizer, [document(words, 100)[0], "short text"], long_text="chunk")
    batch = TEXT.collator(tokenizer, None)([dict(row) for row in rows])
    windows = len(rows[0]["input_ids"])
    assert batch["input_ids"].shape == (windows + 1, MAX_LENGTH)
    assert batch[WINDOWS].tolist() == [0] * windows + [1]
    assert batch["labels"].tolist() == [0, 0]


def test_pooling_takes_each_document_s_mean_or_max():
    logits = torch.tensor([[1.0, -2.0], [3.0, 4.0], [5.0, 0.0], [-1.0, 7.0], [2.0, 2.0], [0.0, 1.0]])
    windows = torch.tensor([0, 0, 0, 1, 2, 2])
    mean = pool_windows(logits, windows, "mean")
    assert torch.allclose(mean, torch.tensor([[3.0, 2.0 / 3.0], [-1.0, 7.0], [1.0, 1.5]]))
    assert pool_windows(logits, windows, "max").tolist() == [[5.0, 4.0], [-1.0, 7.0], [2.0, 2.0]]


def long_rows(n: int, seed: int = 0) -> list[dict]:
    rows, rng = make_rows(n, seed), random.Random(seed)
    for row in rows:  # 1 to 10 repeats of 8 words: up to about 3 windows of 32
        row["text"] = " ".join([row["text"]] * rng.randint(1, 10))
    return rows


@pytest.fixture
def long_options(tiny_bert_dir, tmp_path) -> dict:
    csv = write_csv(tmp_path / "data" / "long.csv", long_rows(60))
    return dict(
        model=tiny_bert_dir, dataset=str(csv), output_dir=str(tmp_path / "out"), max_length=MAX_LENGTH, **TINY_TRAINING
    )


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_chunk_trains_evaluates_and_tests_per_document(long_options, aggregation):
    result = finetune(**long_options, long_text="chunk", chunk_aggregation=aggregation)
    trainer, metrics = result.trainer, result.metrics
    assert metrics["test_samples"] == 6 and metrics["eval_samples"] == 6 and metrics["train_samples"] == 48
    recorded = json.loads((result.output_dir / "config.json").read_text())["hftl_long_text"]
    assert recorded == {
        "strategy": "chunk", "stride": 8, "max_chunks": None, "aggregation": aggregation, "max_length": MAX_LENGTH
    }  # fmt: skip
    # the card says how long documents were read
    card = (result.output_dir / "README.md").read_text()
    assert f"| long documents | chunk (windows overlapping by 8 tokens, {aggregation} of their logits) |" in card
    # the predictions are the documents' pooled logits, as computed by hand from the saved model
    test = trainer.eval_dataset  # the validation documents, tokenised
    assert trainer.predict(test).predictions.shape == (6,)  # argmax per document for the metrics
    trainer.preprocess_logits_for_metrics = trainer.compute_metrics = None
    output = trainer.predict(test)
    model = AutoModelForSequenceClassification.from_pretrained(result.output_dir).eval()
    batch = TEXT.collator(trainer.processing_class, None)([dict(row) for row in test])
    windows, labels = batch.pop(WINDOWS), batch.pop("labels")
    assert len(windows) > 6  # some documents have several windows
    with torch.no_grad():
        logits = model(**batch).logits
    pooled = pool_windows(logits, windows, aggregation)
    other = pool_windows(logits, windows, {"mean": "max", "max": "mean"}[aggregation])
    assert output.predictions.shape == (6, 3) and output.label_ids.tolist() == labels.tolist()
    assert torch.allclose(torch.from_numpy(output.predictions), pooled, atol=1e-6)
    assert not torch.allclose(torch.from_numpy(output.predictions), other, atol=1e-6)
    loss = torch.nn.functional.cross_entropy(pooled, labels)
    assert output.metrics["test_loss"] == pytest.approx(loss.item(), rel=1e-6)


def test_chunk_regression_pools_in_original_units(tiny_bert_dir, tmp_path):
    rows = long_rows(40)
    for index, row in enumerate(rows):
        row["label"] = float(index % 5)
    csv = write_csv(tmp_path / "data" / "scores.csv", rows)
    result = finetune(
        model=tiny_bert_dir, dataset=str(csv), task="text-regression", output_dir=str(tmp_path / "out"),
        max_length=MAX_LENGTH, long_text="chunk", **TINY_TRAINING,
    )  # fmt: skip
    assert result.metrics["test_samples"] == 4 and "test_pearson" in result.metrics


def test_head_tail_run_records_its_split(long_options):
    result = finetune(**long_options, long_text="head_tail")
    recorded = json.loads((result.output_dir / "config.json").read_text())["hftl_long_text"]
    assert recorded == {"strategy": "head_tail", "head": 8, "tail": 22, "max_length": MAX_LENGTH}
    assert "| long documents | head_tail |" in (result.output_dir / "README.md").read_text()


def test_truncate_records_nothing(long_options):
    result = finetune(**long_options)
    assert "hftl_long_text" not in json.loads((result.output_dir / "config.json").read_text())
    assert "long documents" not in (result.output_dir / "README.md").read_text()


def test_resumed_chunk_run_equals_the_uninterrupted_one(long_options, tmp_path, batches, monkeypatch):  # noqa: F811
    options = {**long_options, **RESUME_TRAINING, "num_train_epochs": 1, "long_text": "chunk"}
    reference = finetune(**{**options, "output_dir": str(tmp_path / "reference")})
    reference_batches = list(batches)
    batches.clear()
    resumed, _ = stop_and_resume(options, 5, tmp_path / "stopped", batches, monkeypatch)
    assert_same_run(reference, resumed, reference_batches, batches)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"long_text": "paragraphs"}, "--long_text must be one of truncate, head_tail, chunk (got 'paragraphs')."),
        ({"chunk_aggregation": "median", "long_text": "chunk"}, "--chunk_aggregation must be mean or max"),
        ({"chunk_stride": 4}, "--chunk_stride applies only with --long_text chunk (got --long_text truncate)."),
        ({"long_text": "head_tail", "max_chunks": 2}, "--max_chunks applies only with --long_text chunk"),
        ({"long_text": "chunk", "chunk_stride": 30}, "--chunk_stride 30 must be less than the 30 text tokens"),
    ],
)
def test_bad_settings_are_one_line_before_compute(long_options, no_model_build, options, message):
    with pytest.raises(ConfigError) as error:
        finetune(**long_options, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def check(tokenizer, options: dict, task="text-classification", method="full", columns=("text",), problem_type=None):
    config = type("Config", (), {"problem_type": problem_type})()
    check_long_text(
        DataArguments(**options), task=get_task(task), method=get_method(method)(), processor=tokenizer,
        config=config, max_length=MAX_LENGTH, input_columns=list(columns),
    )  # fmt: skip


@pytest.mark.parametrize(
    "options, where, message",
    [
        ({"long_text": "head_tail"}, {"task": "image-classification"}, "works for whole-text tasks"),
        ({"long_text": "chunk"}, {"columns": ("premise", "hypothesis")}, "takes one text column, not a pair"),
        ({"long_text": "chunk"}, {"method": "distill"}, "which --method distill replaces"),
        (
            {"long_text": "chunk", "chunk_aggregation": "max"},
            {"task": "text-regression", "problem_type": "regression"},
            "--chunk_aggregation max takes each output's largest window value",
        ),
    ],
)
def test_combinations_that_can_t_work_are_refused_at_plan_time(tokenizer, options, where, message):
    with pytest.raises(ConfigError, match=message):
        check(tokenizer, options, **where)
    check(tokenizer, options)  # the same options with text classification, full, one column: accepted


def test_the_tokenisation_cache_key_holds_the_long_text_settings(tokenizer, words, tmp_path):
    """Splits with cache files: a second run with another stride or strategy must not reuse the first's."""
    texts = [document(words, 100)[0], "short text"]
    Dataset.from_dict({"text": texts, "labels": [0, 1]}).save_to_disk(str(tmp_path / "split"))

    def windows(**options):
        split = Dataset.load_from_disk(str(tmp_path / "split"))
        data = DatasetDict({"train": split})
        return TEXT.preprocess(data, tokenizer, ["text"], MAX_LENGTH, DataArguments(**options))["train"][0]["input_ids"]

    assert windows(long_text="chunk", chunk_stride=8) != windows(long_text="chunk", chunk_stride=4)
    assert windows(long_text="chunk", chunk_stride=8, max_chunks=1) != windows(long_text="chunk", chunk_stride=8)
    assert windows(long_text="head_tail") != windows()
    assert windows(long_text="chunk", chunk_stride=8) == windows(long_text="chunk", chunk_stride=8)
