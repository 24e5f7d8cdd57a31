"""The teacher: a fine-tuned classifier (full, merged or LoRA output), its label names, its inputs, its logits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoConfig, PretrainedConfig

from ..._batch import model_inputs
from ..._log import log
from ...errors import ConfigError, HftlError, ModelNotFoundError, first_line
from ...resolve import resolve_model

__all__ = [
    "TeacherSource",
    "PixelMap",
    "find_teacher",
    "teacher_label_names",
    "load_teacher",
    "padded",
    "teacher_inputs",
    "teacher_logits",
    "teacher_pixel_map",
]


class TeacherSource:
    """Where the teacher's weights are: a model directory / Hub id, or a LoRA adapter over a base model.

    Every config, tokenizer, image processor and model of the teacher loads through :meth:`load`, with
    ``trust_remote_code`` as given (``--trust_remote_code``, as for ``--model``): transformers then never
    prompts, and a teacher that needs its own code is refused in one line unless it was given.
    """

    def __init__(self, reference: str, revision: str | None = None, trust_remote_code: bool = False):
        self.reference, self.revision, self.trust_remote_code = reference, revision, trust_remote_code
        folder = Path(reference).expanduser()
        adapter = next(
            (path for path in (folder / "adapter", folder) if (path / "adapter_config.json").is_file()), None
        )
        self.has_full_model = (folder / "config.json").is_file()
        self.adapter_dir = str(adapter) if adapter and not self.has_full_model else None
        try:
            if self.adapter_dir:
                base_id = json.loads((adapter / "adapter_config.json").read_text()).get(
                    "base_model_name_or_path"
                )
                self.base = resolve_model(base_id, revision)
            else:
                self.base = resolve_model(reference, revision)
        except ModelNotFoundError as error:
            raise ModelNotFoundError(f"--teacher: {error}") from None
        self.config_path = self.base.path
        # hftl saves the processor next to the adapter (LoRA) or the model
        self.processor_path = self.adapter_dir or self.config_path
        self._config: PretrainedConfig | None = None

    def load(self, what: str, loader, path: str, **kwargs):
        """``loader(path, trust_remote_code=..., **kwargs)`` with its failures as one line about the teacher."""
        try:
            return loader(path, trust_remote_code=self.trust_remote_code, **kwargs)
        except HftlError:
            raise
        except (OSError, ValueError, KeyError, ImportError) as exc:
            if not self.trust_remote_code and "trust_remote_code" in str(exc):
                raise ModelNotFoundError(
                    f"Teacher '{self.reference}' needs code of its own to load its {what} (its auto_map), "
                    "which hftl runs only when asked: pass --trust_remote_code if you trust its code."
                ) from None
            first_sentence = first_line(exc).split(". ")[0]
            first_sentence = first_sentence.replace(f"'{path}'", "the folder")  # the path is in the line once
            raise ModelNotFoundError(
                f"Could not load the {what} of teacher '{self.reference}': {first_sentence[:120]}; save the "
                f"teacher's {what} there with save_pretrained() (an hftl output directory has it)."
            ) from None

    def config(self) -> PretrainedConfig:
        if self._config is not None:
            return self._config
        config = self.load("config", AutoConfig.from_pretrained, self.config_path, revision=self.revision)
        saved = Path(self.adapter_dir) / "label_names.json" if self.adapter_dir else None
        if saved is not None and saved.is_file():
            # the base config lacks the fine-tuned label names; hftl's LoRA save writes them
            names = json.loads(saved.read_text())
            config.id2label = dict(enumerate(names))
            config.label2id = {name: index for index, name in enumerate(names)}
        self._config = config
        return config


def find_teacher(
    reference: str | None, revision: str | None = None, trust_remote_code: bool = False
) -> TeacherSource:
    if not reference:
        raise ConfigError(
            "--method distill needs --teacher: a fine-tuned classifier (an hftl output directory, a LoRA "
            "output directory or a Hub id)."
        )
    return TeacherSource(reference, revision, trust_remote_code)


def teacher_label_names(source: TeacherSource) -> list[str]:
    """The teacher's class names in id order; refuses a teacher whose labels are ``LABEL_0, ...``."""
    config = source.config()
    names = [str(config.id2label[index]) for index in sorted(config.id2label)] if config.id2label else []
    if not names or all(name.startswith("LABEL_") for name in names):
        raise ConfigError(
            f"Teacher '{source.reference}' has no class names (only LABEL_0, LABEL_1, ...), so its outputs can't "
            "be matched to your labels; distill from a classifier fine-tuned on them (e.g. an hftl output directory)."
        )
    return names


def load_teacher(source: TeacherSource, task):
    """The teacher in eval mode with gradients off (fp32 here; the trainer casts it to bf16 on GPU)."""
    if source.adapter_dir:
        from peft import PeftModel

        base = source.load(
            "model", task.auto_model_class.from_pretrained, source.config_path,
            config=source.config(), revision=source.revision, dtype=torch.float32,
        )  # fmt: skip
        # peft reads adapter_config.json and the adapter's tensors: no code of the adapter's runs
        model = source.load(
            "LoRA adapter",
            lambda path, trust_remote_code: PeftModel.from_pretrained(base, path),
            source.adapter_dir,
        ).merge_and_unload()
    else:
        model = source.load(
            "model", task.auto_model_class.from_pretrained, source.config_path,
            revision=source.revision, dtype=torch.float32,
        )  # fmt: skip
    model.eval().requires_grad_(False)
    where = "LoRA adapter merged into " + source.base.source if source.adapter_dir else source.base.source
    log(f"teacher: {source.reference} ({where})")
    return model


