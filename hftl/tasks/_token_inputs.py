"""Inputs of token classification: a column of word lists beside a column of tag lists, tokenised with
``is_split_into_words`` and the word-level labels aligned to subwords (the first subword of each word
carries its label, the rest and the special tokens -100; optionally every subword)."""

from __future__ import annotations

from datasets import ClassLabel, Dataset, DatasetDict, List, Sequence, Value
from datasets.fingerprint import Hasher
from transformers import DataCollatorForTokenClassification

from .._log import log
from ..errors import ConfigError, DataError
from ..options.config import DataArguments, ModelArguments
from .text_classification import TextInputs, _tokenize_fingerprint

__all__ = ["TokenInputs", "TOKEN_COLUMN_NAMES", "align_labels", "continuation_ids"]

TOKEN_COLUMN_NAMES = ("tokens", "words")
IGNORE = -100  # the label cross-entropy and the metrics skip
_TRUNCATED = "hftl_truncated"
_UNSEEN = "hftl_unseen_words"
_NOT_INSIDE = ("B-", "E-", "S-", "L-", "U-")  # prefixes a later subword turns into I- (BILOU's L-/U- too)


def _inner(feature):
    """The item feature of a list column (``None`` for any other column)."""
    return feature.feature if isinstance(feature, (List, Sequence)) else None


def _is_text(feature) -> bool:
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def continuation_ids(names: list[str]) -> list[int]:
    """For each tag id, the tag a word's later subwords get with ``--label_all_subwords``: ``B-x`` (and
    BIOES's ``S-x``, ``E-x``, BILOU's ``L-x``, ``U-x``) become ``I-x`` where the data has it, as transformers' ``run_ner`` does;
    other tags stay."""
    index = {name: number for number, name in enumerate(names)}
    return [
        index.get(f"I-{name[2:]}", number) if name[:2] in _NOT_INSIDE else number
        for number, name in enumerate(names)
    ]


def align_labels(
    word_ids: list[int | None], word_labels: list[int], continuation: list[int] | None
) -> list[int]:
    """Subword labels from word labels: the first subword of each word gets the word's label, later
    subwords -100 (``continuation`` None) or ``continuation[label]``; special tokens (word id None) -100."""
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE)
        elif word != previous:
            labels.append(word_labels[word])
        else:
            labels.append(IGNORE if continuation is None else continuation[word_labels[word]])
        previous = word
    return labels


