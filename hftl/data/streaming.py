"""``--streaming``: training data read as a stream (a ``datasets.IterableDataset``), for files or Hub
datasets too large for memory or the ``datasets`` cache.

The first ``--label_scan_rows`` rows (the head) are read into memory before training and go through the
same checks as any data: the columns, the label set, the per-class counts, and the validation and test
splits when there are no such files (carved from the head, which then doesn't train: the stream skips
it). The rest is read while training: labels encoded by the task as for a split, shuffled within
``--shuffle_buffer`` rows, tokenised by the task. ``datasets`` does the reading and shuffling; Accelerate
gives each process its own share (its own files when there are at least as many as processes, else every
``world_size``-th batch); Trainer, resuming, re-reads the stream up to where it stopped.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from datasets import Dataset, DatasetDict, IterableDataset, load_dataset
from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

from .._log import log
from ..errors import ConfigError, DataError, DatasetNotFoundError, first_line
from ..resolve import hub_status
from ._file_checks import check_file
from .builtin import builtin_datasets
from .labels import _clean  # as clean_label_names cleans a split's labels
from .loading import FILE_FORMATS, SPLIT_FILE_STEMS, DataSource, _load_files, split_files

__all__ = ["check_streaming", "group_by_length", "open_stream", "stream_read_error", "training_stream"]

EVALUATIONS = 10  # a stream has no epochs: evaluate and save this many times over --max_steps
GROUP = 50  # batches sorted by length together, as the mega-batches of transformers' LengthGroupedSampler


def check_streaming(task, method, data_args, training_args) -> None:
    """One line for each option a streamed run can't take, before anything is read."""
    if not task.streams:
        raise ConfigError(
            f"--streaming works with --task text-classification; {task.name} reads its data into memory. "
            "Drop --streaming."
        )
    if training_args.max_steps is None or training_args.max_steps <= 0:
        raise ConfigError(
            "--streaming reads a stream of unknown length, so the run needs its length in steps: add "
            "--max_steps N (N x batch size x processes examples are read)."
        )
    if data_args.dataset in builtin_datasets():
        raise ConfigError(
            f"--streaming reads files or Hub datasets; {data_args.dataset} is built in and loads in memory. "
            "Drop --streaming."
        )
    refused = {
        "--long_text head_tail/chunk": data_args.long_text != "truncate",
        "--samples_per_class": data_args.samples_per_class is not None,
        "--label_fraction": data_args.label_fraction < 1.0,
        "--label_delimiter (multi-label)": data_args.label_delimiter is not None,
        f"--method {method.name}": not method.streams,
        "--hp_search": bool(training_args.hp_search),
        "--find_lr": training_args.find_lr,
        "--unfreeze_schedule": training_args.unfreeze_schedule != "none",
    }
    for option, given in refused.items():
        if given:
            raise ConfigError(
                f"{option} needs the whole training set in memory, which --streaming doesn't read; "
                "drop one of them."
            )


def open_stream(
    name: str, config: str | None, head_rows: int
) -> tuple[DatasetDict, DataSource, IterableDataset]:
    """(raw splits with the head as ``train``, where the data came from, the whole training stream)."""
    path = Path(os.path.expanduser(name))
    others: dict[str, Dataset] = {}
    if path.is_dir() or path.is_file():
        files = split_files(path) if path.is_dir() else {"train": str(path)}
        source = DataSource("folder" if path.is_dir() else "file", str(path))
        suffix = Path(files["train"]).suffix.lower()
        if suffix not in FILE_FORMATS or FILE_FORMATS[suffix][0] == "conll":
            raise DatasetNotFoundError(
                f"--streaming reads CSV/TSV/JSON/JSONL/parquet files; {files['train']} is not one of them."
            )
        check_file(Path(files["train"]))
        builder, options = FILE_FORMATS[suffix]
        stream = load_dataset(
            builder, data_files={"train": files["train"]}, split="train", streaming=True, **options
        )
        held = {split: file for split, file in files.items() if split != "train"}
        others = dict(_load_files(held)) if held else {}
    elif path.suffix.lower() in FILE_FORMATS or name.startswith((".", "/", "~")):
        raise DatasetNotFoundError(f"Dataset file '{name}' does not exist; check the path.")
    else:
        source = DataSource("hub", name)
        stream, others = _open_hub(name, config)
    try:
        head = Dataset.from_list(list(stream.take(head_rows)))
    except Exception as exc:  # noqa: BLE001 - parse errors of the file's first rows come in many types
        raise DataError(f"Could not read the first rows of {source}: {first_line(exc)}.") from None
    if len(head) == 0:
        raise DataError(f"The train split of {source} is empty; it needs labelled examples.")
    splits = {"train": head, **{SPLIT_FILE_STEMS.get(k.lower(), k): v for k, v in others.items()}}
    return DatasetDict(splits), source, stream