@dataclass(frozen=True)
class PixelMap:
    """The student's ``pixel_values`` turned into the teacher's: re-normalised from the student's mean/std
    to the teacher's, and resized to the teacher's input size when it differs.

    One mapping for every teacher pass: online training, the cached-logits pass and the teacher's test
    evaluation. The re-normalisation is exact (an affine map per channel). The resize works on the
    student's crop, so with other input sizes the teacher sees that crop resampled, not the image
    through its own resize and crop.

    Args:
        scale: Per channel, ``std_student / std_teacher``.
        shift: Per channel, ``(mean_student - mean_teacher) / std_teacher``.
        size: The teacher's square input size.
        interpolation: ``bilinear`` or ``bicubic`` (the teacher's resize).
    """

    scale: tuple[float, ...]
    shift: tuple[float, ...]
    size: int
    interpolation: str = "bilinear"

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        scale, shift = (
            torch.tensor(values, dtype=pixel_values.dtype, device=pixel_values.device).view(1, -1, 1, 1)
            for values in (self.scale, self.shift)
        )
        pixels = pixel_values * scale + shift
        if tuple(pixels.shape[-2:]) != (self.size, self.size):
            # per-channel affine maps commute with interpolation, so the order of the two does not matter
            mode = "bicubic" if self.interpolation == "bicubic" else "bilinear"
            pixels = torch.nn.functional.interpolate(
                pixels.float(), size=(self.size, self.size), mode=mode, align_corners=False, antialias=True
            ).to(pixel_values.dtype)
        return pixels


def teacher_pixel_map(student_settings, teacher_settings, student_size: int) -> PixelMap | None:
    """The :class:`PixelMap` from the student's preprocessing to the teacher's (``ImageSettings`` of each),
    or ``None`` when both normalise alike at the same size."""
    if (student_settings.mean, student_settings.std, student_size) == (
        teacher_settings.mean,
        teacher_settings.std,
        teacher_settings.size,
    ):
        return None
    pixel_map = PixelMap(
        scale=tuple(s / t for s, t in zip(student_settings.std, teacher_settings.std, strict=True)),
        shift=tuple(
            (ms - mt) / t
            for ms, mt, t in zip(
                student_settings.mean, teacher_settings.mean, teacher_settings.std, strict=True
            )
        ),
        size=teacher_settings.size,
        interpolation=teacher_settings.interpolation,
    )
    parts = []
    if (student_settings.mean, student_settings.std) != (teacher_settings.mean, teacher_settings.std):
        parts.append(
            f"re-normalised from mean {_rounded(student_settings.mean)} std {_rounded(student_settings.std)} "
            f"to the teacher's mean {_rounded(teacher_settings.mean)} std {_rounded(teacher_settings.std)}"
        )
    if student_size != teacher_settings.size:
        parts.append(f"resized from {student_size} px to the teacher's {teacher_settings.size} px")
    log("teacher inputs: the student's pixels " + " and ".join(parts))
    return pixel_map


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(value, 3) for value in values)


def teacher_inputs(batch: dict, pixel_map: PixelMap | None = None, device=None) -> dict:
    """What the teacher's forward() takes from a student batch: its model inputs (moved to ``device``),
    with the pixels through ``pixel_map`` (images whose preprocessing differs)."""
    inputs = model_inputs(batch, device)
    if pixel_map is not None and "pixel_values" in inputs:
        inputs["pixel_values"] = pixel_map(inputs["pixel_values"])
    return inputs


@torch.inference_mode()
def teacher_logits(
    teacher, dataset, collator, batch_size: int, device, dtype=None, pixel_map: PixelMap | None = None
) -> np.ndarray:
    """The teacher's logits for every row of ``dataset``, in row order (one pass, no gradients).

    Each process computes all rows itself, so no cross-process gathering can reorder them.
    """
    teacher.to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator)
    chunks = []
    for batch in loader:
        inputs = teacher_inputs(batch, pixel_map, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            chunks.append(teacher(**inputs).logits.float().cpu().numpy())
    return padded(chunks, stacked=False)


def padded(arrays: list[np.ndarray], stacked: bool = True) -> np.ndarray:
    """``arrays`` (rows, or batches of rows when not ``stacked``) as one array, each padded with -100 to the
    longest along every axis after the first (per-token outputs: one length per row or batch)."""
    arrays = [array[None] if stacked else array for array in arrays]
    shape = np.max([array.shape[1:] for array in arrays], axis=0) if arrays[0].ndim > 1 else ()
    if all(array.shape[1:] == tuple(shape) for array in arrays):
        return np.concatenate(arrays)
    out = np.full((sum(len(array) for array in arrays), *shape), -100, dtype=arrays[0].dtype)
    start = 0
    for array in arrays:
        out[(slice(start, start + len(array)), *(slice(0, size) for size in array.shape[1:]))] = array
        start += len(array)
    return out
