"""``--streaming``: the training set read as it trains. The head (``--label_scan_rows``) sets the labels and
holds validation and test when there are no such files, and then never trains; the rest is shuffled within
a buffer, reproducibly; a label the head didn't have stops the run in one line; the run saves a model that
loads in ``pipeline()``, resumes to the same weights as a run never stopped, and every option a stream
can't serve is refused in one line before anything loads. (Memory and speed: benchmarks/streaming.py.)"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from transformers import pipeline

from hftl import ConfigError, DataArguments, DataError, finetune
from hftl.data.prepare import prepare_data
from hftl.tasks import get_task

from .conftest import make_rows
from .reliability.test_resume import assert_same_run, batches, stop_and_resume  # noqa: F401 - batches: fixture


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def numbered(n: int, seed: int = 0) -> list[dict]:
    """make_rows with the row number in each text, so a streamed row says where it came from."""
    return [
        {"text": f"row{index} {row['text']}", "label": row["label"]}
        for index, row in enumerate(make_rows(n, seed))
    ]


def streamed(data) -> list[dict]:
    return list(data.train_stream)


def prepare(path: Path, **options):
    return prepare_data(
        DataArguments(dataset=str(path), streaming=True, **options), get_task("text-classification")
    )


def test_the_head_sets_the_labels_and_holds_validation_and_test_out(tmp_path):
    rows = numbered(200)
    data = prepare(write_jsonl(tmp_path / "train.jsonl", rows), label_scan_rows=50)
    assert sorted(data.labels.names) == sorted({row["label"] for row in rows})
    assert len(data.splits["validation"]) + len(data.splits["test"]) + len(data.splits["train"]) == 50
    trained = streamed(data)
    assert sorted(row["text"] for row in trained) == sorted(row["text"] for row in rows[50:])  # head skipped
    assert [row["text"] for row in trained] != [row["text"] for row in rows[50:]]  # shuffled
    assert [row["text"] for row in streamed(prepare(tmp_path / "train.jsonl", label_scan_rows=50))] == [
        row["text"] for row in trained
    ]  # the same order again (--split_seed)
    names = data.labels.names
    by_text = {row["text"]: row["label"] for row in rows}
    assert all(
        names[row["labels"]] == by_text[row["text"]] for row in trained
    )  # labels encoded as the head's


def test_with_validation_and_test_files_every_training_row_trains(tmp_path):
    rows = numbered(120)
    folder = tmp_path / "data"
    write_jsonl(folder / "train.jsonl", rows)
    write_jsonl(folder / "validation.jsonl", numbered(12, seed=1))
    write_jsonl(folder / "test.jsonl", numbered(12, seed=2))
    data = prepare(folder, label_scan_rows=30)
    assert len(data.splits["validation"]) == 12 and len(data.splits["test"]) == 12
    assert sorted(row["text"] for row in streamed(data)) == sorted(row["text"] for row in rows)


def test_max_train_samples_caps_the_stream(tmp_path):
    data = prepare(
        write_jsonl(tmp_path / "train.jsonl", numbered(200)), label_scan_rows=50, max_train_samples=30
    )
    assert len(streamed(data)) == 30


def test_a_label_the_head_lacks_stops_the_run_in_one_line(tmp_path):
    rows = numbered(80) + [{"text": "row80 something new", "label": "weather"}]
    data = prepare(write_jsonl(tmp_path / "train.jsonl", rows), label_scan_rows=40, shuffle_buffer=1)
    with pytest.raises(DataError) as stopped:
        streamed(data)
    message = str(stopped.value)
    assert "weather" in message and "raise --label_scan_rows" in message and "\n" not in message


def test_a_streamed_run_trains_saves_and_loads_in_pipeline(tiny_options, tmp_path):
    rows = numbered(160)
    options = {**tiny_options, "dataset": str(write_jsonl(tmp_path / "train.jsonl", rows)), "streaming": True,
               "label_scan_rows": 40, "max_steps": 3}  # fmt: skip
    result = finetune(**options)
    assert result.metrics["train_samples"] == 3 * 4  # steps x batch: what the stream gave
    args = result.trainer.args
    assert args.accelerator_config.dispatch_batches is False  # every process reads its own share
    classify = pipeline("text-classification", model=str(result.output_dir), device=-1)
    predicted = classify([row["text"] for row in rows[:5]])
    assert {p["label"] for p in predicted} <= set(result.labels.names)


def test_a_streamed_run_resumes_to_the_same_weights(tiny_options, tmp_path, batches, monkeypatch):  # noqa: F811
    """Stopped at step 3 of 6 (SIGTERM), resumed with auto: the same batches, losses and weights as a run
    never stopped: Trainer re-reads the stream, shuffled the same way, up to where it stopped."""
    options = {**tiny_options, "dataset": str(write_jsonl(tmp_path / "train.jsonl", numbered(160))),
               "streaming": True, "label_scan_rows": 40, "max_steps": 6, "save_strategy": "steps",
               "save_steps": 50, "logging_steps": 1, "seed": 3}  # fmt: skip
    reference = finetune(**{**options, "output_dir": str(tmp_path / "reference")})
    reference_batches = list(batches)
    batches.clear()
    resumed, _ = stop_and_resume(options, 3, tmp_path / "stopped", batches, monkeypatch)
    assert_same_run(reference, resumed, reference_batches, batches)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            {"max_steps": -1},
            "--streaming reads a stream of unknown length, so the run needs its length in steps",
        ),
        ({"dataset": "bbc-news"}, "--streaming reads files or Hub datasets; bbc-news is built in"),
        ({"samples_per_class": 2}, "--samples_per_class needs the whole training set in memory"),
        ({"long_text": "chunk"}, "--long_text head_tail/chunk needs the whole training set in memory"),
        ({"label_delimiter": "|"}, "--label_delimiter (multi-label) needs the whole training set in memory"),
        (
            {"task": "text-regression"},
            "--streaming works with --task text-classification; text-regression reads",
        ),
        ({"dataset": "missing.jsonl"}, "Dataset file 'missing.jsonl' does not exist"),
        ({"dataset": "notes.txt"}, "--streaming reads CSV/TSV/JSON/JSONL/parquet files"),
        ({"label_scan_rows": 0}, "--label_scan_rows must be at least 1 (got 0)."),
    ],
)
def test_what_a_stream_cant_serve_is_refused_in_one_line(
    tiny_options, tmp_path, no_model_build, change, fragment
):
    (tmp_path / "notes.txt").write_text("a\nb\n")
    options = {**tiny_options, "dataset": str(write_jsonl(tmp_path / "train.jsonl", numbered(60))),
               "streaming": True, "max_steps": 2, **change}  # fmt: skip
    if options["dataset"] == "notes.txt":
        options["dataset"] = str(tmp_path / "notes.txt")
    with pytest.raises((ConfigError, DataError)) as refused:
        finetune(**options)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)
    assert not Path(options["output_dir"]).exists()  # nothing written


def test_streamed_batches_are_grouped_by_length(tiny_options, tmp_path, monkeypatch):
    """hftl's default --train_sampling_strategy group_by_length holds for a stream too: each batch's rows
    come from a length-sorted group, so a batch pads little (random batches of these rows spread ~20)."""
    from hftl.trainer import HftlTrainer

    rng = random.Random(0)
    rows = [{"text": " ".join(["word"] * rng.randint(1, 40)) + f" {row['text']}", "label": row["label"]}
            for row in numbered(300)]  # fmt: skip
    spreads, step = [], HftlTrainer.training_step

    def recording(self, model, inputs, *args, **kwargs):
        lengths = inputs["attention_mask"].sum(dim=1)
        spreads.append(int(lengths.max() - lengths.min()))
        return step(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(HftlTrainer, "training_step", recording)
    options = {**tiny_options, "dataset": str(write_jsonl(tmp_path / "train.jsonl", rows)), "streaming": True,
               "label_scan_rows": 40, "max_steps": 8}  # fmt: skip
    finetune(**options)
    assert len(spreads) == 8 and sum(spreads) / len(spreads) < 4


def test_grouping_keeps_every_row_once_in_a_reproducible_order():
    from datasets import Dataset

    from hftl.data.streaming import group_by_length

    rng = random.Random(1)
    rows = Dataset.from_dict(
        {"input_ids": [[7] * rng.randint(1, 30) for _ in range(450)], "labels": list(range(450))}
    )
    grouped = list(group_by_length(rows.to_iterable_dataset(), batch_size=3, seed=0))
    assert sorted(row["labels"] for row in grouped) == list(range(450))
    assert [row["labels"] for row in grouped] == [
        row["labels"] for row in group_by_length(rows.to_iterable_dataset(), 3, 0)
    ]
    for start in range(0, 150, 3):  # the first group: 50 batches of 3, each from the sorted order
        batch = [len(row["input_ids"]) for row in grouped[start : start + 3]]
        assert max(batch) - min(batch) <= 1


def test_an_unreadable_row_past_the_head_stops_the_run_in_one_line(tiny_options, tmp_path):
    """The CSV reader parses the stream in chunks of 10,000 rows: row 15,000 is read mid-training."""
    rows = make_rows(300)
    lines = ["text,label"] + [f"{rows[i % 300]['text']},{rows[i % 300]['label']}" for i in range(20_000)]
    lines[15_001] = "x,y,z,w"  # four fields where the header has two
    path = tmp_path / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    options = {**tiny_options, "dataset": str(path), "streaming": True, "label_scan_rows": 100,
               "max_steps": 100, "per_device_train_batch_size": 256}  # fmt: skip
    with pytest.raises(DataError) as stopped:
        finetune(**options)
    message = str(stopped.value)
    assert message.startswith(f"A row of {path} past the first 100 rows can't be read: Error tokenizing data")
    assert "--resume_from_checkpoint auto" in message and "\n" not in message
