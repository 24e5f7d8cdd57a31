"""Knowledge distillation: a student learns from the true labels and a fine-tuned teacher's soft targets."""

from __future__ import annotations

import json

import numpy as np
import torch

from ..._batch import model_inputs
from ..._log import log
from ...errors import ConfigError
from ...hub.card import format_metric
from .._base import Method, save_model_and_processor
from .._registry import method_names, register_method
from .._student import check_student_layers, layer_count_attribute, truncate_layers
from ..full import FullFineTuning
from ._rows import add_column, with_unlabelled
from .teacher import (
    find_teacher,
    load_teacher,
    padded,
    teacher_inputs,
    teacher_label_names,
    teacher_logits,
    teacher_pixel_map,
)
from .trainer import DistillationTrainer, add_projection, remove_projection

__all__ = ["Distillation"]


def _layer_count(config) -> int | None:
    attribute = layer_count_attribute(config)
    return getattr(config, attribute) if attribute else None


def _teacher_dtype(training_args):
    """The teacher's precision for inference passes: bf16 on a GPU when training is bf16."""
    return torch.bfloat16 if training_args.bf16 and training_args.device.type == "cuda" else None


class Distillation(Method):
    """Train every parameter of a student on ``alpha · hard + (1 - alpha) · soft``, the task's terms
    (``Task.distill_hard_loss``, ``Task.distill_soft_loss``): for classification cross-entropy and
    ``T² · KL(teacher || student)``, for regression two MSEs in the student's standardised units.

    The student is ``--model`` (cut to ``--student_layers`` layers if given), or by default a copy of the
    teacher with ``--student_layers`` of its encoder layers (half of them when unset). One instance per
    run: it holds the teacher.
    """

    name = "distill"
    default_learning_rate = 5e-5
    summary = "the student trains on true labels and the teacher's soft targets"
    help = "a student learns from a fine-tuned teacher"
    required_options = ("teacher",)
    takes_student_layers = True
    pools_document_windows = False  # its loss calls the student and teacher on windows, unpooled
    # the teacher runs unwrapped beside the student: untried beside a sharded one (docs/scaling.md)
    unsharded_reason = "a teacher beside a sharded student is untested"
    streams = False  # cached teacher logits cover the whole training set

    @classmethod
    def tuned_learning_rate(cls, dataset, tuned) -> float | None:
        # every student parameter trains, as in full fine-tuning: its tuned rates apply
        return FullFineTuning.tuned_learning_rate(dataset, tuned)

    def setup(self, model_args, data_args, method_args, task) -> None:
        if not task.distillable:  # the task defines no distillation loss (Task.distill_soft_loss)
            raise ConfigError(
                f"--method distill needs the task's distillation loss, which --task {task.name} doesn't define; "
                f"use another --method ({', '.join(n for n in method_names() if n != self.name)})."
            )
        self.source = find_teacher(method_args.teacher, model_args.revision, model_args.trust_remote_code)
        self.model_args = model_args
        task.check_teacher(self.source.config(), data_args)  # e.g. regression: the same target columns
        self.label_order = teacher_label_names(self.source)
        self.kept_layers = None
        self.pixel_map = None
        if method_args.teacher_logits not in ("online", "cache"):
            raise ConfigError(f"--teacher_logits must be online or cache (got {method_args.teacher_logits}).")
        if method_args.distill_hidden_weight and task.modality != "text":
            raise ConfigError(
                "--distill_hidden_weight matches transformer hidden states; it works for text models only."
            )
        if model_args.model:
            cut = f" cut to {method_args.student_layers} layers" if method_args.student_layers else ""
            log(f"distill: student {model_args.model}{cut}, teacher {self.source.reference}")
            return
        if self.source.adapter_dir:
            raise ConfigError(
                "This teacher is a LoRA adapter without a merged model, which can't be truncated into a student; "
                "pass --model STUDENT, or a teacher saved with its merged model (the LoRA default)."
            )
        total = _layer_count(self.source.config())
        if total is None or total < 2:
            raise ConfigError(
                f"Teacher '{self.source.reference}' has no stack of layers to truncate; pass a smaller --model as the student."
            )
        if method_args.student_layers is None:
            method_args.student_layers = max(1, total // 2)
        model_args.model = method_args.teacher  # the student starts from the teacher's own weights
        log(
            f"distill: student = the teacher with {method_args.student_layers} of its {total} layers; teacher {self.source.reference}"
        )

    def preflight(self, skeleton, method_args, *, processor=None, data_args=None, task=None) -> None:
        if method_args.student_layers:
            check_student_layers(skeleton, method_args.student_layers)
        if task is not None:  # the teacher loads only after the student is built: check its weights file now
            teacher_skeleton = task.model_skeleton(self.source.config(), self.model_args)
            task.check_weights(self.source.config_path, teacher_skeleton, self.model_args)
        if method_args.teacher_logits == "cache" and task is not None and task.distill_same_tokenizer:
            # one output per token: the rows' outputs differ in length, which the collator doesn't pad
            raise ConfigError(
                f"--teacher_logits cache stores one fixed-size teacher output per row; --task {task.name}'s outputs "
                "are per token (one length per row): use --teacher_logits online."
            )
        if (
            method_args.teacher_logits == "cache"
            and data_args is not None
            and data_args.augment not in (None, "none")
        ):
            raise ConfigError(
                f"--teacher_logits cache stores one teacher output per training image, which random augmentation "
                f"(--augment {data_args.augment}) would make stale; use --augment none or --teacher_logits online."
            )
        if processor is not None and hasattr(processor, "get_vocab"):
            from transformers import AutoTokenizer

            teacher_tokenizer = self.source.load(
                "tokenizer",
                AutoTokenizer.from_pretrained,
                self.source.processor_path,
                revision=self.source.revision,
            )
            if teacher_tokenizer.get_vocab() != processor.get_vocab():
                raise ConfigError(
                    f"The teacher's tokenizer ({len(teacher_tokenizer)} tokens) differs from the student's "
                    f"({len(processor)} tokens); hftl feeds both models the same token ids, so pick a student "
                    "with the teacher's tokenizer, or use --student_layers to distill into a truncated teacher."
                )
            if (
                task is not None
                and task.distill_same_tokenizer
                and _backend(teacher_tokenizer) != _backend(processor)
            ):
                raise ConfigError(
                    f"The teacher's tokenizer splits text differently from the student's (same vocabulary, another "
                    f"normaliser or pre-tokenizer); --task {task.name} matches outputs token by token, so pick a "
                    "student with the teacher's tokenizer, or use --student_layers to distill into a truncated teacher."
                )
        if processor is not None and task is not None and task.modality == "image":
            self.pixel_map = self._pixel_map(processor, data_args, task)

    def _pixel_map(self, student_processor, data_args, task):
        """How the student's pixels become the teacher's: its image processor's mean, std and size."""
        from transformers import AutoImageProcessor

        teacher_processor = self.source.load(
            "image processor", AutoImageProcessor.from_pretrained, self.source.processor_path,
            revision=self.source.revision,
        )  # fmt: skip
        student = task.image_settings(student_processor)
        student_size = (data_args.image_size if data_args is not None else None) or student.size
        return teacher_pixel_map(student, task.image_settings(teacher_processor), student_size)

    def prepare(self, model, head, method_args, base_model_id, *, task=None):
        if method_args.student_layers:
            model, self.kept_layers = truncate_layers(model, method_args.student_layers)
            log(f"student keeps teacher layers {self.kept_layers}")
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        self.hidden_weight = method_args.distill_hidden_weight
        return model

    def learns_from_unlabelled(self, task) -> bool:
        # images: the unlabelled rows would need the train transform; per-token tasks mask the soft term by
        # the label positions, which a hidden row has none of
        return task.modality == "text" and not task.distill_same_tokenizer

    def build_trainer(self, task, data, tokenized, collator, training_args, method_args, **trainer_kwargs):
        self.teacher = load_teacher(self.source, task)
        self.task = task  # its headline metric is the one the report compares
        student = trainer_kwargs["model"]
        layer_map = []
        if self.hidden_weight:
            layer_map = self._layer_map(student)
            student_width, teacher_width = student.config.hidden_size, self.teacher.config.hidden_size
            if student_width != teacher_width:
                add_projection(student, student_width, teacher_width)
        train = tokenized["train"]
        if "unlabelled" in tokenized:
            train = with_unlabelled(train, tokenized["unlabelled"])
            log(
                f"distill: {len(tokenized['unlabelled'])} unlabelled training rows learn from the teacher alone"
            )
        if method_args.teacher_logits == "cache":
            dtype = _teacher_dtype(training_args)
            batch = training_args.per_device_eval_batch_size
            log(f"caching the teacher's logits for {len(train)} training rows (one pass)")
            cached = teacher_logits(
                self.teacher, train, collator, batch, training_args.device, dtype, self.pixel_map
            )
            train = add_column(train, "teacher_logits", [row.tolist() for row in cached])
        trainer_kwargs["train_dataset"] = train
        log(
            f"distill: alpha {method_args.distill_alpha} (true labels), temperature {method_args.distill_temperature}, "
            f"teacher logits {method_args.teacher_logits}"
            + (f", hidden-state weight {self.hidden_weight}" if self.hidden_weight else "")
        )
        return DistillationTrainer(
            teacher=self.teacher if method_args.teacher_logits == "online" or self.hidden_weight else None,
            alpha=method_args.distill_alpha,
            temperature=method_args.distill_temperature,
            task=task.distill_view(data.labels),
            hidden_weight=self.hidden_weight,
            layer_map=layer_map,
            pixel_map=self.pixel_map,
            **trainer_kwargs,
        )

    def _layer_map(self, student) -> list[tuple[int, int]]:
        """Student hidden state i (0 = embeddings) to the teacher's: the kept layers of a truncated
        teacher, else evenly spread."""
        student_layers, teacher_layers = _layer_count(student.config), _layer_count(self.teacher.config)
        if self.kept_layers is not None:
            return [(0, 0)] + [(i + 1, kept + 1) for i, kept in enumerate(self.kept_layers)]
        return [(0, 0)] + [
            (i, round(i * teacher_layers / student_layers)) for i in range(1, student_layers + 1)
        ]

    def extra_metrics(self, trainer, tokenized, data, compute_metrics, preprocess, metrics) -> dict:
        """Teacher vs student on the same test split, parameter counts and inference latency."""
        args = trainer.args
        dtype = _teacher_dtype(args)
        logits = teacher_logits(
            self.teacher,
            tokenized["test"],
            trainer.data_collator,
            args.per_device_eval_batch_size,
            args.device,
            dtype,
            self.pixel_map,
        )
        from transformers import EvalPrediction

        predictions = preprocess(torch.from_numpy(logits), None).numpy()
        # per-token labels differ in length from row to row: padded with -100, as Trainer pads them
        labels = padded([np.asarray(row) for row in tokenized["test"].with_format(None)["labels"]])
        teacher = {
            f"teacher_test_{key}": value
            for key, value in compute_metrics(
                EvalPrediction(predictions=predictions, label_ids=labels)
            ).items()
        }
        student = trainer.accelerator.unwrap_model(trainer.model)
        batch = trainer.data_collator(
            [
                tokenized["test"][i]
                for i in range(min(len(tokenized["test"]), args.per_device_eval_batch_size))
            ]
        )
        speedup = inference_latency(
            self.teacher, teacher_inputs(batch, self.pixel_map, args.device)
        ) / inference_latency(student, model_inputs(batch, args.device))
        key = self.task.headline_metric(data.labels)
        report = {
            **teacher,
            "retention": retention(
                metrics[f"test_{key}"], teacher[f"teacher_test_{key}"], self.task.greater_is_better(key)
            ),
            "student_params": sum(p.numel() for p in student.parameters()),
            "teacher_params": sum(p.numel() for p in self.teacher.parameters()),
            "latency_speedup": speedup,
        }
        log(
            f"distill report: test {key} student {metrics[f'test_{key}']:.4f} vs teacher {teacher[f'teacher_test_{key}']:.4f} "
            f"(retention {report['retention']:.1%}); parameters {report['student_params']:,} vs {report['teacher_params']:,}; "
            f"student {speedup:.2f}x faster on a batch of {len(batch['labels'])}"
        )
        return report

    def save(self, trainer, output_dir, processor, method_args) -> None:
        remove_projection(trainer.accelerator.unwrap_model(trainer.model))
        save_model_and_processor(trainer, output_dir, processor)

    def card_hyperparameters(self, method_args) -> dict:
        values = {
            "distillation alpha": method_args.distill_alpha,
            "temperature": method_args.distill_temperature,
            "teacher logits": method_args.teacher_logits,
        }
        if method_args.student_layers:
            values["student layers"] = method_args.student_layers
        return values

    def card_teacher(self, method_args) -> str | None:
        return method_args.teacher

    def result_keys(self, task, labels) -> list[str]:
        return [f"teacher_test_{task.headline_metric(labels)}", "retention", "latency_speedup"]

    def card_sections(self, metrics, task, labels) -> list[str]:
        """Teacher against student: the task's comparison metrics on the test split, size and speed."""
        rows = [
            (
                f"test {name}",
                format_metric(metrics[f"teacher_test_{name}"]),
                format_metric(metrics[f"test_{name}"]),
            )
            for name in task.comparison_metrics(labels)
            if f"teacher_test_{name}" in metrics and f"test_{name}" in metrics
        ]
        rows.append(
            ("parameters", f"{metrics.get('teacher_params', 0):,}", f"{metrics.get('student_params', 0):,}")
        )
        if "latency_speedup" in metrics:
            rows.append(("inference speed (same batch)", "1.00x", f"{metrics['latency_speedup']:.2f}x"))
        lines = [
            "### Teacher and student (same test split)",
            "",
            "| | teacher | student (this model) |",
            "|---|---|---|",
        ]
        return ["\n".join(lines + [f"| {name} | {teacher} | {student} |" for name, teacher, student in rows])]


def retention(student: float, teacher: float, greater_is_better: bool) -> float:
    """The share of the teacher's score the student keeps: student ÷ teacher, or teacher ÷ student for a
    metric where lower is better (an error), so 1 is as good as the teacher either way and less is worse."""
    if greater_is_better:
        return student / max(teacher, 1e-12)
    return teacher / max(student, 1e-12)


def _backend(tokenizer) -> dict | None:
    """A fast tokenizer's pipeline (normaliser, pre-tokenizer, model, post-processor), without the call-time
    truncation and padding settings; ``None`` for a slow tokenizer (its vocabulary is all hftl compares)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    settings = json.loads(backend.to_str())
    return {key: value for key, value in settings.items() if key not in ("truncation", "padding")}


@torch.inference_mode()
def inference_latency(model, inputs: dict, repeats: int = 5) -> float:
    """Median seconds of one forward pass on ``inputs`` (after a warm-up pass), in eval mode."""
    import statistics
    import time

    was_training = model.training
    model.eval()
    cuda = next(iter(inputs.values())).device.type == "cuda"
    model(**inputs)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(**inputs)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    model.train(was_training)
    return statistics.median(times)


register_method(Distillation)
