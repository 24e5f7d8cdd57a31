"""Token classification (named entities, part of speech): one tag per word, IOB2/BIOES tags, any
AutoModelForTokenClassification with a fast tokenizer. Entity-level precision/recall/F1 (seqeval's
default or strict mode) and token accuracy, a per-entity-type report; the saved model gives entity groups
in stock ``pipeline("token-classification", aggregation_strategy="simple")``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset, List
from transformers import AutoModelForTokenClassification

from ..data.labels import LabelSpace
from ..errors import ConfigError, DataError
from ..options.config import DataArguments
from ._base import Task
from ._classification_metrics import argmax_logits
from ._token_inputs import IGNORE, TokenInputs
from ._token_metrics import check_tag_sequences, check_tag_set, detect_scheme, entity_metrics, entity_report

__all__ = ["TagSpace", "TokenClassification", "sort_tags", "word_tags"]

METRIC_NAMES = ("precision", "recall", "f1", "accuracy")
_MODES = ("default", "strict")
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "L": 2, "S": 3, "U": 3}  # BILOU's L-/U- are BIOES's E-/S-
_ENTITY_PREFIXES = tuple(f"{prefix}-" for prefix in _PREFIX_ORDER)


@dataclass(frozen=True)
class TagSpace(LabelSpace):
    """The tags a token classifier predicts, in id order, with the data's tag scheme and how entities are
    scored.

    Args:
        scheme: ``IOB2`` or ``BIOES``, detected from the training tags.
        mode: ``default`` (seqeval's lenient default) or ``strict`` (``--ner_eval_mode``).
    """

    scheme: str = "IOB2"
    mode: str = "default"

    @property
    def entity_types(self) -> list[str]:
        return sorted({name[2:] for name in self.names if name[:2] in _ENTITY_PREFIXES})


def sort_tags(tags) -> list[str]:
    """``O`` first, then by entity type, each type's prefixes in B, I, E, S order (BILOU: B, I, L, U)."""

    def key(tag: str):
        if tag == "O":
            return (0, "", 0)
        if tag[:2] in _ENTITY_PREFIXES:
            return (1, tag[2:], _PREFIX_ORDER[tag[0]])
        return (2, tag, 0)

    return sorted(set(tags), key=key)


def word_tags(predictions, references, names: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Per sentence, the reference and predicted tags of the subwords that carry a label (each word's
    first), from ``(sentences, subwords)`` id arrays padded with -100."""
    predictions, references = np.asarray(predictions), np.asarray(references)
    if predictions.ndim == 3:  # logits, if a caller skipped the argmax
        predictions = predictions.argmax(-1)
    true, predicted = [], []
    for row, labels in zip(predictions, references, strict=True):
        scored = labels != IGNORE
        true.append([names[i] for i in labels[scored]])
        predicted.append([names[i] for i in row[scored]])
    return true, predicted


class EntityMetrics:
    """``compute_metrics``: entity-level precision/recall/F1 and token accuracy over the scored words."""

    def __init__(self, labels: TagSpace):
        self.names, self.mode = list(labels.names), labels.mode

    def __call__(self, eval_pred) -> dict[str, float]:
        true, predicted = word_tags(eval_pred.predictions, eval_pred.label_ids, self.names)
        scores = entity_metrics(true, predicted, mode=self.mode)
        return {name: float(scores[name]) for name in METRIC_NAMES}


def _tags_of(split: Dataset, column: str) -> list[list[str]]:
    return split[column]


def _tokens_column(split: Dataset, tags: str) -> str:
    return next(name for name in split.column_names if name != tags)


class TokenClassification(TokenInputs, Task):
    """One tag per word from a column of word lists and a column of tag lists (or a CoNLL file)."""

    name = "token-classification"
    pipeline_tag = "token-classification"
    peft_task_type = "TOKEN_CLS"  # peft saves the classifier head with the adapter
    auto_model_class = AutoModelForTokenClassification
    demo_model = "sentence-transformers/all-MiniLM-L6-v2"
    demo_dataset = "wnut16"
    label_column_names = ("ner_tags", "tags", "labels")
    report_title = "per-entity-type report on the test split"
    card_metric_order = ("f1", "precision", "recall", "accuracy", "loss")
    card_index_metrics = ("f1", "precision", "recall", "accuracy")
    # per-token outputs line up between teacher and student only when both split words alike
    distill_same_tokenizer = True

    # --- labels -----------------------------------------------------------------------------------
    def build_labels(self, train: Dataset, column: str, data_args: DataArguments) -> TagSpace:
        if data_args.ner_eval_mode not in _MODES:  # the parser checks its choices; Python and YAML come here
            raise ConfigError(
                f"--ner_eval_mode must be one of {', '.join(_MODES)} (got {data_args.ner_eval_mode!r})."
            )
        tags = _tags_of(train, column)
        scheme = detect_scheme(tags)
        check_tag_sequences(train[_tokens_column(train, column)], tags, "train", scheme)
        names = sort_tags(tag for row in tags for tag in row)
        if len(names) < 2:
            raise DataError(
                f"Tag column '{column}' has only the tag {names[0]!r} in train; a tagger needs at least 2 tags."
            )
        return TagSpace(names, scheme=scheme, mode=data_args.ner_eval_mode)

    def labels_from_config(self, config, names: list[str], run_config: dict | None) -> TagSpace:
        mode = (run_config or {}).get("ner_eval_mode") or "default"
        return TagSpace(names, scheme=detect_scheme([names]), mode=mode)

    def encode_labels(
        self, split: Dataset, split_name: str, column: str, labels: TagSpace, data_args: DataArguments
    ) -> Dataset:
        tags = _tags_of(split, column)
        if split_name != "train":
            check_tag_set(set(labels.names), {tag for row in tags for tag in row}, split_name)
            check_tag_sequences(split[_tokens_column(split, column)], tags, split_name, labels.scheme)
        known = labels.label2id
        encoded = split.map(
            lambda batch: {"labels": [[known[tag] for tag in row] for row in batch[column]]},
            batched=True, remove_columns=[column], desc=f"tags ({split_name})",
        )  # fmt: skip
        # the names travel with the ids: preprocessing maps B- to I- for --label_all_subwords
        return encoded.cast_column("labels", List(ClassLabel(names=labels.names)))

    def describe_labels(self, labels: TagSpace) -> str:
        types = labels.entity_types
        return (
            f"tags ({len(labels)}, {labels.scheme}): {', '.join(labels.names[:21])}{' ...' if len(labels) > 21 else ''}; "
            f"entity types ({len(types)}): {', '.join(types)}; scored per entity ({labels.mode} mode)"
        )

    # --- training and evaluation ------------------------------------------------------------------
    def metrics(self, labels: TagSpace) -> tuple:
        # the argmax runs per batch, so evaluation holds (rows, subwords) ids, not (rows, subwords, tags) floats
        return EntityMetrics(labels), argmax_logits

    def metric_names(self, labels: TagSpace | None = None) -> list[str]:
        return ["loss", *METRIC_NAMES]

    def headline_metric(self, labels: TagSpace) -> str:
        return "f1"

    def headline_metrics(self) -> list[str]:
        return ["f1"]

    def report(self, predictions, references, labels: TagSpace) -> tuple[str, dict]:
        true, predicted = word_tags(predictions, references, labels.names)
        return entity_report(true, predicted, labels.mode)

    def result_keys(self, labels: TagSpace) -> list[str]:
        return [f"test_{name}" for name in ("f1", "precision", "recall", "accuracy")]

    def comparison_metrics(self, labels: TagSpace) -> list[str]:
        return ["f1", "precision", "recall"]

    # --- distillation: per-token soft targets -----------------------------------------------------
    def distill_soft_loss(self, student_logits, teacher_logits, labels, temperature) -> torch.Tensor:
        """``T² · KL(teacher_T || student_T)`` per scored position (label != -100), averaged over them."""
        scored = labels != IGNORE
        if not scored.any():
            return student_logits.sum() * 0.0
        student = student_logits[scored].float() / temperature
        teacher = teacher_logits[scored].detach().float() / temperature
        kl = F.kl_div(
            F.log_softmax(student, dim=-1),
            F.log_softmax(teacher, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        return kl * temperature**2

    def check_teacher(self, teacher_config, data_args: DataArguments) -> None:
        kinds = getattr(teacher_config, "architectures", None) or []
        if kinds and not any(kind.endswith("ForTokenClassification") for kind in kinds):
            raise ConfigError(
                f"The teacher is a {kinds[0]}, not a token classifier, so it has no per-word tags to distill; "
                "distill from a token-classification model fine-tuned on these tags."
            )

    def distill_hard_loss(self, logits, labels) -> torch.Tensor:
        """Cross-entropy over the scored positions (zero, not NaN, for a batch with none)."""
        if not (labels != IGNORE).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE)

    # --- model card -------------------------------------------------------------------------------
    def card_tags(self, labels: TagSpace) -> list[str]:
        return ["ner"] if labels.entity_types else []

    def card_details(self, labels: TagSpace, metrics: dict) -> list[str]:
        types = labels.entity_types
        return [
            f"- **Entity types ({len(types)}):** {', '.join(types)}",
            f"- **Tags ({len(labels)}, {labels.scheme}):** {', '.join(labels.names)}",
            f"- **Scoring:** entity-level precision/recall/F1 (seqeval-compatible, {labels.mode} mode) on each "
            "word's first subword; accuracy is per word",
        ]

    def card_usage(self, repo_id: str, labels: TagSpace, base_model: str | None, adapter: str | None) -> str:
        snippet = (
            f'from transformers import pipeline\n\ntag = pipeline("{self.pipeline_tag}", model="{repo_id}", '
            f'aggregation_strategy="simple")\nprint(tag({self.usage_example}))  # entity groups: type, words, score'
        )
        if adapter:
            auto = self.auto_model_class.__name__
            snippet += (
                f"\n\n# or the {adapter} adapter (head included) on its base model\nfrom peft import PeftModel\n"
                f"from transformers import {auto}\n\n"
                f'base = {auto}.from_pretrained("{base_model or "<base model>"}", num_labels={len(labels)})\n'
                f'model = PeftModel.from_pretrained(base, "{repo_id}", subfolder="adapter")'
            )
        return snippet
