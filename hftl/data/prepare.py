"""From a ``--dataset`` value to validated train/validation/test splits with integer labels.

Everything here runs before a model is built, so bad data costs one line, not a traceback.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace

from datasets import Dataset, DatasetDict, IterableDataset

from .._log import log
from ..errors import DataError
from ..options.config import DataArguments
from .builtin import builtin_datasets
from .columns import find_label_column
from .labels import LabelSpace, clean_label_names, is_unlabelled, missing_value_labels
from .loading import DataSource, _strip_column_names, duplicated_columns, load_raw_dataset
from .streaming import open_stream, training_stream

__all__ = ["PreparedData", "prepare_data"]

SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    """Validated splits, ready for a task's preprocessing.

    Args:
        splits: ``train``/``validation``/``test``, each with the input columns and ``labels`` as the task
            encoded them (class ids, multi-hot rows, ...).
        labels: The label space the task built from train (the class names in id order).
        input_columns: The columns the task turns into model inputs (e.g. one text column or a pair).
        source: Where the data came from (``kind`` builtin/folder/file/hub; ``str()`` for messages).
        tuned: Settings a built-in dataset was tuned with (empty for other data).
        validation_is_train: Whether the validation split is the training rows (no validation file, and a
            carved one could not hold an example of every class).
        unlabelled: Training rows whose labels ``--label_fraction`` or ``--samples_per_class`` hides
            (``None`` when all are used); their label column is kept but must not be trained on.
    """

    splits: DatasetDict
    labels: LabelSpace
    input_columns: list[str]
    source: DataSource
    tuned: dict = field(default_factory=dict)
    unlabelled: Dataset | None = None
    validation_is_train: bool = False  # too few rows to hold any out: validation re-scores the training rows
    # --streaming: what trains, read while training (labels encoded); ``splits["train"]`` is then the
    # stream's first rows, which set the labels and the per-class counts
    train_stream: IterableDataset | None = None


def _carve(
    train: Dataset, size: float, seed: int, name: str, stratify: str | None
) -> tuple[Dataset, Dataset]:
    if len(train) < 3:
        raise DataError(
            f"The train split has {len(train)} rows, too few to carve a {name} split from; add data or "
            f"provide a {name} split."
        )
    try:
        parts = train.train_test_split(test_size=size, seed=seed, stratify_by_column=stratify)
    except ValueError:  # a class with a single example cannot be stratified
        try:
            parts = train.train_test_split(test_size=size, seed=seed)
        except ValueError:  # one side would be empty
            option = {"unlabelled": "--label_fraction"}.get(name, f"--{name}_split_size")
            raise DataError(
                f"Carving {size:.0%} of the {len(train)} training rows off as the {name} split leaves one side "
                f"empty; change {option} or add data."
            ) from None
    return parts["train"], parts["test"]


def _check_every_class_trains(train_labels: list[int], labels: LabelSpace, carved: list[str]) -> None:
    """Refuse a carve that took a class's last training rows (1 example of a class, say), and warn in one line
    about a class with a single training example: the model would have a class it never saw, or one it saw
    once. Before any compute."""
    counts = Counter(train_labels)
    emptied = [name for index, name in enumerate(labels.names) if not counts.get(index)]
    if emptied and carved:
        names = [part.split()[0] for part in carved]
        what = f"the {' and '.join(names)} split{'s' if len(names) > 1 else ''}"
        raise DataError(
            f"Carving {what} from train left no training example of {', '.join(map(repr, emptied))}: it had too "
            "few. Give every class 2 or more training examples (8 or more to learn well), or provide "
            f"{what} as a file of its own."
        )
    single = [name for index, name in enumerate(labels.names) if counts.get(index) == 1]
    if single:
        log(
            f"warning: {len(single)} class(es) have a single training example ({', '.join(map(repr, single[:5]))}); "
            "expect little from them: 8 or more examples per class learn well"
        )


def _warn_about_overlap(
    splits: dict[str, Dataset], input_columns: list[str], skip: tuple[str, ...] = ()
) -> None:
    """Log how many validation/test rows repeat a training row's inputs exactly (text columns only):
    those rows score what the model memorised, not how it generalises."""
    features = splits["train"].features
    if not all(
        getattr(features[column], "dtype", None) in ("string", "large_string") for column in input_columns
    ):
        return
    seen = set(zip(*(splits["train"][column] for column in input_columns), strict=True))
    counts = []
    for name in ("validation", "test"):
        if name in skip:
            continue  # the training rows themselves (too few to hold any out), said when chosen
        rows = zip(*(splits[name][column] for column in input_columns), strict=True)
        repeated = sum(1 for row in rows if row in seen)
        if repeated:
            counts.append(f"{repeated} of {len(splits[name])} {name}")
    if counts:
        log(
            f"warning: {' and '.join(counts)} rows have the same {', '.join(input_columns)} as a training row, "
            "so their scores overstate accuracy on new data; remove the duplicates from train or from the "
            "evaluation splits"
        )


def _check_duplicated(duplicated: dict, input_columns: list[str], label_column: str) -> None:
    """A header naming a column twice: pandas reads the copies as ``label``, ``label.1``, so which one a
    run uses is chance; refused where the run uses one, logged where it uses none."""
    unused = []
    for name, (file, copies) in duplicated.items():
        used = [column for column in [*input_columns, label_column] if column in copies]
        if used:
            role = "label" if label_column in copies else "input"
            raise DataError(
                f"The header of {file} names column '{name}' more than once, and the run uses it as its {role} "
                f"column (read as {', '.join(repr(copy) for copy in copies)}); give every column its own name."
            )
        unused.append(f"'{name}' in {file} (read as {', '.join(copies)})")
    if unused:
        log(f"the header names column(s) {'; '.join(unused)} more than once; the run doesn't use them")


def _reorder(labels: LabelSpace, order: list[str]) -> LabelSpace:
    """The data's classes in the teacher's order, matched by name."""
    missing, extra = sorted(set(labels.names) - set(order)), sorted(set(order) - set(labels.names))
    if missing or extra:
        raise DataError(
            "The teacher's classes don't match the data's: "
            + "; ".join(part for part in (
                f"the data has {', '.join(missing[:5])} that the teacher lacks" if missing else "",
                f"the teacher has {', '.join(extra[:5])} that the training data lacks" if extra else "",
            ) if part)
            + ". Distill from a teacher fine-tuned on these labels."
        )  # fmt: skip
    return replace(labels, names=list(order))


def _cap(split: Dataset, limit: int | None, seed: int) -> Dataset:
    if limit is None or limit >= len(split):
        return split
    return split.shuffle(seed=seed).select(range(limit)).flatten_indices()


def prepare_data(data_args: DataArguments, task, label_order: list[str] | None = None) -> PreparedData:
    """Load, check and split the data named by ``data_args``.

    Args:
        data_args: The data options.
        task: The :class:`hftl.tasks.Task`; it names the input columns and checks their values, and
            decides what the label column means (builds and encodes the labels, what to stratify on).
        label_order: Class names in the order the model must use (a distillation teacher's); the data's
            classes must be the same names.
    """
    # a task that reads token/tag text (token classification) takes .txt/.tsv files as CoNLL files too
    token_text = getattr(task, "reads_token_text", False)
    stream, renamed = None, {}
    if data_args.streaming:  # the head of the stream stands for train in every check (hftl/data/streaming.py)
        raw, source, stream = open_stream(
            data_args.dataset, data_args.dataset_config, data_args.label_scan_rows
        )
        renamed = {column: column.strip() for column in raw["train"].column_names if column != column.strip()}
        raw = _strip_column_names(raw)
    else:
        raw, source = load_raw_dataset(data_args.dataset, data_args.dataset_config, token_text=token_text)
    if "train" not in raw:
        raise DataError(
            f"{source} has no train split (splits: {', '.join(raw) or 'none'}); provide one named 'train'."
        )
    train = raw["train"]
    if len(train) == 0:
        raise DataError(f"The train split of {source} is empty; it needs labelled examples.")
    duplicated = duplicated_columns(raw)
    raw = task.combine_label_columns(dict(raw), data_args)  # e.g. several regression targets as one column
    train = raw["train"]
    try:
        label_column = find_label_column(train, data_args.label_column, task.label_column_names)
        input_columns = task.find_inputs(train, label_column, data_args)
    except DataError as error:
        if not duplicated:
            raise
        names = ", ".join(
            f"'{name}' (read as {', '.join(copies)})" for name, (_, copies) in duplicated.items()
        )
        raise DataError(f"{error} The header names {names} more than once.") from None
    wanted = [*input_columns, label_column]
    _check_duplicated(duplicated, input_columns, label_column)
    raw = missing_value_labels(dict(raw), label_column)

    splits = {}
    for name in SPLITS:
        if name not in raw:
            continue
        split = raw[name]
        missing = [column for column in wanted if column not in split.column_names]
        if missing:
            raise DataError(
                f"The {name} split lacks column(s) {', '.join(missing)} that train has; its columns are: "
                f"{', '.join(split.column_names)}."
            )
        if name != "train" and is_unlabelled(split, label_column):
            log(
                f"the {name} split has no labels (all missing or -1): carving a labelled one from train instead"
            )
            continue
        splits[name] = task.check_inputs(name, split.select_columns(wanted), input_columns, data_args)

    splits = clean_label_names(splits, label_column)
    labels = task.build_labels(splits["train"], label_column, data_args)
    if label_order is not None:
        labels = _reorder(labels, label_order)
    splits = {
        name: task.encode_labels(split, name, label_column, labels, data_args)
        for name, split in splits.items()
    }
    reused: tuple[str, ...] = ()
    carved, stratify = [], task.stratify_column(labels)
    if "test" not in splits:
        splits["train"], splits["test"] = _carve(
            splits["train"], data_args.test_split_size, data_args.split_seed, "test", stratify
        )
        carved.append(f"test {data_args.test_split_size:.0%}")
    held_out = math.ceil(data_args.validation_split_size * len(splits["train"]))
    if "validation" not in splits and stratify and held_out < len(labels.names):
        # a few examples per class: a split that can't hold one of each class can't score every class, and
        # would cost the model a large share of what it learns from; every row trains, validation re-scores them
        splits["validation"], reused = splits["train"], ("validation",)
        log(
            f"validation: {held_out} of {len(splits['train'])} training rows can't hold one example of each of the "
            f"{len(labels.names)} classes, so none are held out: all train, and the validation scores are training "
            "scores (give a validation file to hold rows out)"
        )
    if "validation" not in splits:
        splits["train"], splits["validation"] = _carve(
            splits["train"],
            data_args.validation_split_size,
            data_args.split_seed,
            "validation",
            stratify,
        )
        carved.append(f"validation {data_args.validation_split_size:.0%}")
    if stratify:
        _check_every_class_trains(splits["train"][stratify], labels, carved)
    splits["train"] = _cap(splits["train"], data_args.max_train_samples, data_args.split_seed)
    unlabelled = None
    if data_args.samples_per_class is not None:
        splits["train"], unlabelled = task.select_per_class(
            splits["train"], data_args.samples_per_class, data_args.split_seed, labels
        )
        log(
            f"samples_per_class {data_args.samples_per_class}: {len(splits['train'])} training rows keep their labels, "
            f"{len(unlabelled) if unlabelled is not None else 0} are treated as unlabelled"
        )
    if data_args.label_fraction < 1.0:
        splits["train"], unlabelled = _carve(
            splits["train"],
            1.0 - data_args.label_fraction,
            data_args.split_seed,
            "unlabelled",
            stratify,
        )
        log(
            f"label_fraction {data_args.label_fraction:g}: {len(splits['train'])} training rows keep their labels, "
            f"{len(unlabelled)} are treated as unlabelled"
        )
    splits["validation"] = _cap(splits["validation"], data_args.max_eval_samples, data_args.split_seed)
    splits["test"] = _cap(splits["test"], data_args.max_test_samples, data_args.split_seed)
    for name in SPLITS:
        if len(splits[name]) == 0:
            raise DataError(
                f"The {name} split of {source} has no rows; add examples to it, or remove it so hftl "
                "carves one from train."
            )

    sizes = " / ".join(f"{name} {len(splits[name])}" for name in SPLITS)
    train_stream = None
    if stream is not None:
        sizes = (
            f"train: a stream (its first {len(raw['train'])} rows read for the labels) / "
            + sizes.split(" / ", 1)[1]
        )
        train_stream = training_stream(
            stream, task=task, data_args=data_args, labels=labels, input_columns=input_columns,
            label_column=label_column, renamed=renamed, skip=len(raw["train"]) if carved else 0,
            seed=data_args.split_seed,
        )  # fmt: skip
    note = (
        f" (carved from train with split_seed {data_args.split_seed}: {', '.join(carved)})" if carved else ""
    )
    log(f"data: {source}: {sizes}{note}; inputs {', '.join(input_columns)}, label '{label_column}'")
    log(task.describe_labels(labels))
    _warn_about_overlap(splits, input_columns, reused)
    spec = builtin_datasets().get(data_args.dataset)
    return PreparedData(
        splits=DatasetDict({name: splits[name] for name in SPLITS}),
        labels=labels,
        input_columns=input_columns,
        source=source,
        tuned=dict(spec.tuned) if spec else {},
        unlabelled=unlabelled,
        validation_is_train=bool(reused),
        train_stream=train_stream,
    )