class TokenInputs(TextInputs):
    """A column of word lists (``tokens``/``words``, or ``--text_column``) and a fast tokenizer, whose
    ``word_ids`` map subwords back to words. Padding (inputs and the -100 labels) is left to
    ``DataCollatorForTokenClassification``."""

    usage_example = '"Taylor Swift played Madison Square Garden in New York last night"'
    card_widget_texts = ("Taylor Swift played Madison Square Garden in New York last night",)
    reads_token_text = True  # .txt/.tsv data files are CoNLL token/tag text (hftl.data.prepare)

    def find_inputs(self, train: Dataset, label_column: str, data_args: DataArguments) -> list[str]:
        columns = train.column_names
        given = data_args.text_columns
        if given:
            if len(given) != 1:
                raise DataError(
                    f"--text_column takes one column of word lists for {self.name}, got {len(given)}."
                )
            if given[0] not in columns:
                raise DataError(
                    f"Token column '{given[0]}' not found; columns are: {', '.join(columns)}. Fix --text_column."
                )
            if given[0] == label_column:
                raise DataError(
                    f"Column '{label_column}' is both the tags and the tokens; fix --text_column."
                )
            return given
        named = [name for name in columns if name.lower() in TOKEN_COLUMN_NAMES and name != label_column]
        if len(named) == 1:
            return named
        lists = [name for name in columns if name != label_column and _is_text(_inner(train.features[name]))]
        if not named and len(lists) == 1:
            return lists
        raise DataError(
            f"{'Several' if len(named) > 1 else 'No'} column(s) could be the tokens ({', '.join(named or columns)}); "
            "pass --text_column NAME (a column holding each sentence's words as a list)."
        )

    def check_inputs(
        self, split_name: str, split: Dataset, input_columns: list[str], data_args: DataArguments
    ) -> Dataset:
        if len(split) == 0:
            return split  # reported as an empty split once the splits are settled
        tokens = input_columns[0]
        tags = next(name for name in split.column_names if name not in input_columns)
        for column, what in ((tokens, "words"), (tags, "tags")):
            if _inner(split.features[column]) is None:
                kind = "text" if _is_text(split.features[column]) else type(split.features[column]).__name__
                raise DataError(
                    f"Column '{column}' of the {split_name} split holds {kind}, not a list of {what} per row; "
                    f'token classification reads each sentence as lists (e.g. ["Paris", "is", "nice"] and '
                    '["B-loc", "O", "O"]), or a CoNLL file (.conll: a word and its tag per line).'
                )
        if not _is_text(_inner(split.features[tokens])):
            raise DataError(
                f"Token column '{tokens}' of the {split_name} split holds lists of "
                f"{_inner(split.features[tokens])}, not words; pass the right column with --text_column."
            )
        inner = _inner(split.features[tags])
        if isinstance(inner, ClassLabel):  # tag ids with names (Hub NER datasets): the names from here on
            names = inner.names
            values = [[names[i] for i in row] if row is not None else None for row in split[tags]]
            # a new column: map() would keep the ClassLabel feature and encode the names back to ids
            split = split.remove_columns(tags).add_column(tags, values, feature=List(Value("string")))
        elif not _is_text(inner):
            raise DataError(
                f"Tag column '{tags}' of the {split_name} split holds lists of {inner}, not tag names; write the "
                "tags as text (B-per, I-per, O) or give the column ClassLabel names."
            )
        self._check_rows(split, split_name, tokens, tags)
        return split

    @staticmethod
    def _check_rows(split: Dataset, split_name: str, tokens: str, tags: str) -> None:
        """Missing rows, words and tags (null), which would fail inside the tokenizer; lengths, empty
        sentences and the tags themselves are checked with the label space (``_token_metrics``)."""
        for index, (words, labels) in enumerate(zip(split[tokens], split[tags], strict=True)):
            if words is None or labels is None:
                column = tokens if words is None else tags
                raise DataError(
                    f"Row {index} of the {split_name} split has no value in column '{column}'; drop or fill it."
                )
            if any(word is None for word in words) or any(label is None for label in labels):
                raise DataError(
                    f"Row {index} of the {split_name} split has a missing word or tag (null); fill it."
                )

    def load_processor(self, path: str, model_args: ModelArguments):
        tokenizer = super().load_processor(path, model_args)
        if not tokenizer.is_fast:
            raise ConfigError(
                f"The tokenizer of '{model_args.model or path}' ({type(tokenizer).__name__}) is not a fast tokenizer, "
                "so subwords can't be mapped back to words; use a checkpoint with a tokenizer.json."
            )
        if getattr(tokenizer, "add_prefix_space", None) is False:
            # byte-level BPE (RoBERTa, GPT-2) refuses word lists without it; saved with the tokenizer, so
            # pipeline() splits the same way
            tokenizer = type(tokenizer).from_pretrained(
                path, revision=model_args.revision, trust_remote_code=model_args.trust_remote_code,
                add_prefix_space=True,
            )  # fmt: skip
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        return tokenizer

    def preprocess(
        self,
        data: DatasetDict,
        processor,
        input_columns: list[str],
        max_length: int | None,
        data_args: DataArguments,
    ) -> DatasetDict:
        column = input_columns[0]

        def tokenize(batch, continuation):
            encoded = processor(
                batch[column], is_split_into_words=True, truncation=True, max_length=max_length
            )
            labels, truncated, unseen = [], [], []
            for index, word_labels in enumerate(batch["labels"]):
                word_ids = encoded.word_ids(index)
                labels.append(align_labels(word_ids, word_labels, continuation))
                overflow = bool(encoded.encodings[index].overflowing)
                truncated.append(overflow)
                # words that tokenise to nothing (e.g. a lone zero-width character) have no subword to score
                last = max((word for word in word_ids if word is not None), default=-1)
                seen = {word for word in word_ids if word is not None}
                unseen.append(
                    sum(1 for word in range(last + 1 if overflow else len(word_labels)) if word not in seen)
                )
            encoded["labels"], encoded[_TRUNCATED], encoded[_UNSEEN] = labels, truncated, unseen
            return encoded

        base = _tokenize_fingerprint(processor, input_columns, max_length, tokenize)
        tokenized = {}
        for name, split in data.items():
            names = _inner(split.features["labels"]).names
            # later subwords are trained on only in the training split: evaluation scores each word once
            continuation = (
                continuation_ids(names) if data_args.label_all_subwords and name == "train" else None
            )
            tokenized[name] = split.map(
                tokenize, fn_kwargs={"continuation": continuation}, batched=True,
                remove_columns=[column, "labels"], desc="tokenising",
                new_fingerprint=Hasher.hash([split._fingerprint, base, continuation]) if base else None,
            )  # fmt: skip
        tokenized = DatasetDict(tokenized)
        counts = {name: sum(split[_TRUNCATED]) for name, split in tokenized.items()}
        if any(counts.values()):
            total, rows = sum(counts.values()), sum(len(split) for split in tokenized.values())
            per_split = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
            log(
                f"truncated {total} of {rows} sentences longer than max_length={max_length} tokens ({per_split}); "
                "the words past it are neither trained on nor scored"
            )
        unseen = sum(sum(split[_UNSEEN]) for split in tokenized.values())
        if unseen:
            log(
                f"{unseen} word(s) tokenise to no subword at all (e.g. zero-width characters): not trained on nor scored"
            )
        return tokenized.remove_columns([_TRUNCATED, _UNSEEN])

    def collator(self, processor, pad_to_multiple_of: int | None):
        return DataCollatorForTokenClassification(processor, pad_to_multiple_of=pad_to_multiple_of)
