"""Documents longer than ``--max_length`` (``--long_text``): keep their head and tail, or split them into
overlapping windows whose logits are pooled per document.

- ``head_tail`` keeps the first quarter and the last three quarters of the room a window leaves for text
  (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?": head 128 + tail 382 of 510 was
  their best at 512), in the tokenizer's own special-token frame.
- ``chunk`` tokenises each document into windows of ``max_length`` tokens, consecutive windows sharing
  ``stride`` tokens (the fast tokenizer's overflow, as transformers' question-answering examples do). A
  tokenised row is one document holding its windows; :class:`DocumentWindowsCollator` flattens a batch's
  windows into one padded batch and adds the window -> document index; :func:`pool_windows` (called by
  ``HftlTrainer``) turns the windows' logits into the documents' before the loss and the metrics, so
  training, evaluation and test all work per document.

The strategy is recorded in the model's ``config.json`` (:data:`CONFIG_KEY`) for prediction tooling;
stock ``pipeline()`` ignores it and truncates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers import DataCollatorWithPadding
from transformers.loss.loss_utils import ForSequenceClassificationLoss

from ..options.checks import default_chunk_stride

__all__ = [
    "CONFIG_KEY",
    "WINDOWS",
    "HEAD_SHARE",
    "LongText",
    "long_text_settings",
    "encode_head_tail",
    "encode_windows",
    "DocumentWindowsCollator",
    "pool_windows",
    "document_aggregation",
    "document_loss",
]

CONFIG_KEY = "hftl_long_text"  # config.json entry (absent for truncate: nothing changes)
WINDOWS = "hftl_window_document"  # batch key: each window's document index within the batch
HEAD_SHARE = 128 / 510  # Sun et al.'s best split at 512 tokens, kept at any length
_OVERFLOW = "overflow_to_sample_mapping"
_SPECIAL = "special_tokens_mask"


@dataclass(frozen=True)
class LongText:
    """A run's long-document settings, resolved against ``max_length`` and the tokenizer.

    Args:
        strategy: ``truncate``, ``head_tail`` or ``chunk``.
        room: Text tokens a window holds (``max_length`` less the special tokens).
        head: ``head_tail``: text tokens kept from the beginning (the rest of ``room`` from the end).
        stride: ``chunk``: tokens consecutive windows share.
        max_chunks: ``chunk``: windows kept per document (None: all).
        aggregation: ``chunk``: ``mean`` or ``max`` of the windows' logits.
    """

    strategy: str
    room: int
    head: int = 0
    stride: int = 0
    max_chunks: int | None = None
    aggregation: str = "mean"

    def record(self) -> dict | None:
        """What ``config.json`` records (None for ``truncate``)."""
        if self.strategy == "head_tail":
            return {"strategy": self.strategy, "head": self.head, "tail": self.room - self.head}
        if self.strategy == "chunk":
            settings = asdict(self)
            return {key: settings[key] for key in ("strategy", "stride", "max_chunks", "aggregation")}
        return None


def long_text_settings(data_args, max_length: int, processor, pair: bool = False) -> LongText:
    """The run's :class:`LongText` from the data options (``chunk_stride`` auto: a quarter of max_length)."""
    room = max_length - processor.num_special_tokens_to_add(pair=pair)
    stride = (
        data_args.chunk_stride if data_args.chunk_stride is not None else default_chunk_stride(max_length)
    )
    return LongText(
        strategy=data_args.long_text,
        room=room,
        head=round(room * HEAD_SHARE),
        stride=stride,
        max_chunks=data_args.max_chunks,
        aggregation=data_args.chunk_aggregation,
    )


def _windows_by_document(encoded, documents: int) -> list[list[int]]:
    by_document: list[list[int]] = [[] for _ in range(documents)]
    for window, document in enumerate(encoded[_OVERFLOW]):
        by_document[document].append(window)
    return by_document


def _right_truncating(processor):
    """The tokenizer with right-side truncation, so overflow windows come in reading order."""
    side = processor.truncation_side
    processor.truncation_side = "right"
    return side


