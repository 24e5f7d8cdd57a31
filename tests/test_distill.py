"""Knowledge distillation: the loss as a pure function, the truncated student, and distill() end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertModel,
    TrainerCallback,
)

from hftl import ConfigError, distill, finetune
from hftl.distillation.loss import distillation_loss, hidden_state_loss, soft_target_loss
from hftl.distillation.student import kept_layer_indices, truncate_layers

from .conftest import TINY_TRAINING, make_rows, tokenizer_source, write_csv


# --- the loss ----------------------------------------------------------------------------------------
def test_soft_loss_is_zero_for_equal_logits_and_positive_otherwise():
    logits = torch.randn(4, 3)
    assert soft_target_loss(logits, logits.clone(), 2.0).abs() < 1e-6
    assert soft_target_loss(logits, logits.clone(), 2.0, multi_label=True).abs() < 1e-6
    assert soft_target_loss(torch.randn(4, 3), logits, 2.0) > 0


def test_soft_loss_is_t_squared_times_the_kl_of_softened_distributions():
    student, teacher, temperature = torch.randn(5, 4), torch.randn(5, 4), 3.0
    p = F.softmax(teacher / temperature, -1)
    kl = (p * (p.log() - F.log_softmax(student / temperature, -1))).sum(-1).mean()
    torch.testing.assert_close(soft_target_loss(student, teacher, temperature), temperature**2 * kl)


def test_alpha_mixes_hard_and_soft_and_gradients_reach_only_the_student():
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, requires_grad=True)
    hard = F.cross_entropy(student, torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(distillation_loss(student, teacher, hard, alpha=1.0, temperature=2.0), hard)
    loss = distillation_loss(student, teacher, hard, alpha=0.3, temperature=2.0)
    torch.testing.assert_close(loss, 0.3 * hard + 0.7 * soft_target_loss(student, teacher, 2.0))
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None


def test_hidden_state_loss_ignores_padding_and_uses_the_projection():
    student = (torch.zeros(1, 3, 2), torch.zeros(1, 3, 2))
    teacher = (torch.zeros(1, 3, 4), torch.tensor([[[1.0] * 4, [1.0] * 4, [100.0] * 4]]))
    projection = torch.nn.Linear(2, 4)
    torch.nn.init.zeros_(projection.weight), torch.nn.init.zeros_(projection.bias)
    mask = torch.tensor([[1, 1, 0]])
    assert math.isclose(hidden_state_loss(student, teacher, [(1, 1)], mask, projection).item(), 1.0)


# --- the truncated student ---------------------------------------------------------------------------
def test_kept_layers_are_evenly_spaced_with_first_and_last():
    assert kept_layer_indices(6, 3) == [0, 2, 5]
    assert kept_layer_indices(12, 6) == [0, 2, 4, 7, 9, 11]
    assert kept_layer_indices(4, 1) == [3]


def test_truncated_student_copies_the_kept_layers_and_saves(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99,
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    teacher = AutoModelForSequenceClassification.from_config(config)
    student, kept = truncate_layers(teacher, 2)
    assert kept == [0, 3] and student.config.num_hidden_layers == 2 and len(teacher.bert.encoder.layer) == 4
    for position, index in enumerate(kept):
        torch.testing.assert_close(
            student.bert.encoder.layer[position].output.dense.weight,
            teacher.bert.encoder.layer[index].output.dense.weight,
        )
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight)
    student.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 99, (2, 5))
    torch.testing.assert_close(reloaded(input_ids=ids).logits, student.eval()(input_ids=ids).logits)
    with pytest.raises(ConfigError, match="between 1 and 3 for this model"):
        truncate_layers(teacher, 4)


# --- end to end --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def topics_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("data") / "topics.csv", make_rows(60))


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, topics_csv):
    """A 4-layer tiny BERT fine-tuned (briefly) on the topics: the teacher."""
    folder = tmp_path_factory.mktemp("bert4")
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=30522,
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_source()).save_pretrained(folder)
    out = tmp_path_factory.mktemp("teacher")
    finetune(
        model=str(folder),
        dataset=str(topics_csv),
        output_dir=str(out),
        overwrite_output_dir=True,
        **{**TINY_TRAINING, "max_steps": 6, "learning_rate": 1e-3},
    )
    return str(out)


class Snapshot(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}


def test_distill_defaults_to_half_the_teacher_and_reports_both(teacher_dir, topics_csv, tmp_path, capfd):
    snapshot = Snapshot()
    result = distill(
        teacher=teacher_dir,
        dataset=str(topics_csv),
        output_dir=str(tmp_path / "out"),
        callbacks=[snapshot],
        **TINY_TRAINING,
    )
    err = capfd.readouterr().err
    assert (
        "student = the teacher with 2 of its 4 layers" in err and "student keeps teacher layers [0, 3]" in err
    )
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and sorted(config["label2id"]) == ["politics", "sport", "tech"]
    moved = [
        n
        for n, p in result.trainer.model.named_parameters()
        if not torch.equal(snapshot.before[n], p.detach())
    ]
    assert moved  # the student trains; the teacher stays frozen
    assert all(not p.requires_grad and p.grad is None for p in result.trainer.teacher.parameters())
    from safetensors.torch import load_file

    saved_teacher = load_file(f"{teacher_dir}/model.safetensors")
    for name, tensor in result.trainer.teacher.state_dict().items():
        torch.testing.assert_close(
            tensor.cpu(), saved_teacher[name], atol=0, rtol=0
        )  # the teacher never changes
    assert {"teacher_test_accuracy", "test_accuracy", "teacher_params"} <= set(result.metrics)
    assert result.metrics["all_params"] < result.metrics["teacher_params"]
    hftl_config = (result.output_dir / "hftl_config.yaml").read_text()
    assert "method: distill" in hftl_config and "student_layers: 2" in hftl_config


def test_cached_teacher_logits_replace_the_teacher_in_training(teacher_dir, topics_csv, tmp_path, capfd):
    result = finetune(
        method="distill",
        teacher=teacher_dir,
        student_layers=1,
        teacher_logits="cache",
        dataset=str(topics_csv),
        output_dir=str(tmp_path / "out"),
        **TINY_TRAINING,
    )
    assert "caching the teacher's logits for 48 training rows" in capfd.readouterr().err
    assert result.trainer.teacher is None  # nothing to call per step
    assert "teacher_logits" in result.trainer.train_dataset.column_names
    assert json.loads((result.output_dir / "config.json").read_text())["num_hidden_layers"] == 1


def test_separate_student_with_hidden_state_matching_saves_no_projection(
    teacher_dir, topics_csv, tiny_bert_dir, tmp_path
):
    from safetensors.torch import load_file

    result = distill(
        teacher=teacher_dir,
        student=tiny_bert_dir,
        dataset=str(topics_csv),
        distill_hidden_weight=1.0,
        output_dir=str(tmp_path / "out"),
        **TINY_TRAINING,
    )
    assert result.metrics["test_samples"] == 6
    saved = load_file(str(result.output_dir / "model.safetensors"))
    assert not any("hftl_hidden_projection" in key for key in saved)


def test_bad_distill_options_are_one_line(teacher_dir, topics_csv, tiny_bert_dir, tmp_path, no_model_build):
    base = dict(dataset=str(topics_csv), output_dir=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match="--method distill needs --teacher"):
        finetune(method="distill", **base)
    with pytest.raises(ConfigError, match="--student_layers must be between 1 and 1"):
        distill(teacher=teacher_dir, student=tiny_bert_dir, student_layers=2, **base)
    with pytest.raises(ConfigError, match="has no class names"):
        distill(teacher=tiny_bert_dir, **base)
    with pytest.raises(ConfigError, match="--distill_alpha must be in"):
        distill(teacher=teacher_dir, distill_alpha=1.5, **base)


def test_student_with_another_tokenizer_is_refused(teacher_dir, topics_csv, tmp_path, no_model_build):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({word for row in make_rows(60) for word in row["text"].split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{word: index + 2 for index, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    student = tmp_path / "student"
    BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(student)
    PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(
        student
    )
    with pytest.raises(
        ConfigError, match=r"The teacher's tokenizer \(30522 tokens\) differs from the student's"
    ):
        distill(
            teacher=teacher_dir, student=str(student), dataset=str(topics_csv), output_dir=str(tmp_path / "o")
        )


def test_image_distillation_renormalises_pixels_for_the_teacher(tmp_path, capfd):
    """A ViT teacher (mean/std 0.5) taught to a timm CNN student (ImageNet mean/std), online and cached."""
    import timm
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification, ViTConfig, ViTModel

    from .test_image import COLOURS, make_image, save_backbone

    root = tmp_path / "photos"
    for index in range(30):
        name = list(COLOURS)[index % 3]
        (root / name).mkdir(parents=True, exist_ok=True)
        make_image(COLOURS[name], index).save(root / name / f"{index}.png")
    torch.manual_seed(0)
    vit = save_backbone(
        tmp_path / "vit",
        ViTModel(
            ViTConfig(
                image_size=32,
                patch_size=8,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
            )
        ),
    )
    image = dict(TINY_TRAINING, task="image-classification", dataset=str(root), image_size=32)
    teacher = finetune(model=vit, output_dir=str(tmp_path / "teacher"), **image).output_dir
    student = tmp_path / "student"
    cfg = dict(timm.create_model("test_efficientnet", pretrained=False).pretrained_cfg)
    TimmWrapperForImageClassification(
        TimmWrapperConfig(architecture="test_efficientnet", pretrained_cfg=cfg)
    ).save_pretrained(student)
    result = distill(teacher=str(teacher), student=str(student), output_dir=str(tmp_path / "online"), **image)
    assert "the teacher's inputs are re-normalised" in capfd.readouterr().err
    assert result.labels.names == ["blue", "green", "red"] and "teacher_test_accuracy" in result.metrics
    with pytest.raises(ConfigError, match="random augmentation"):
        distill(
            teacher=str(teacher),
            student=str(student),
            teacher_logits="cache",
            augment="crop-flip",
            output_dir=str(tmp_path / "refused"),
            **image,
        )
    cached = distill(
        teacher=str(teacher),
        student=str(student),
        teacher_logits="cache",
        augment="none",
        output_dir=str(tmp_path / "cached"),
        **image,
    )
    assert cached.trainer.teacher is None and "test_accuracy" in cached.metrics


def test_cached_logits_give_the_same_loss_as_the_online_teacher(tmp_path):
    from transformers import TrainingArguments

    from hftl.distillation.trainer import DistillationTrainer

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    teacher = AutoModelForSequenceClassification.from_config(config).eval()
    student = AutoModelForSequenceClassification.from_config(config).train()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    batch = {
        "input_ids": torch.randint(0, 50, (4, 6)),
        "attention_mask": torch.ones(4, 6, dtype=torch.long),
        "labels": torch.tensor([0, 1, 2, -100]),
    }
    online = DistillationTrainer(model=student, args=args, teacher=teacher, alpha=0.4, temperature=3.0)
    cached = DistillationTrainer(model=student, args=args, teacher=None, alpha=0.4, temperature=3.0)
    with torch.no_grad():
        logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss_online = online.compute_loss(student, dict(batch))
    loss_cached = cached.compute_loss(student, {**batch, "teacher_logits": logits})
    torch.testing.assert_close(loss_online, loss_cached, atol=1e-6, rtol=0)


def test_label_fraction_gives_distill_unlabelled_rows_and_full_drops_them(
    teacher_dir, topics_csv, tmp_path, capfd
):
    result = distill(
        teacher=teacher_dir,
        dataset=str(topics_csv),
        student_layers=1,
        label_fraction=0.5,
        output_dir=str(tmp_path / "kd"),
        **TINY_TRAINING,
    )
    assert "24 unlabelled training rows learn from the teacher alone" in capfd.readouterr().err
    assert result.metrics["train_samples"] == 48
    baseline = finetune(
        model=teacher_dir,
        student_layers=1,
        dataset=str(topics_csv),
        label_fraction=0.5,
        output_dir=str(tmp_path / "labels-only"),
        **TINY_TRAINING,
    )
    assert "the 24 hidden by --label_fraction are dropped" in capfd.readouterr().err
    assert baseline.metrics["train_samples"] == 24
    assert json.loads((baseline.output_dir / "config.json").read_text())["num_hidden_layers"] == 1


def test_distill_recipe_prints_the_report(run_forked, teacher_dir, topics_csv, tmp_path):
    from .conftest import REPO

    exit_code, output = run_forked(  # one log of stdout and stderr (see _forked.py)
        "--method",
        "distill",
        "--teacher",
        teacher_dir,
        "--student_layers",
        "2",
        "--dataset",
        topics_csv,
        "--output_dir",
        tmp_path / "out",
        "--max_steps",
        "2",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        script=REPO / "recipes" / "text_cls.py",
        env={"HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert exit_code == 0, output[-3000:]
    assert "distill report: test accuracy student" in output
    for key in ("teacher_test_accuracy", "retention", "latency_speedup"):
        assert key in output
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    assert results["student_params"] < results["teacher_params"] and results["latency_speedup"] > 0


def test_student_layers_with_another_method_or_too_many_is_one_line(tiny_options, no_model_build):
    with pytest.raises(ConfigError, match="--student_layers works with --method distill or full, not lora"):
        finetune(method="lora", student_layers=1, **tiny_options)
    with pytest.raises(ConfigError, match="--student_layers must be between 1 and 1 for this model"):
        finetune(method="full", student_layers=2, **tiny_options)
