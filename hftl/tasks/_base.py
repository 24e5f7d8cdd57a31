"""The task interface (what a kind of prediction owns: data, labels, metrics, report, card, model), and
model building shared by every task."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from accelerate import init_empty_weights
from datasets import Dataset, DatasetDict
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from .._log import log
from .._modules import HEAD_NAMES, named_head, within
from ..data.columns import LABEL_COLUMN_NAMES
from ..data.labels import LabelSpace
from ..errors import ConfigError, DataError, ModelNotFoundError
from ..options.config import DataArguments, ModelArguments
from ._checkpoint import safetensors_shapes

__all__ = ["Task"]


def _module_of(parameter_name: str) -> str:
    return parameter_name.rsplit(".", 1)[0]


def _in_backbone(name: str, prefix: str, head: list[str]) -> bool:
    """A parameter of the pretrained base model (``bert.``, ``vit.``, ...), outside any classification head."""
    return bool(prefix) and name.startswith(prefix + ".") and not within(name, head)


def _has_default_labels(config: PretrainedConfig) -> bool:
    names = list((config.id2label or {}).values())
    return all(str(name).startswith("LABEL_") for name in names)


class Task:
    """One kind of prediction: its model class, input columns, preprocessing and collator, what its label
    column means, its metrics and report, and what its model card shows.

    Subclasses set the class attributes and implement the abstract methods; :func:`hftl.tasks.register_task`
    makes them available to ``--task``. Classification tasks share :class:`hftl.tasks.ClassificationTask`.
    """

    name: ClassVar[str]
    pipeline_tag: ClassVar[str]
    # what the model reads: "text" (a tokenizer) or "image" (an image processor, timm weights)
    modality: ClassVar[str]
    # peft's task_type for this task's models (it saves the head with the adapter), or None
    peft_task_type: ClassVar[str | None] = None
    auto_model_class: ClassVar[type]
    # Module names that hold the classification head, for checkpoints whose head loads from the file.
    head_names: ClassVar[tuple[str, ...]] = HEAD_NAMES
    # what --model and --dataset default to for this task (the offline demo)
    demo_model: ClassVar[str]
    demo_dataset: ClassVar[str]
    # DataArguments options this task resolves on auto: name -> fallback when no built-in dataset tunes it
    auto_options: ClassVar[dict[str, object]] = {}
    # column names (lower case) taken for the label column when --label_column is not given
    label_column_names: ClassVar[tuple[str, ...]] = LABEL_COLUMN_NAMES
    # the input in the card's usage snippet, a Python literal (a text, a file name)
    usage_example: ClassVar[str]
    # distillation: per-token outputs line up only where teacher and student tokenise alike (the teacher's
    # tokenizer must then be the student's, to the backend; its outputs vary in length, so none are cached)
    distill_same_tokenizer: ClassVar[bool] = False
    # what the card's first line calls the model, where the pipeline tag names another task (None: the tag)
    card_kind: ClassVar[str | None] = None
    # example inputs for the Hub's inference widget (the card's ``widget:`` metadata); empty: the Hub's defaults
    card_widget_texts: ClassVar[tuple[str, ...]] = ()
    # hftl export writes an ONNX classifier (logits per example) for this task's models
    exports_to_onnx: ClassVar[bool] = False
    # one prediction per text from one pooled vector: --pooling applies (hftl/tasks/_embedding_pooling.py)
    pools_text: ClassVar[bool] = False

    # --- labels: what the label column means ----------------------------------------------------
    def combine_label_columns(self, raw: dict[str, Dataset], data_args: DataArguments) -> dict[str, Dataset]:
        """Before the label column is looked up: a task whose label spans several columns (regression's
        ``--label_column a,b``) joins them into one column named as given. The default changes nothing."""
        return raw

    def build_labels(self, train: Dataset, column: str, data_args: DataArguments) -> LabelSpace:
        """The label space, from the training split's (cleaned) label column; a DataError for values the
        task can't learn from."""
        raise NotImplementedError

    def encode_labels(
        self, split: Dataset, split_name: str, column: str, labels: LabelSpace, data_args: DataArguments
    ) -> Dataset:
        """Replace ``column`` by the model's ``labels`` column; a DataError for values outside ``labels``."""
        raise NotImplementedError

    def stratify_column(self, labels: LabelSpace) -> str | None:
        """The encoded column carved splits keep in proportion (``None``: a plain random split)."""
        return None

    def select_per_class(
        self, train: Dataset, k: int, seed: int, labels: LabelSpace
    ) -> tuple[Dataset, Dataset | None]:
        """``--samples_per_class``: ``k`` training rows per class, and the rest (unlabelled)."""
        raise DataError(
            f"--samples_per_class counts rows per class, which {self.name} data has none of; use "
            "--label_fraction or --max_train_samples."
        )

    def describe_labels(self, labels: LabelSpace) -> str:
        """The log line that names the labels."""
        return f"labels ({len(labels)}): {', '.join(labels.names[:20])}{' ...' if len(labels) > 20 else ''}"

    def label_kind(self, labels: LabelSpace) -> str:
        """What kind of prediction these labels make, for messages (e.g. ``single-label``)."""
        return self.name

    def label_config(self, labels: LabelSpace) -> dict:
        """The model config's entries for ``labels`` (sizes the head)."""
        return {"num_labels": len(labels), "id2label": labels.id2label, "label2id": labels.label2id}

    def labels_from_config(
        self, config: PretrainedConfig, names: list[str], run_config: dict | None
    ) -> LabelSpace:
        """A saved model's label space (the inverse of :meth:`label_config`): ``names`` in id order, the
        run's options (``hftl_config.yaml``) or None for a folder without them."""
        return LabelSpace(names)

    # --- training and evaluation -----------------------------------------------------------------
    def plan_loss(self, training_args, train: Dataset, labels: LabelSpace):
        """Pre-flight: a callable ``(logits, labels) -> loss`` replacing the model's own loss (``None``:
        the model's), from options such as ``--class_weights``; refuses options the task can't apply."""
        if str(training_args.class_weights).strip().lower() != "none" or training_args.label_smoothing_factor:
            raise ConfigError(
                f"--class_weights and --label_smoothing_factor apply to classification, not {self.name}."
            )
        return None

    def metrics(self, labels: LabelSpace) -> tuple:
        """``(compute_metrics, preprocess_logits_for_metrics)`` for the Trainer."""
        raise NotImplementedError

    def metric_names(self, labels: LabelSpace | None = None) -> list[str]:
        """The names an evaluation reports (without ``eval_``), ``loss`` first; ``labels=None``: every name
        any label space of this task reports."""
        raise NotImplementedError

    def headline_metric(self, labels: LabelSpace) -> str:
        """The metric a card's training curves and summaries show (without ``eval_``)."""
        return self.metric_names(labels)[1]

    def headline_metrics(self) -> list[str]:
        """Every metric a run of this task may headline, one per kind of label space: what
        ``--hp_search`` maximises unless ``--metric_for_best_model`` says otherwise (the first a trial reports)."""
        raise NotImplementedError

    def greater_is_better(self, metric: str) -> bool:
        """Whether a higher ``metric`` (without ``eval_``) is better: the direction ``--hp_search`` and the
        best checkpoint follow (transformers infers it from the name alone: better unless it ends in loss)."""
        return metric != "loss"

    def after_training(self, trainer, model, labels: LabelSpace) -> dict:
        """Settings tuned on the validation split after training (recorded in ``model.config``), with the
        validation metrics they change."""
        return {}

    def test_predictions(self, output, metrics: dict, labels: LabelSpace):
        """The test predictions the report and plots read, from ``trainer.predict``'s ``output``."""
        return output.predictions

    # what the log line above the test report calls it
    report_title: ClassVar[str] = "report on the test split"

    def report(self, predictions, references, labels: LabelSpace) -> tuple[str, dict]:
        """The test report: printable text, and a JSON-able table (``test_report.json``)."""
        return "", {}

    def result_keys(self, labels: LabelSpace) -> list[str]:
        """The ``all_results.json`` keys :meth:`hftl.FinetuneResult.table` shows first, in order (a run's
        missing ones are skipped); the method's keys, loss, sizes and training time follow."""
        return [f"test_{name}" for name in self.metric_names(labels) if name != "loss"]

    def comparison_metrics(self, labels: LabelSpace) -> list[str]:
        """The metrics (without ``test_``) a side-by-side of two models on the test split shows, in order
        (e.g. a distilled model's card: teacher against student)."""
        return [name for name in self.metric_names(labels) if name != "loss"]

    # --- distillation (--method distill) ---------------------------------------------------------
    @property
    def distillable(self) -> bool:
        """Whether the task defines its distillation loss (``--method distill`` is refused otherwise)."""
        return type(self).distill_soft_loss is not Task.distill_soft_loss

    def distill_soft_loss(self, student_logits, teacher_logits, labels, temperature) -> torch.Tensor:
        """The soft-target term: the student's outputs against the teacher's (the teacher side detached);
        ``labels`` (the batch's, ``-100`` where hidden) let a task mask positions."""
        raise NotImplementedError(f"{self.name} defines no distillation loss")

    def distill_hard_loss(self, logits, labels) -> torch.Tensor:
        """The true-label term, where ``plan_loss`` gave none: rows labelled ``-100`` (hidden by
        ``--label_fraction``) add nothing; zero, not NaN, for a batch without labels."""
        raise NotImplementedError(f"{self.name} defines no distillation loss")

    def distill_view(self, labels: LabelSpace) -> Task:
        """The task whose ``distill_*`` losses a run with ``labels`` calls: itself, unless they need the run's
        label space (regression binds its target standardisation)."""
        return self

    def check_teacher(self, teacher_config: PretrainedConfig, data_args: DataArguments) -> None:
        """Pre-flight: refuse in one line a distillation teacher whose outputs can't match this task's."""

    # --- model card ------------------------------------------------------------------------------
    # results table order; the model-index (Hub leaderboards) lists the test values of card_index_metrics
    card_metric_order: ClassVar[tuple[str, ...]] = ("loss",)
    card_index_metrics: ClassVar[tuple[str, ...]] = ()

    def card_tags(self, labels: LabelSpace) -> list[str]:
        return []

    def card_details(self, labels: LabelSpace, metrics: dict) -> list[str]:
        """Markdown lines of the card's summary list after the method and parameter count."""
        return []

    def card_usage(
        self, repo_id: str, labels: LabelSpace, base_model: str | None, adapter: str | None
    ) -> str:
        """The card's Python usage snippet for the model in ``repo_id`` (``adapter``: the kind of adapter the
        output also holds, e.g. ``LoRA``, or None)."""
        snippet = f'from transformers import pipeline\n\npredict = pipeline("{self.pipeline_tag}", model="{repo_id}")'
        return snippet + f"\nprint(predict({self.usage_example}))"

    def plots(self, output_dir: Path, predictions, references, labels: LabelSpace) -> list[tuple[str, str]]:
        """Draw the task's test plots into ``output_dir``: ``(file name, caption)`` for each (matplotlib)."""
        return []

    # --- data -------------------------------------------------------------------------------------
    def find_inputs(self, train: Dataset, label_column: str, data_args: DataArguments) -> list[str]:
        raise NotImplementedError

    def check_inputs(
        self, split_name: str, split: Dataset, input_columns: list[str], data_args: DataArguments
    ) -> Dataset:
        """Raise a DataError for input values the model can't take (before any model is built); may
        return the split with its inputs normalised (e.g. relative image paths made absolute)."""
        return split

    def load_processor(self, path: str, model_args: ModelArguments):
        raise NotImplementedError

    def max_length(self, processor, config: PretrainedConfig) -> int | None:
        """The model's real maximum input length (``None`` where length means nothing)."""
        return None

    def preprocess(
        self,
        data: DatasetDict,
        processor,
        input_columns: list[str],
        max_length: int | None,
        data_args: DataArguments,
    ) -> DatasetDict:
        raise NotImplementedError

    streams: ClassVar[bool] = False  # --streaming: it tokenises a training stream (preprocess_stream)

    def preprocess_stream(self, stream, processor, input_columns: list[str], max_length, data_args):
        """``--streaming``: the model inputs of a ``datasets.IterableDataset``, computed as it is read."""
        raise NotImplementedError

    def adjust_training_args(self, training_args) -> None:
        """Change Trainer options the task needs (e.g. keep raw columns for on-the-fly transforms)."""

    def on_model_built(
        self, model: PreTrainedModel, processor, data_args: DataArguments, training_args
    ) -> None:
        """Record preprocessing choices in the model's config before training and saving."""

    def collator(self, processor, pad_to_multiple_of: int | None):
        raise NotImplementedError

    def image_settings(self, processor):
        """Image tasks: the input size, normalisation and resize interpolation ``processor`` applies
        (an ``ImageSettings``), e.g. for a method that feeds one model's pixels to another."""
        raise NotImplementedError(f"{self.name} reads no images")

    # --- model ------------------------------------------------------------------------------------
    def load_config(
        self, path: str, labels: LabelSpace, model_args: ModelArguments, processor=None
    ) -> PretrainedConfig:
        """The checkpoint's config with the label maps (and anything the processor implies) set."""
        return AutoConfig.from_pretrained(
            path,
            revision=model_args.revision,
            trust_remote_code=model_args.trust_remote_code,
            **self.label_config(labels),
        )

    def model_skeleton(self, config: PretrainedConfig, model_args: ModelArguments) -> PreTrainedModel:
        """The model's module tree without weights (meta device), for pre-flight checks."""
        with init_empty_weights():
            return self.auto_model_class.from_config(config, trust_remote_code=model_args.trust_remote_code)

    def check_weights(self, path: str, skeleton: PreTrainedModel, model_args: ModelArguments) -> None:
        """Pre-flight: refuse a checkpoint whose backbone doesn't fit its config (tensor shapes from the
        safetensors headers; no weights are loaded). transformers would re-initialise such tensors with a
        warning, quietly throwing the pretrained backbone away; only the classification head may differ."""
        if model_args.from_scratch or not Path(path).is_dir():
            return
        shapes = safetensors_shapes(Path(path))
        if not shapes:
            return
        expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
        prefix, head = skeleton.base_model_prefix, self._named_head(skeleton)
        matched, wrong = 0, []
        for key, shape in shapes.items():
            # checkpoints of the bare base model name their tensors without its prefix
            name = next((c for c in (key, f"{prefix}.{key}") if c in expected), None)
            if name is None:
                continue
            matched += 1
            if shape != expected[name] and _in_backbone(name, prefix, head):
                wrong.append((name, shape, expected[name]))
        if wrong:
            name, shape, need = wrong[0]
            raise ModelNotFoundError(
                f"The weights in '{path}' don't fit its config.json ({len(wrong)} backbone tensors differ, e.g. "
                f"{name}: {shape} in the file, {need} from the config); save both with save_pretrained."
            )
        if not matched:
            raise ModelNotFoundError(
                f"None of the {len(shapes)} tensors in '{path}' belongs to a {skeleton.config.model_type} model "
                f"(e.g. {next(iter(shapes))}); the config and weights come from different models: save both with "
                "save_pretrained, or fix config.json."
            )

    def _named_head(self, model) -> list[str]:
        """Head modules by their conventional names (outermost matches only)."""
        return named_head(model, self.head_names)

    def build_model(
        self,
        path: str,
        config: PretrainedConfig,
        labels: LabelSpace,
        model_args: ModelArguments,
        load_kwargs: dict | None = None,
    ) -> tuple[PreTrainedModel, list[str]]:
        """Load the pretrained model with a head for ``labels``; also return the head's module names.

        The head is whatever the checkpoint did not provide (missing or wrongly shaped keys). A
        checkpoint that already has a head for other label names gets that head re-initialised.
        ``load_kwargs`` go to ``from_pretrained`` over the defaults (a method's dtype or quantization
        config); the master weights load in fp32 unless they say otherwise (mixed precision comes from Trainer).
        """
        if model_args.from_scratch:
            model = self.auto_model_class.from_config(config, trust_remote_code=model_args.trust_remote_code)
            log("from scratch: the architecture with random weights, no pretrained weights loaded")
            return model, self._named_head(model)
        model, info = self.auto_model_class.from_pretrained(
            path,
            config=config,
            revision=model_args.revision,
            trust_remote_code=model_args.trust_remote_code,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **{"dtype": torch.float32, **(load_kwargs or {})},
        )
        mismatched = [key[0] if isinstance(key, tuple) else key for key in info.get("mismatched_keys", [])]
        wrong = [
            key for key in mismatched if _in_backbone(key, model.base_model_prefix, self._named_head(model))
        ]
        if wrong:  # a checkpoint check_weights could not read (e.g. pytorch_model.bin)
            raise ModelNotFoundError(
                f"The weights in '{path}' don't fit its config.json: {len(wrong)} backbone tensors differ in "
                f"shape (e.g. {wrong[0]}); save the config and weights together with save_pretrained."
            )
        head = sorted({_module_of(key) for key in [*info.get("missing_keys", []), *mismatched]})
        model.hftl_new_head = bool(head)  # False: the checkpoint's own head, kept (fit_head leaves it alone)
        if not head:  # the checkpoint has a head of the right shape: keep it only for the same labels
            head = self._named_head(model)
            original = AutoConfig.from_pretrained(
                path, revision=model_args.revision, trust_remote_code=model_args.trust_remote_code
            )
            previous = list((original.id2label or {}).values())
            if not _has_default_labels(original) and previous != labels.names:
                for module_name in head:
                    module = model.get_submodule(module_name)
                    for parameter in module.parameters():
                        # transformers skips tensors it marked as loaded from the checkpoint
                        parameter._is_hf_initialized = False
                    for submodule in module.modules():
                        model._init_weights(submodule)
                model.hftl_new_head = True
                log(
                    f"the checkpoint's head was trained for other labels ({', '.join(map(str, previous[:5]))}...): re-initialised {', '.join(head)}"
                )
            else:
                log(f"head loaded from the checkpoint: {', '.join(head)}")
        else:
            resized = sorted({_module_of(key) for key in mismatched})
            why = f" (the checkpoint's {', '.join(resized)} has another number of classes)" if resized else ""
            log(f"new head (randomly initialised): {', '.join(head)}{why}")
        return model, head
