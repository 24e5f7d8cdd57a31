"""Text classification: single texts or sentence pairs, with any AutoModelForSequenceClassification."""

from __future__ import annotations

import json

from datasets import Dataset, DatasetDict
from datasets.fingerprint import Hasher
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PretrainedConfig

from .._log import log
from ..data.columns import find_text_columns
from ..data.labels import LabelSpace
from ..errors import ConfigError, DataError, ModelNotFoundError
from ..options.config import DataArguments, ModelArguments
from ._base import Task
from ._long_text import (
    CONFIG_KEY,
    DocumentWindowsCollator,
    encode_head_tail,
    encode_windows,
    long_text_settings,
)
from .classification import ClassificationTask

__all__ = ["TextInputs", "TextClassification"]

# Tokenizers without a declared limit report this sentinel (int(1e30)).
_UNSET_LENGTH = 1_000_000
_TRUNCATED = "hftl_truncated"
_CUT = "hftl_cut"
_WINDOW_COUNT = "hftl_window_count"
# Texts are cut to max_length * this many characters before tokenising: a tokenizer handles a whole cell
# before it truncates, so one 100 MB cell would cost minutes and gigabytes. Tokens average 3-6 characters,
# so the cut changes what the model sees only for text made of whitespace runs or 64-character words.
CHARS_PER_TOKEN_BOUND = 64
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _blank(text: str) -> bool:
    return not text.translate(_INVISIBLE).strip()


