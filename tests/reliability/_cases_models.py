"""Bad-input cases: see test_bad_inputs.py, which runs them.

Models, distillation teachers and custom code. A teacher that needs code of its own is refused like a
``--model`` that does (``test_security.py`` runs the same folder with "y" on stdin, with a closed stdin,
and with ``--trust_remote_code``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hftl import ConfigError, ModelNotFoundError

from ._battery import COLOURS, Case, Env, classifier_dir, images

LABELS = ["politics", "sport", "tech"]  # the tiny CSV's classes


def with_own_code(folder: Path) -> Path:
    """``folder``'s config.json asks for a config class in a .py file of the folder (``auto_map``);
    importing it would write ``code-ran`` next to the folder, which the battery's snapshot would show."""
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="hftl-canary", auto_map={"AutoConfig": "configuration_canary.CanaryConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_canary.py").write_text(
        f"from pathlib import Path\nPath({str(folder.parent / 'code-ran')!r}).touch()\n"
        "from transformers import BertConfig\n"
        "class CanaryConfig(BertConfig):\n    model_type = 'hftl-canary'\n"
    )
    return folder


def teacher_with_own_code(env: Env) -> dict:
    return {"method": "distill", "teacher": str(with_own_code(classifier_dir(env, "teacher", LABELS)))}


def model_with_own_code(env: Env) -> dict:
    return {"model": str(with_own_code(env.bert_copy("custom")))}


def empty_teacher_folder(env: Env) -> dict:
    (env.tmp / "teacher").mkdir()
    return {"method": "distill", "teacher": str(env.tmp / "teacher")}


def adapter_only_teacher(env: Env) -> dict:
    """A LoRA adapter folder (no merged model) as the teacher, and no --model to be the student."""
    adapter = env.tmp / "teacher" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": env.bert, "r": 4})
    )
    (adapter / "label_names.json").write_text(json.dumps(LABELS))
    return {"method": "distill", "teacher": str(env.tmp / "teacher"), "model": None}


def teacher_weights_cut(env: Env) -> dict:
    teacher = classifier_dir(env, "teacher", LABELS)
    data = (teacher / "model.safetensors").read_bytes()
    (teacher / "model.safetensors").write_bytes(data[: len(data) // 2])
    return {"method": "distill", "teacher": str(teacher)}


def image_teacher_without_processor(env: Env) -> dict:
    """A ViT classifier of the image folder's colours saved without its preprocessor_config.json."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    names = sorted(COLOURS)
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
    )  # fmt: skip
    ViTForImageClassification(config).save_pretrained(env.tmp / "teacher")
    return images(env, method="distill", teacher=str(env.tmp / "teacher"))


MODEL_CASES: list[Case] = [
    Case(
        "teacher-own-code", "a teacher whose config.json asks for code of its own (auto_map)",
        "Refused without --trust_remote_code; its code never runs and nothing prompts on stdin.",
        teacher_with_own_code,
        ModelNotFoundError, "needs code of its own to load its config (its auto_map), which hftl runs only when asked: pass --trust_remote_code if you trust its code.",
    ),
    Case(
        "model-own-code", "a --model folder whose config.json asks for code of its own (auto_map)",
        "Refused without --trust_remote_code; its code never runs.",
        model_with_own_code,
        ModelNotFoundError, "needs code of its own to load (its auto_map), which hftl runs only when asked: pass --trust_remote_code if you trust its code.",
    ),
    Case(
        "teacher-missing", "--teacher naming a folder that does not exist",
        "Refused, naming --teacher.",
        lambda env: {"method": "distill", "teacher": str(env.tmp / "no-such-teacher")},
        ModelNotFoundError, "--teacher: Model path",
    ),
    Case(
        "teacher-folder-empty", "a teacher folder without config.json",
        "Refused: pass a folder written by save_pretrained().",
        empty_teacher_folder,
        ModelNotFoundError, "has no config.json; pass a directory written by save_pretrained()",
    ),
    Case(
        "teacher-without-class-names", "a teacher whose classes are LABEL_0, LABEL_1 (a bare backbone)",
        "Refused: its outputs can't be matched to the data's labels.",
        lambda env: {"method": "distill", "teacher": env.bert},
        ConfigError, "has no class names (only LABEL_0, LABEL_1, ...)",
    ),
    Case(
        "teacher-adapter-without-student", "a LoRA adapter without a merged model as the teacher, and no --model",
        "Refused: an adapter can't be cut into a student; pass --model.",
        adapter_only_teacher,
        ConfigError, "This teacher is a LoRA adapter without a merged model",
    ),
    Case(
        "teacher-weights-truncated", "a teacher with a truncated model.safetensors",
        "Refused before the student is built, naming the file.",
        teacher_weights_cut,
        ModelNotFoundError, "model.safetensors' can't be read",
    ),
    Case(
        "teacher-image-processor-missing", "an image teacher saved without preprocessor_config.json",
        "Refused before training: its mean, std and size are unknown.",
        image_teacher_without_processor,
        ModelNotFoundError, "Could not load the image processor of teacher",
    ),
]  # fmt: skip