def encode_head_tail(processor, texts: list[str], max_length: int, settings: LongText) -> tuple[dict, list]:
    """Each text's tokenised row: as truncation gives it when it fits, else its first ``head`` and last
    ``room - head`` text tokens in the tokenizer's frame (special tokens, token types); and whether it was cut."""
    side = _right_truncating(processor)
    try:
        encoded = processor(
            texts,
            truncation=True,
            max_length=max_length,
            return_overflowing_tokens=True,
            return_special_tokens_mask=True,
        )
    finally:
        processor.truncation_side = side
    names = [name for name in encoded if name not in (_OVERFLOW, _SPECIAL)]
    rows: dict[str, list] = {name: [] for name in names}
    cut = []
    for windows in _windows_by_document(encoded, len(texts)):
        first = windows[0]
        for name in names:
            rows[name].append(list(encoded[name][first]))
        cut.append(len(windows) > 1)
        if len(windows) == 1:
            continue
        text = [
            token
            for window in windows
            for token, special in zip(encoded["input_ids"][window], encoded[_SPECIAL][window], strict=True)
            if not special
        ]
        kept = iter(text[: settings.head] + text[len(text) - (settings.room - settings.head) :])
        # the first window is full: its text positions are exactly room, refilled with head + tail
        rows["input_ids"][-1] = [
            token if special else next(kept)
            for token, special in zip(rows["input_ids"][-1], encoded[_SPECIAL][first], strict=True)
        ]
    return rows, cut


def encode_windows(processor, texts: list[str], max_length: int, settings: LongText) -> tuple[dict, list]:
    """Each text's windows (a row holds a list of tokenised windows per model input), at most
    ``max_chunks``; and each text's window count before the cap."""
    side = _right_truncating(processor)
    try:
        encoded = processor(
            texts,
            truncation=True,
            max_length=max_length,
            stride=settings.stride,
            return_overflowing_tokens=True,
        )
    finally:
        processor.truncation_side = side
    names = [name for name in encoded if name != _OVERFLOW]
    rows: dict[str, list] = {name: [] for name in names}
    counts = []
    for windows in _windows_by_document(encoded, len(texts)):
        counts.append(len(windows))
        kept = windows[: settings.max_chunks] if settings.max_chunks else windows
        for name in names:
            rows[name].append([list(encoded[name][window]) for window in kept])
    return rows, counts


class DocumentWindowsCollator(DataCollatorWithPadding):
    """The stock padding collator, and for rows that hold a document's windows: every window of the batch
    padded into one batch, the labels one per document, and :data:`WINDOWS`, each window's document index
    (rows of one window's tokens, as truncate and head_tail make, are padded as stock does)."""

    def __call__(self, features: list[dict]) -> dict:
        if not features or not isinstance(features[0]["input_ids"][0], list):
            return super().__call__(features)
        windows, documents = [], []
        for index, feature in enumerate(features):
            inputs = {name: value for name, value in feature.items() if name != "labels"}
            count = len(inputs["input_ids"])
            windows.extend({name: value[w] for name, value in inputs.items()} for w in range(count))
            documents.extend([index] * count)
        batch = {}
        if "labels" in features[0]:  # first: Trainer counts a batch's examples by its first tensor
            batch["labels"] = torch.tensor([feature["labels"] for feature in features])
        batch.update(super().__call__(windows))
        batch[WINDOWS] = torch.tensor(documents)
        return batch


def pool_windows(logits: torch.Tensor, windows: torch.Tensor, aggregation: str) -> torch.Tensor:
    """Per-document logits (documents x outputs) from per-window logits, windows grouped by document in
    order (as the collator lays them out): each document's mean or per-output max."""
    counts = torch.bincount(windows).tolist()  # one host sync a batch
    groups = logits.split(counts)
    if aggregation == "max":
        return torch.stack([group.max(dim=0).values for group in groups])
    return torch.stack([group.mean(dim=0) for group in groups])


def document_aggregation(model) -> str:
    """The aggregation the model's config records (``mean`` when it records none)."""
    recorded = getattr(getattr(model, "config", None), CONFIG_KEY, None) or {}
    return recorded.get("aggregation", "mean")


def document_loss(logits: torch.Tensor, labels: torch.Tensor, config, class_loss=None) -> torch.Tensor:
    """The loss on documents' pooled logits: ``class_loss`` when the run has one (class weights, label
    smoothing, standardised regression), else the model's own (cross-entropy, BCE or MSE by problem type)."""
    if class_loss is not None:
        return class_loss(logits, labels)
    return ForSequenceClassificationLoss(labels, logits, config)