class TextInputs(Task):
    """What every task on one text column or a pair of columns shares: column inference, checks, the
    tokenizer, the length limit, tokenisation and padding. A text task combines it with what it predicts
    (``class TextClassification(TextInputs, ClassificationTask)``).

    Tokenisation is batched and cached by ``datasets``; it truncates to ``max_length`` and leaves
    padding to the collator, which pads each batch to its own longest example. ``--long_text`` keeps a
    long document's head and tail instead, or splits it into windows pooled per document (see
    :mod:`hftl.tasks._long_text`).
    """

    modality = "text"
    # the card's pipeline() call; truncation=True cuts a long text at the run's max_length (the saved
    # tokenizer's model_max_length), as the test evaluation did, instead of failing past the model's positions
    usage_example = '"Shares fell sharply on Wall Street", truncation=True'

    def find_inputs(self, train: Dataset, label_column: str, data_args: DataArguments) -> list[str]:
        return find_text_columns(train, data_args.text_columns, label_column)

    def check_inputs(
        self, split_name: str, split: Dataset, input_columns: list[str], data_args: DataArguments
    ) -> Dataset:
        if len(split) == 0:
            return split  # reported as an empty split once the splits are settled
        for column in input_columns:
            # whitespace (or zero-width characters) alone tokenises to nothing but [CLS] [SEP]: no text either
            empty = sum(
                1 for value in split[column] if value is None or (isinstance(value, str) and _blank(value))
            )
            if empty:
                raise DataError(
                    f"{empty} rows of the {split_name} split have no text in column '{column}'; drop or fill them."
                )
            if not isinstance(split[0][column], str):
                raise DataError(
                    f"Text column '{column}' holds {type(split[0][column]).__name__} values, not text; "
                    "pass the right column with --text_column."
                )
        return split

    def load_processor(self, path: str, model_args: ModelArguments):
        tokenizer = AutoTokenizer.from_pretrained(
            path, revision=model_args.revision, trust_remote_code=model_args.trust_remote_code
        )
        if len(tokenizer) <= len(tokenizer.all_special_tokens) + 1:
            # transformers 5 builds a vocabulary-less tokenizer when the files are missing; every word
            # would become [UNK] and training would still "work"
            raise ModelNotFoundError(
                f"Could not load the config or tokenizer of '{path}': its tokenizer has no vocabulary "
                f"({len(tokenizer)} tokens). Save the tokenizer files there with tokenizer.save_pretrained()."
            )
        if tokenizer.pad_token is None:  # GPT-style tokenizers
            # any existing token will do: the attention mask hides padding, and the token is saved with the
            # tokenizer so pipeline() pads the same way; a new token would need new embedding rows
            kind, token = next(
                (
                    (kind, token)
                    for kind, token in (("eos", tokenizer.eos_token), ("unk", tokenizer.unk_token))
                    if token
                ),
                (None, None),
            )
            if token is None:
                raise ConfigError(
                    f"The tokenizer of '{path}' has no pad, eos or unk token, so batches can't be padded; set "
                    '"pad_token" in its tokenizer_config.json to one of its tokens, or use another checkpoint.'
                )
            tokenizer.pad_token = token
            log(f"the tokenizer has no pad token: padding with its {kind} token {token!r} (masked out)")
        return tokenizer

    def load_config(
        self, path: str, labels: LabelSpace, model_args: ModelArguments, processor=None
    ) -> PretrainedConfig:
        config = super().load_config(path, labels, model_args, processor)
        if processor is not None and getattr(config, "pad_token_id", None) is None:
            # sequence classifiers find the last real token through pad_token_id
            config.pad_token_id = processor.pad_token_id
        return config

    def max_length(self, processor, config: PretrainedConfig) -> int | None:
        limits = [processor.model_max_length] if processor.model_max_length < _UNSET_LENGTH else []
        positions = getattr(config, "max_position_embeddings", None)
        if positions:
            limits.append(positions)
        return min(limits) if limits else 512

    def preprocess(
        self,
        data: DatasetDict,
        processor,
        input_columns: list[str],
        max_length: int | None,
        data_args: DataArguments,
    ) -> DatasetDict:
        if data_args.long_text != "truncate":
            return self._preprocess_long(data, processor, input_columns, max_length, data_args)
        max_chars = max_length * CHARS_PER_TOKEN_BOUND if max_length else None
        tokenize = _truncating_tokenizer(processor, input_columns, max_length)
        transform = _tokenize_fingerprint(processor, input_columns, max_length, tokenize)
        tokenized = _tokenize_splits(data, tokenize, transform, input_columns)
        cut = sum(sum(split[_CUT]) for split in tokenized.values())
        if cut:
            log(
                f"cut {cut} text(s) longer than {max_chars} characters (max_length={max_length} tokens x "
                f"{CHARS_PER_TOKEN_BOUND}) to that length before tokenising; truncation would drop the rest anyway"
            )
        counts = {name: sum(split[_TRUNCATED]) for name, split in tokenized.items()}
        if any(counts.values()):
            total, rows = sum(counts.values()), sum(len(split) for split in tokenized.values())
            per_split = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
            log(
                f"truncated {total} of {rows} texts longer than max_length={max_length} tokens ({per_split}); "
                "the model sees only their beginning"
            )
        return tokenized.remove_columns([_TRUNCATED, _CUT])

    def preprocess_stream(self, stream, processor, input_columns, max_length, data_args):
        """``--streaming``: the training stream tokenised as it is read, as :meth:`preprocess` tokenises
        a split (``--long_text truncate``; the others are refused at plan time)."""
        tokenize = _truncating_tokenizer(processor, input_columns, max_length)
        return stream.map(tokenize, batched=True, remove_columns=input_columns).remove_columns(
            [_TRUNCATED, _CUT]
        )

    @property
    def takes_long_text(self) -> bool:
        """Whether ``--long_text`` applies: the task tokenises whole texts here (a subclass that tokenises
        its own way, e.g. word lists, doesn't take it)."""
        return type(self).preprocess is TextInputs.preprocess and type(self).collator is TextInputs.collator

    def _preprocess_long(self, data, processor, input_columns, max_length, data_args) -> DatasetDict:
        """``--long_text head_tail`` or ``chunk``: one row per document, as head + tail or as its windows."""
        settings = long_text_settings(data_args, max_length, processor)
        max_chars = max_length * CHARS_PER_TOKEN_BOUND
        column = input_columns[0]  # one text column (a pair is refused at plan time)
        chunk = settings.strategy == "chunk"

        def tokenize(batch):
            texts = batch[column]
            if chunk and settings.max_chunks:  # the cap bounds what the windows can reach
                texts = [text[: max_chars * settings.max_chunks] for text in texts]
            elif not chunk:  # the head and the tail, each far more characters than tokens kept
                texts = [
                    text if len(text) <= 2 * max_chars else f"{text[:max_chars]} {text[-max_chars:]}"
                    for text in texts
                ]
            if chunk:
                encoded, counts = encode_windows(processor, texts, max_length, settings)
            else:
                encoded, cut = encode_head_tail(processor, texts, max_length, settings)
                counts = [2 if long else 1 for long in cut]
            return {**encoded, _WINDOW_COUNT: counts}

        transform = _tokenize_fingerprint(processor, input_columns, max_length, tokenize, settings)
        tokenized = _tokenize_splits(data, tokenize, transform, input_columns)
        for name, split in tokenized.items():
            counts = split[_WINDOW_COUNT]
            long = sum(count > 1 for count in counts)
            if not long:
                continue
            if chunk:
                kept = [min(count, settings.max_chunks or count) for count in counts]
                capped = (
                    f"; {sum(c > k for c, k in zip(counts, kept, strict=True))} capped at --max_chunks"
                    if settings.max_chunks
                    else ""
                )
                log(
                    f"chunk: {name} {long} of {len(counts)} documents longer than max_length={max_length} tokens "
                    f"split into windows overlapping by {settings.stride}: {sum(kept) / len(kept):.2f} windows per "
                    f"document on average, at most {max(kept)}{capped}"
                )
            else:
                log(
                    f"head_tail: {name} {long} of {len(counts)} documents longer than max_length={max_length} "
                    f"tokens keep their first {settings.head} and last {settings.room - settings.head} tokens"
                )
        return tokenized.remove_columns([_WINDOW_COUNT])

    def on_model_built(self, model, processor, data_args: DataArguments, training_args) -> None:
        super().on_model_built(model, processor, data_args, training_args)
        if self.takes_long_text and data_args.max_length:
            # saved with the tokenizer: stock pipeline(..., truncation=True) then cuts a long text where the
            # run's evaluation did (it truncates at model_max_length); word-list tasks keep the model's limit
            processor.model_max_length = data_args.max_length
        if getattr(data_args, "long_text", "truncate") != "truncate":  # recorded for predict tooling
            settings = long_text_settings(data_args, data_args.max_length, processor)
            setattr(model.config, CONFIG_KEY, {**settings.record(), "max_length": data_args.max_length})

    def collator(self, processor, pad_to_multiple_of: int | None):
        # the stock padding collator, flattening rows that hold a document's windows (--long_text chunk)
        return DocumentWindowsCollator(processor, pad_to_multiple_of=pad_to_multiple_of)


