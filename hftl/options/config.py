"""The argument dataclasses shared by the Python API, YAML configs and the command line.

Precedence is dataclass default < YAML (``--config``) < command-line flag (or keyword argument in
Python). Fields whose default is ``None`` and whose help says "auto" are resolved once, at the start of
a run, from the method, the dataset and the model; the choices are printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConfigError
from .checks import check_options
from .streaming import StreamingOptions
from .training_args import HftlTrainingArguments  # its own module; importable from here as before

__all__ = [
    "ModelArguments",
    "DataArguments",
    "MethodArguments",
    "HftlTrainingArguments",
    "METHOD_CHOICES",
    "TASK_CHOICES",
]


@dataclass
class ModelArguments:
    """Which pretrained checkpoint to adapt, and for which task.

    Args:
        model: Hub id or local directory of the pretrained checkpoint.
        task: The task; decides the model class, preprocessing and metrics.
        revision: Hub revision (branch, tag or commit) to load.
        trust_remote_code: Allow code from the checkpoint's repository to run.

    Example:
        >>> ModelArguments(model="prajjwal1/bert-tiny").task
        'text-classification'
    """

    model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local directory of the pretrained model (auto: the task's demo model, "
            "sentence-transformers/all-MiniLM-L6-v2 for text, timm/tf_efficientnet_lite0.in1k for "
            "images). Resolved offline-first: local directory, HF cache, installed offline copy, Hub."
        },
    )
    weights: str | None = field(
        default=None,
        metadata={
            "help": "A state dict file (.pth/.pt/.bin/.safetensors) for --model given as a timm "
            "architecture name (e.g. --model resnet50 --weights resnet50.pth); loaded with "
            "weights_only, turned into a TimmWrapper checkpoint once."
        },
    )
    task: str = field(default="text-classification", metadata={"help": "The task to train for."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run code shipped with the checkpoint's repository. Off unless you trust it."},
    )
    from_scratch: bool = field(
        default=False,
        metadata={
            "help": "Use the checkpoint's architecture with random weights (method full only): the "
            "baseline that shows what pretraining is worth."
        },
    )
    pooling: str = field(
        default="auto",
        metadata={
            "help": "How a text becomes the one vector the head reads (text classification and regression): "
            "mean (the mean of the token vectors), cls (the [CLS] vector itself), model (the architecture's "
            "own head, e.g. BERT's pooler), or auto: the pooling a sentence-transformers checkpoint was "
            "trained with (its 1_Pooling config) for --method full and linear-probe, else model. The saved "
            "model stays a stock one that pipeline() loads (docs/few-shot.md).",
            "choices": ["auto", "mean", "cls", "model"],
        },
    )


@dataclass
class DataArguments(StreamingOptions):
    """Where the labelled data comes from and how it is split and tokenised.

    Args:
        dataset: A built-in dataset name, a CSV/TSV/JSON/JSONL/parquet file (or a folder of them named by
            split), or a Hub dataset id.
        text_column: Text column(s); two comma-separated names make a sentence pair. Inferred if unset.
        label_column: Label column. Inferred if unset.

    Example:
        >>> DataArguments(dataset="reviews.csv", text_column="review", label_column="stars").dataset
        'reviews.csv'
    """

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Built-in dataset name (bbc-news, mnist, fashion-mnist), a CSV/TSV/JSON/JSONL/parquet file, a folder "
            "(split files, or one subfolder per class for images), or a Hub dataset id (auto: the "
            "task's demo dataset, bbc-news for text, mnist for images)."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of a Hub dataset."})
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "Text column; two comma-separated names (e.g. 'premise,hypothesis') make a sentence "
            "pair. Inferred from common names if unset."
        },
    )
    label_column: str | None = field(
        default=None, metadata={"help": "Label column. Inferred from common names if unset."}
    )
    label_delimiter: str | None = field(
        default=None,
        metadata={
            "help": "Split string labels on this delimiter (e.g. ',' or '|') so a row can carry several "
            "labels: multi-label classification. A label column holding lists switches to multi-label "
            "without it."
        },
    )
    image_column: str | None = field(
        default=None,
        metadata={"help": "Image column (image tasks): an Image feature or file paths. Inferred if unset."},
    )
    image_size: int | None = field(
        default=None,
        metadata={
            "help": "Square input size in pixels (image tasks; auto: the built-in dataset's tuned size, "
            "else the checkpoint's). Saved with the model so pipeline() preprocesses the same way."
        },
    )
    augment: str | None = field(
        default=None,
        metadata={
            "help": "Training augmentation (image tasks): crop-flip, crop, trivialaugment, randaugment or "
            "none (auto: the built-in dataset's choice, else crop-flip; use crop or none for digits/text).",
            "choices": ["crop-flip", "crop", "trivialaugment", "randaugment", "none"],
        },
    )
    max_bad_image_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Image tasks: unreadable image files are skipped (and listed) unless more than this "
            "fraction of a split is bad, which stops the run before training."
        },
    )
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Maximum tokens per example (auto: the built-in dataset's tuned length, else the "
            "model's real maximum)."
        },
    )
    label_all_subwords: bool = field(
        default=False,
        metadata={
            "help": "Token classification: train on every subword of a word (B- becomes I- after the first) "
            "instead of the first only; validation and test are scored per word either way."
        },
    )
    ner_eval_mode: str = field(
        default="default",
        metadata={
            "help": "Token classification: entity scoring as seqeval's default mode (lenient about "
            "ill-formed predicted spans) or strict (exact spans under the data's tag scheme).",
            "choices": ["default", "strict"],
        },
    )
    long_text: str = field(
        default="truncate",
        metadata={
            "help": "Text tasks, documents longer than --max_length: truncate (keep the beginning), head_tail "
            "(keep the first quarter and the last three quarters of the room, as Sun et al. 2019), or chunk "
            "(windows of --max_length tokens overlapping by --chunk_stride; the windows' logits pooled per "
            "document in training, evaluation and test). Recorded in config.json as hftl_long_text; stock "
            "pipeline() truncates.",
            "choices": ["truncate", "head_tail", "chunk"],
        },
    )
    chunk_stride: int | None = field(
        default=None,
        metadata={
            "help": "--long_text chunk: tokens consecutive windows share (auto: a quarter of --max_length)."
        },
    )
    max_chunks: int | None = field(
        default=None,
        metadata={
            "help": "--long_text chunk: at most N windows per document, from its beginning (unset: all)."
        },
    )
    chunk_aggregation: str = field(
        default="mean",
        metadata={
            "help": "--long_text chunk: how a document's window logits become its logits: mean or max "
            "(per class).",
            "choices": ["mean", "max"],
        },
    )
    validation_split_size: float = field(
        default=0.1,
        metadata={
            "help": "Fraction of train carved off as validation when the data has no validation split."
        },
    )
    test_split_size: float = field(
        default=0.1,
        metadata={"help": "Fraction of train carved off as test when the data has no test split."},
    )
    split_seed: int = field(
        default=42,
        metadata={"help": "Seed for carving splits; separate from --seed so the test set never moves."},
    )
    label_fraction: float = field(
        default=1.0,
        metadata={
            "help": "Keep the labels of only this fraction of the training rows (stratified, split_seed): "
            "--method distill learns from the teacher alone on the rest (text), other methods drop them. "
            "For measuring what a teacher adds when labels are scarce."
        },
    )
    samples_per_class: int | None = field(
        default=None,
        metadata={
            "help": "Keep the labels of at most N training rows per class, a k-shot training set drawn with "
            "--split_seed (the rows for a smaller N are among those for a larger one): --method distill "
            "learns from the teacher alone on the rest (text), other methods drop them. Single-label data."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most N training examples."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most N validation examples."}
    )
    max_test_samples: int | None = field(default=None, metadata={"help": "Use at most N test examples."})

    def __post_init__(self):
        if isinstance(self.text_column, (list, tuple)):  # YAML lists and Python lists are welcome too
            self.text_column = ",".join(self.text_column)
        check_options(self)  # each numeric option against its range (hftl/options/checks.py)
        if self.validation_split_size + self.test_split_size >= 1.0:
            raise ConfigError(
                "--validation_split_size plus --test_split_size must leave some data to train on "
                f"(got {self.validation_split_size} + {self.test_split_size})."
            )
        if self.samples_per_class is not None and self.label_fraction < 1.0:
            raise ConfigError(
                "--samples_per_class and --label_fraction both choose the labelled training rows; give one of them."
            )

    @property
    def text_columns(self) -> list[str] | None:
        """The ``text_column`` option as a list (``None`` when it should be inferred)."""
        if not self.text_column:
            return None
        return [name.strip() for name in self.text_column.split(",") if name.strip()]


class RegisteredChoices:
    """What a registry-backed option (``--method``, ``--task``) offers: the registry connects here when its
    package loads, so the option's default and help text come from what is registered while this package
    imports none of it. ``notes`` are further texts for other options' help (``learning_rates``)."""

    def __init__(self):
        self._default: Callable[[], str] | None = None
        self._help: Callable[[], str] | None = None
        self._notes: dict[str, Callable[[], str]] = {}

    def connect(
        self, *, help: Callable[[], str], default: Callable[[], str] | None = None, **notes: Callable[[], str]
    ) -> None:
        self._default, self._help, self._notes = default, help, notes

    def default(self) -> str:
        return self._default()

    def help(self) -> str:
        return self._help()

    def note(self, name: str) -> str:
        return self._notes[name]()