def _open_hub(name: str, config: str | None) -> tuple[IterableDataset, dict[str, Dataset]]:
    status = hub_status()
    if status != "reachable":
        raise DatasetNotFoundError(
            f"Dataset '{name}' is not a local file or folder and {status}, so it cannot be streamed from the "
            "Hub. Pass a CSV/JSON/JSONL/parquet file."
        )
    try:
        splits = load_dataset(name, config, streaming=True)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for a missing repo/config
        raise DatasetNotFoundError(
            f"Dataset '{name}' could not be streamed from the Hub: {first_line(exc)}."
        ) from None
    if "train" not in splits:
        raise DataError(f"Hub dataset {name} has no train split (splits: {', '.join(splits)}).")
    # validation and test are read whole: they are scored on every evaluation
    others = {split: load_dataset(name, config, split=split) for split in splits if split != "train"}
    return splits["train"], others


def training_stream(
    stream: IterableDataset, *, task, data_args, labels, input_columns: list[str], label_column: str,
    renamed: dict[str, str], skip: int, seed: int,
) -> IterableDataset:  # fmt: skip
    """The stream the model trains on: past the ``skip`` rows held out, capped, shuffled, labels encoded."""
    if renamed:
        stream = stream.rename_columns(renamed)
    if skip:
        stream = stream.skip(skip)
    if data_args.max_train_samples:
        stream = stream.take(data_args.max_train_samples)
    stream = stream.select_columns([*input_columns, label_column])
    stream = stream.shuffle(seed=seed, buffer_size=data_args.shuffle_buffer)
    scanned = data_args.label_scan_rows

    def encode(batch):
        batch[label_column] = [
            _clean(value) if isinstance(value, str) else value for value in batch[label_column]
        ]
        shown = not are_progress_bars_disabled()
        disable_progress_bars()  # a bar for every batch of the stream would flood the log
        try:
            split = task.encode_labels(Dataset.from_dict(batch), "train", label_column, labels, data_args)
        except DataError as error:
            raise DataError(
                f"{error} (in the training stream past the first {scanned} rows, which set the labels: raise "
                "--label_scan_rows, or fix those rows)"
            ) from None
        finally:
            if shown:
                enable_progress_bars()
        return split.to_dict()

    where = (
        f"past its first {skip} rows (validation and test were carved from them)"
        if skip
        else "from its start"
    )
    log(
        f"streaming: training reads the stream {where} as it trains, shuffled within {data_args.shuffle_buffer:,} rows"
    )
    return stream.map(encode, batched=True, remove_columns=[label_column])


def group_by_length(
    stream: IterableDataset, batch_size: int, seed: int, column: str = "input_ids"
) -> IterableDataset:
    """A tokenised stream reordered ``GROUP`` batches at a time into batches of similar length, in a random
    order: what ``--train_sampling_strategy group_by_length`` (hftl's default) does for a split in memory.
    Random batches of tweets pad to 1.75x the tokens (58 vs 33 a row, MiniLM, batch 32). Written here
    because Trainer's length-grouped sampler needs the whole split; ``batch_size`` is the global batch
    (per device x processes), since Accelerate hands each process a slice of each global batch."""

    def regroup(rows: dict) -> dict:
        lengths = [len(ids) for ids in rows[column]]
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        # seeded by the rows themselves: the same rows regroup the same way when a resume re-reads them
        random.Random(hash((seed, len(order), *rows[column][0][:16]))).shuffle(batches)
        picked = [index for batch in batches for index in batch]
        return {key: [values[index] for index in picked] for key, values in rows.items()}

    return stream.map(regroup, batched=True, batch_size=GROUP * batch_size)


def stream_read_error(error: Exception, data_args) -> DataError | None:
    """One line for a row past the head that the reader can't parse (it surfaces mid-training, from inside
    the data loader), or None for any other error."""
    import json

    import pandas
    import pyarrow

    unreadable = (
        pyarrow.lib.ArrowInvalid,
        pandas.errors.ParserError,
        json.JSONDecodeError,
        UnicodeDecodeError,
    )
    if not isinstance(error, unreadable):
        return None
    return DataError(
        f"A row of {data_args.dataset} past the first {data_args.label_scan_rows} rows can't be read: "
        f"{first_line(error)}. Fix or remove it; the checkpoints saved so far resume "
        "(--resume_from_checkpoint auto)."
    )