def _truncating_tokenizer(processor, input_columns: list[str], max_length: int | None):
    """The batched tokenising function of ``--long_text truncate``: texts longer than ``max_length`` x
    CHARS_PER_TOKEN_BOUND characters are cut first, and each row says whether it was cut or truncated."""
    max_chars = max_length * CHARS_PER_TOKEN_BOUND if max_length else None

    def tokenize(batch):
        texts = [batch[column] for column in input_columns]
        cut = [False] * len(texts[0])
        if max_chars:
            for index in range(len(cut)):
                cut[index] = any(len(column[index]) > max_chars for column in texts)
            # keep the end that truncation keeps
            keep = slice(-max_chars, None) if processor.truncation_side == "left" else slice(max_chars)
            texts = [[text[keep] for text in column] for column in texts]
        encoded = processor(*texts, truncation=True, max_length=max_length)
        encoded[_CUT] = cut
        # a fast tokenizer keeps what truncation cut off as overflow; a column (not a counter)
        # so the count survives datasets' cache
        encoded[_TRUNCATED] = (
            [bool(encoding.overflowing) for encoding in encoded.encodings]
            if encoded.encodings is not None
            else [len(ids) >= max_length for ids in encoded["input_ids"]]
        )
        return encoded

    return tokenize


def _tokenize_splits(data: DatasetDict, tokenize, transform: str | None, input_columns) -> DatasetDict:
    return DatasetDict(
        {
            name: split.map(
                tokenize,
                batched=True,
                remove_columns=input_columns,
                desc="tokenising",
                new_fingerprint=Hasher.hash([split._fingerprint, transform]) if transform else None,
            )
            for name, split in data.items()
        }
    )


def _tokenize_fingerprint(
    processor, input_columns: list[str], max_length: int | None, tokenize, long_text=None
) -> str | None:
    """What the tokenised splits' cache key depends on besides the input split. ``datasets`` would pickle
    the whole tokenizer to hash the closure, once per split (~0.25 s each, every run); a fast tokenizer's
    serialised pipeline says the same in a few milliseconds. None (``datasets`` hashes as before) for a
    tokenizer that can't be serialised, e.g. one with a custom pre-tokenizer. ``long_text``: the
    ``--long_text`` settings (a LongText), hashed too; None for truncation (the key stays as it was)."""
    import tokenizers
    import transformers

    backend = getattr(processor, "backend_tokenizer", None)
    try:
        if backend is not None:  # without the truncation and padding state the previous call left in it
            state = json.loads(backend.to_str())
            pipeline = json.dumps({k: v for k, v in state.items() if k not in ("truncation", "padding")})
        else:
            pipeline = Hasher.hash(processor)
    except Exception:  # noqa: BLE001 - any failure to serialise only costs the fast key
        return None
    # where it was loaded from, not what it does: the same tokenizer from another folder keeps its key
    where = ("name_or_path", "is_local", "local_files_only", "cache_dir", "revision", "token")
    settings = sorted((key, repr(value)) for key, value in processor.init_kwargs.items() if key not in where)
    attributes = [repr(getattr(processor, name, None)) for name in _TOKENIZER_ATTRIBUTES]
    versions = (transformers.__version__, tokenizers.__version__)
    parts = [type(processor).__name__, pipeline, settings, attributes, versions, input_columns, max_length,
             _TRUNCATED, _CUT, CHARS_PER_TOKEN_BOUND, tokenize.__code__]  # fmt: skip
    if long_text is not None:  # with the code that applies it: encode_windows/encode_head_tail
        parts += [repr(long_text), encode_head_tail.__code__, encode_windows.__code__, _WINDOW_COUNT]
    return Hasher.hash(parts)


# settable after loading, and each changes what __call__ returns
_TOKENIZER_ATTRIBUTES = (
    "truncation_side", "padding_side", "model_input_names", "split_special_tokens", "model_max_length",
    "all_special_tokens", "added_tokens_encoder",
)  # fmt: skip


class TextClassification(TextInputs, ClassificationTask):
    """Sequence classification of one text column or a pair of columns."""

    name = "text-classification"
    pipeline_tag = "text-classification"
    streams = True
    peft_task_type = "SEQ_CLS"
    auto_model_class = AutoModelForSequenceClassification
    pools_text = True
    demo_model = "sentence-transformers/all-MiniLM-L6-v2"
    demo_dataset = "bbc-news"
