"""The teacher: a fine-tuned classifier (full, merged or LoRA output), its label names, its logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoConfig, PretrainedConfig

from .._batch import model_inputs
from .._log import log
from ..errors import ConfigError, ModelNotFoundError
from ..resolve import resolve_model

__all__ = ["TeacherSource", "find_teacher", "teacher_label_names", "load_teacher", "teacher_logits"]


class TeacherSource:
    """Where the teacher's weights are: a model directory / Hub id, or a LoRA adapter over a base model."""

    def __init__(self, reference: str, revision: str | None = None):
        folder = Path(reference).expanduser()
        adapter = next(
            (path for path in (folder / "adapter", folder) if (path / "adapter_config.json").is_file()), None
        )
        self.has_full_model = (folder / "config.json").is_file()
        self.adapter_dir = str(adapter) if adapter and not self.has_full_model else None
        if self.adapter_dir:
            base_id = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
            self.base = resolve_model(base_id, revision)
            self.config_path = self.base.path
        else:
            self.base = resolve_model(reference, revision)
            self.config_path = self.base.path
        self.reference = reference

    def config(self) -> PretrainedConfig:
        if self.adapter_dir:  # the base config lacks the fine-tuned label names; hftl's LoRA save writes them
            saved = Path(self.adapter_dir) / "label_names.json"
            config = AutoConfig.from_pretrained(self.config_path)
            if saved.is_file():
                names = json.loads(saved.read_text())
                config.id2label = dict(enumerate(names))
                config.label2id = {name: index for index, name in enumerate(names)}
            return config
        return AutoConfig.from_pretrained(self.config_path)


def find_teacher(reference: str | None, revision: str | None = None) -> TeacherSource:
    if not reference:
        raise ConfigError(
            "--method distill needs --teacher: a fine-tuned classifier (an hftl output directory, a LoRA "
            "output directory or a Hub id)."
        )
    return TeacherSource(reference, revision)


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
    try:
        if source.adapter_dir:
            from peft import PeftModel

            config = source.config()
            base = task.auto_model_class.from_pretrained(
                source.config_path, config=config, dtype=torch.float32
            )
            model = PeftModel.from_pretrained(base, source.adapter_dir).merge_and_unload()
        else:
            model = task.auto_model_class.from_pretrained(source.config_path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"Could not load teacher '{source.reference}': {str(exc).splitlines()[0][:200]}"
        ) from None
    model.eval().requires_grad_(False)
    log(
        f"teacher: {source.reference} ({'LoRA adapter merged into ' + source.base.source if source.adapter_dir else source.base.source})"
    )
    return model


@torch.inference_mode()
def teacher_logits(teacher, dataset, collator, batch_size: int, device, dtype=None) -> np.ndarray:
    """The teacher's logits for every row of ``dataset``, in row order (one pass, no gradients).

    Each process computes all rows itself, so no cross-process gathering can reorder them.
    """
    teacher.to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator)
    chunks = []
    for batch in loader:
        inputs = model_inputs(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            chunks.append(teacher(**inputs).logits.float().cpu())
    return torch.cat(chunks).numpy()