METHOD_CHOICES = RegisteredChoices()
TASK_CHOICES = RegisteredChoices()


@dataclass
class MethodArguments:
    """How the pretrained model is adapted.

    Args:
        method: A registered method's name (``hftl --help`` lists them); default: full fine-tuning,
            every parameter trains. The Methods page describes each.
        teacher: The fine-tuned teacher for ``distill``.
        student_layers: ``distill``: the student is the teacher with this many layers.
        distill_alpha: ``distill``: weight of the true-label loss.
        distill_temperature: ``distill``: soft-target temperature.
        teacher_logits: ``distill``: ``online`` or ``cache``.
        distill_hidden_weight: ``distill``: weight of hidden-state matching (0 = off).
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        lora_dropout: Dropout on the LoRA branch.
        lora_target_modules: Comma-separated module names to adapt (auto: peft's default for the
            architecture, usually the attention query/value projections).
        lora_merge: Also save a merged model that stock transformers loads without peft.

    Example:
        >>> MethodArguments(lora_r=16).lora_r
        16
    """

    method: str = field(
        default_factory=METHOD_CHOICES.default,  # full fine-tuning, as hftl.methods registers it
        metadata={"help": "Adaptation method (the parser lists the registered ones)."},
    )
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "Method distill: the fine-tuned teacher (an hftl output directory, a LoRA output "
            "directory or a Hub id). Its label names must be the data's."
        },
    )
    student_layers: int | None = field(
        default=None,
        metadata={
            "help": "Method distill: the student keeps N evenly spaced encoder layers (embeddings and "
            "head kept) of the teacher, or of --model when given. Default with neither --model nor "
            "--student_layers: the teacher with half its layers. With --method full: train a copy of "
            "--model with N layers (distillation's no-teacher baseline)."
        },
    )
    distill_alpha: float = field(
        default=0.5,
        metadata={
            "help": "Method distill: weight of the true-label loss; 1 - alpha goes to the teacher's soft targets."
        },
    )
    distill_temperature: float = field(
        default=2.0,
        metadata={"help": "Method distill: softmax temperature of the soft targets (loss scaled by T²)."},
    )
    teacher_logits: str = field(
        default="online",
        metadata={
            "help": "Method distill: online (the teacher runs every step) or cache (its logits are computed "
            "once before training; not valid with random augmentation).",
            "choices": ["online", "cache"],
        },
    )
    distill_hidden_weight: float = field(
        default=0.0,
        metadata={
            "help": "Method distill, text models: weight of an MSE between mapped student and teacher "
            "hidden states (0 = off; a learned projection when widths differ)."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (method lora)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha, the scaling numerator (method lora)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA branch (method lora)."})
    lora_target_modules: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated module names LoRA adapts (auto: peft's default for the "
            "architecture, e.g. query,value for BERT)."
        },
    )
    lora_merge: bool = field(
        default=True,
        metadata={
            "help": "Save a merged model at the output root (loads without peft); the adapter always "
            "goes to output_dir/adapter."
        },
    )

    def __post_init__(self):
        if isinstance(self.lora_target_modules, (list, tuple)):
            self.lora_target_modules = ",".join(self.lora_target_modules)
        self.method = self.method.strip().lower().replace("_", "-")
        check_options(self)  # each numeric option against its range (hftl/options/checks.py)

    @property
    def lora_targets(self) -> list[str] | None:
        """The ``lora_target_modules`` option as a list (``None`` for the architecture default)."""
        if not self.lora_target_modules:
            return None
        return [name.strip() for name in self.lora_target_modules.split(",") if name.strip()]
