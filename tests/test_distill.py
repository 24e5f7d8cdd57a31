"""Knowledge distillation: the loss as a pure function, the truncated student, and distill() end to end."""

from __future__ import annotations

import json
import math

import numpy as np
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
from hftl.methods.distill import kept_layer_indices, truncate_layers
from hftl.methods.distill.loss import distillation_loss, hidden_state_loss, soft_target_loss

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


# --- what the teacher sees: one pixel mapping for online, cached and test passes ----------------------
@pytest.fixture
def teacher_calls(monkeypatch):
    """Records every teacher pass: each ``teacher_logits()`` call (the cached-logits pass and the test
    evaluation) with its dataset, and each training step's batch with the logits the teacher gave."""
    import hftl.methods.distill.method as distill_method
    from hftl.methods.distill.trainer import DistillationTrainer

    calls = {"passes": [], "steps": []}
    whole_pass, step_loss = distill_method.teacher_logits, DistillationTrainer.compute_loss

    def record_pass(teacher, dataset, *args, **kwargs):
        logits = whole_pass(teacher, dataset, *args, **kwargs)
        calls["passes"].append((dataset, logits))
        return logits

    def record_step(self, model, inputs, *args, **kwargs):
        if not model.training:
            return step_loss(self, model, inputs, *args, **kwargs)
        step = {"inputs": {key: value.detach().clone() for key, value in inputs.items()}}

        def keep(module, arguments, outputs):
            step["teacher"] = outputs.logits.detach().float().clone()

        hook = self.teacher.register_forward_hook(keep) if self.teacher is not None else None
        try:
            return step_loss(self, model, inputs, *args, **kwargs)
        finally:
            if hook is not None:
                hook.remove()
            calls["steps"].append(step)

    monkeypatch.setattr(distill_method, "teacher_logits", record_pass)
    monkeypatch.setattr(DistillationTrainer, "compute_loss", record_step)
    return calls


def photo_folder(root, size: int, train: int = 24, test: int = 9):
    """``train/`` and ``test/`` folders of distinct noisy ``size``-pixel colour photos, one subfolder per colour."""
    from PIL import Image

    from .test_image import COLOURS

    for split, count, seed in (("train", train, 0), ("test", test, 1000)):
        for index in range(count):
            name = list(COLOURS)[index % 3]
            rng = np.random.default_rng(seed + index)
            pixels = np.clip(np.array(COLOURS[name]) + rng.normal(0, 60, (size, size, 3)), 0, 255)
            (root / split / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype("uint8")).save(root / split / name / f"{index}.png")
    return str(root)


@pytest.fixture(scope="module")
def image_teacher(tmp_path_factory):
    """A ViT (mean/std 0.5, 32 px) fine-tuned briefly on 32-pixel colour photos."""
    from transformers import ViTConfig, ViTModel

    from .test_image import save_backbone

    folder = tmp_path_factory.mktemp("image-teacher")
    torch.manual_seed(0)
    vit = save_backbone(
        folder / "vit",
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
    return str(
        finetune(
            model=vit,
            task="image-classification",
            dataset=photo_folder(folder / "photos", 32),
            image_size=32,
            output_dir=str(folder / "teacher"),
            **{**TINY_TRAINING, "max_steps": 6, "learning_rate": 1e-3},
        ).output_dir
    )


@pytest.fixture(scope="module")
def timm_student(tmp_path_factory):
    """A timm CNN (ImageNet mean/std), untrained."""
    import timm
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    folder = tmp_path_factory.mktemp("timm-student")
    torch.manual_seed(0)
    cfg = dict(timm.create_model("test_efficientnet", pretrained=False).pretrained_cfg)
    TimmWrapperForImageClassification(
        TimmWrapperConfig(architecture="test_efficientnet", pretrained_cfg=cfg)
    ).save_pretrained(folder)
    return str(folder)


def logits_on_own_preprocessing(teacher_dir: str, dataset) -> torch.Tensor:
    """The teacher's logits for every row of ``dataset``, from the raw images through the teacher's own
    image processor (as ``pipeline()`` would run it), independently of hftl."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(teacher_dir)
    model = AutoModelForImageClassification.from_pretrained(teacher_dir).eval()
    images = [row["image"].convert("RGB") for row in dataset.with_format(None)]
    with torch.no_grad():
        return model(**processor(images=images, return_tensors="pt")).logits


@pytest.mark.parametrize(
    ("size", "tolerance"),
    [(32, 1e-5), (48, 1e-3)],  # the teacher's own input size; a larger student (the teacher's is resized)
    ids=["same-size", "student-larger"],
)
def test_image_teacher_gets_its_own_normalisation_online_cached_and_in_its_test_metrics(
    size, tolerance, image_teacher, timm_student, tmp_path, teacher_calls, capfd
):
    """A ViT teacher (mean/std 0.5, 32 px) taught to a timm CNN student (ImageNet mean/std): the logits the
    teacher gives online, the cached ones and its test metrics all come from its own preprocessing."""
    options = dict(
        TINY_TRAINING,
        task="image-classification",
        dataset=photo_folder(tmp_path / "photos", size),
        image_size=size,
        augment="none",
        teacher=image_teacher,
        student=timm_student,
    )
    online = distill(output_dir=str(tmp_path / "online"), **options)
    online_steps, calls = teacher_calls["steps"], teacher_calls["passes"]
    teacher_calls["steps"], teacher_calls["passes"] = [], []
    assert [len(dataset) for dataset, _ in calls] == [9]  # the test evaluation
    cached = distill(output_dir=str(tmp_path / "cached"), teacher_logits="cache", **options)
    err = capfd.readouterr().err
    assert "teacher inputs: the student's pixels re-normalised from mean (0.485" in err
    (train, cached_logits), (test, test_logits) = teacher_calls["passes"]
    assert cached.trainer.teacher is None and len(train) == len(cached.trainer.train_dataset)

    # the cached pass and the test evaluation: the teacher's logits on its own preprocessing, row for row
    torch.testing.assert_close(
        torch.from_numpy(cached_logits),
        logits_on_own_preprocessing(image_teacher, train),
        atol=tolerance,
        rtol=0,
    )
    own_test = logits_on_own_preprocessing(image_teacher, test)
    torch.testing.assert_close(torch.from_numpy(test_logits), own_test, atol=tolerance, rtol=0)
    labels = torch.tensor(test.with_format(None)["labels"])
    accuracy = float((own_test.argmax(-1) == labels).float().mean())
    assert cached.metrics["teacher_test_accuracy"] == online.metrics["teacher_test_accuracy"] == accuracy
    assert cached.metrics["retention"] == cached.metrics["test_accuracy"] / max(accuracy, 1e-12)

    # the training set carries them row for row, and the online teacher gives the same values for the same rows
    stored = torch.tensor(cached.trainer.train_dataset.with_format(None)["teacher_logits"])
    torch.testing.assert_close(stored, torch.from_numpy(cached_logits), atol=1e-6, rtol=0)
    student_pixels = torch.stack([row["pixel_values"] for row in cached.trainer.train_dataset])
    compared = 0
    for step in online_steps:
        for pixels, logits in zip(step["inputs"]["pixel_values"], step["teacher"], strict=True):
            (row,) = [i for i in range(len(student_pixels)) if torch.equal(student_pixels[i], pixels)]
            torch.testing.assert_close(logits, stored[row], atol=1e-5, rtol=0)
            compared += 1
    assert compared == TINY_TRAINING["max_steps"] * TINY_TRAINING["per_device_train_batch_size"]

    if size == 32:
        with pytest.raises(ConfigError, match="random augmentation"):
            distill(
                **{**options, "augment": "crop-flip"},
                teacher_logits="cache",
                output_dir=str(tmp_path / "refused"),
            )


def test_cached_teacher_logits_come_from_the_caching_pass_row_for_row(
    teacher_dir, topics_csv, tmp_path, teacher_calls
):
    """hftl's own caching pass, then length-grouped and shuffled batches with unlabelled rows mixed in:
    every batch's cached logits are the teacher's logits for that batch's own rows."""
    result = distill(
        teacher=teacher_dir,
        dataset=str(topics_csv),
        student_layers=1,
        teacher_logits="cache",
        label_fraction=0.5,
        train_sampling_strategy="group_by_length",
        output_dir=str(tmp_path / "out"),
        **{**TINY_TRAINING, "max_steps": 6},
    )
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    train = result.trainer.train_dataset
    assert len(train) == 48 and -100 in train["labels"]
    (cached_dataset, cached), _test = teacher_calls["passes"]
    with torch.no_grad():  # each row alone, unpadded
        one_by_one = torch.cat(
            [teacher(input_ids=torch.tensor([row["input_ids"]])).logits for row in train.with_format(None)]
        )
    torch.testing.assert_close(torch.tensor(train["teacher_logits"]), one_by_one, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.from_numpy(cached), one_by_one, atol=1e-5, rtol=0)
    assert len(teacher_calls["steps"]) == 6
    for step in teacher_calls["steps"]:
        inputs = step["inputs"]
        with torch.no_grad():
            expected = teacher(
                **{key: value for key, value in inputs.items() if key not in ("labels", "teacher_logits")}
            ).logits
        torch.testing.assert_close(inputs["teacher_logits"], expected, atol=1e-5, rtol=0)


def test_cached_logits_give_the_same_loss_as_the_online_teacher(tmp_path):
    from transformers import TrainingArguments

    from hftl.methods.distill.trainer import DistillationTrainer

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


# --- every task owns its distillation loss -------------------------------------------------------------
def test_classification_hooks_are_the_softmax_and_bernoulli_losses_bit_for_bit():
    from hftl.tasks import get_task
    from hftl.techniques.soft_targets import true_label_loss

    task = get_task("text-classification")
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    single, multi = torch.tensor([0, 2, -100, 1]), torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 0]])
    assert torch.equal(task.distill_soft_loss(student, teacher, single, 2.0), soft_target_loss(student, teacher, 2.0))
    assert torch.equal(
        task.distill_soft_loss(student, teacher, multi, 2.0), soft_target_loss(student, teacher, 2.0, multi_label=True)
    )
    assert torch.equal(task.distill_hard_loss(student, single), F.cross_entropy(student[[0, 1, 3]], single[[0, 1, 3]]))
    assert torch.equal(task.distill_hard_loss(student, multi), F.binary_cross_entropy_with_logits(student, multi))
    hidden = multi.clone()
    hidden[1] = -100  # a multi-label row hidden by --label_fraction adds nothing
    torch.testing.assert_close(
        true_label_loss(student, hidden, multi_label=True),
        F.binary_cross_entropy_with_logits(student[[0, 2, 3]], multi[[0, 2, 3]]),
    )
    assert task.distill_hard_loss(student, torch.full((4,), -100)).item() == 0.0


def test_regression_soft_loss_is_the_mse_in_the_students_standardised_units():
    from hftl.tasks import get_task
    from hftl.tasks.regression import Targets

    targets = Targets(["valence", "arousal"], mean=(50.0, 0.3), std=(10.0, 0.01))
    task = get_task("text-regression").distill_view(targets)
    student = torch.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)  # standardised, as it trains
    mean, std = torch.tensor(targets.mean), torch.tensor(targets.std)
    teacher = student.detach() * std + mean  # the teacher's head gives original units
    labels = torch.tensor([[55.0, 0.29], [70.0, 0.30]])
    for temperature in (1.0, 4.0):  # a number has nothing to soften: the temperature changes nothing
        assert task.distill_soft_loss(student, teacher, labels, temperature).abs() < 1e-6
    off = teacher + torch.tensor([10.0, 0.0])  # one std off on the first output, in every row
    soft = task.distill_soft_loss(student, off, labels, 2.0)
    torch.testing.assert_close(soft, torch.tensor(0.5))  # mean of (1², 0²) over rows and outputs
    soft.backward()
    assert student.grad.abs().sum() > 0
    # the true-label term: the standardised MSE, rows hidden by --label_fraction left out, zero without labels
    hard = task.distill_hard_loss(student, torch.cat([labels[:1], torch.full((1, 2), -100.0)]))
    torch.testing.assert_close(hard, F.mse_loss(student[:1], (labels[:1] - mean) / std))
    assert task.distill_hard_loss(student, torch.full((2, 2), -100.0)).item() == 0.0


def test_retention_keeps_the_direction_of_the_headline_metric():
    from hftl.methods.distill.method import retention

    assert retention(0.9, 1.0, greater_is_better=True) == pytest.approx(0.9)
    assert retention(2.0, 1.0, greater_is_better=False) == pytest.approx(0.5)  # twice the teacher's error


@pytest.fixture(scope="module")
def score_folder(tmp_path_factory):
    from .test_regression import _rows

    folder = tmp_path_factory.mktemp("scores")
    for name, n, seed in (("train", 48, 0), ("validation", 12, 1), ("test", 12, 2)):
        write_csv(folder / f"{name}.csv", _rows(n, seed))
    return folder


@pytest.fixture(scope="module")
def regression_teacher(score_folder, teacher_dir, tmp_path_factory):
    """The 4-layer tiny BERT teacher trained further on two regression targets (a new head)."""
    return str(
        finetune(
            model=teacher_dir, task="text-regression", dataset=str(score_folder), label_column="score,arousal",
            output_dir=str(tmp_path_factory.mktemp("regression-teacher")), learning_rate=1e-3,
            **{**TINY_TRAINING, "max_steps": 6},
        ).output_dir
    )  # fmt: skip


def test_regression_student_learns_the_teachers_standardised_outputs(
    regression_teacher, score_folder, tmp_path, teacher_calls, capfd
):
    """Online and cached teachers give the same soft targets; with --label_fraction the hidden rows keep
    their float targets out of the loss (-100) and the labelled ones keep theirs; the report compares r2."""
    options = dict(
        teacher=regression_teacher, task="text-regression", dataset=str(score_folder), student_layers=2,
        label_column="score,arousal", **TINY_TRAINING,
    )  # fmt: skip
    snapshot = Snapshot()
    online = distill(output_dir=str(tmp_path / "online"), label_fraction=0.5, callbacks=[snapshot], **options)
    err = capfd.readouterr().err
    assert "24 unlabelled training rows learn from the teacher alone" in err
    assert "the checkpoint's head gives original units; standardised by this run's targets" in err
    labels = np.asarray(online.trainer.train_dataset.with_format(None)["labels"])
    hidden = (labels == -100).all(axis=1)
    assert hidden.sum() == 24 and labels[~hidden, 0].min() > 20  # the kept targets, in their units
    teacher = AutoModelForSequenceClassification.from_pretrained(regression_teacher).eval()
    targets = online.labels
    mean, std = torch.tensor(targets.mean), torch.tensor(targets.std)
    student_model = AutoModelForSequenceClassification.from_pretrained(online.output_dir)
    assert student_model.config.num_hidden_layers == 2 and len(targets) == 2
    # the student cut from the teacher starts from its head in standardised units: outputs = (teacher - mean) / std
    torch.testing.assert_close(
        snapshot.before["classifier.bias"], (teacher.classifier.bias - mean) / std, atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        snapshot.before["classifier.weight"], teacher.classifier.weight / std[:, None], atol=1e-6, rtol=0
    )
    for step in teacher_calls["steps"]:  # the soft term: the teacher's outputs standardised by the student's targets
        with torch.no_grad():
            expected = teacher(**{k: v for k, v in step["inputs"].items() if k != "labels"}).logits
        torch.testing.assert_close(step["teacher"], expected, atol=1e-5, rtol=0)
    task = online.trainer.task
    logits = torch.randn(3, 2)
    torch.testing.assert_close(
        task.distill_soft_loss(logits, logits * std + mean, None, 2.0), torch.tensor(0.0), atol=1e-6, rtol=0
    )
    metrics = online.metrics
    assert {"teacher_test_r2", "test_r2", "retention"} <= set(metrics)
    assert metrics["retention"] == pytest.approx(metrics["test_r2"] / max(metrics["teacher_test_r2"], 1e-12))
    card = (online.output_dir / "README.md").read_text()
    assert "| test r2 |" in card and "| test rmse |" in card

    teacher_calls["passes"].clear()
    cached = distill(output_dir=str(tmp_path / "cached"), teacher_logits="cache", **options)
    (train, stored), _test = teacher_calls["passes"]
    with torch.no_grad():
        one_by_one = torch.cat(
            [teacher(input_ids=torch.tensor([row["input_ids"]])).logits for row in train.with_format(None)]
        )
    torch.testing.assert_close(torch.from_numpy(stored), one_by_one, atol=1e-5, rtol=0)  # original units
    assert cached.trainer.teacher is None


def test_regression_teachers_that_cant_match_are_one_line(
    regression_teacher, teacher_dir, score_folder, topics_csv, tmp_path, no_model_build
):
    base = dict(task="text-regression", dataset=str(score_folder), output_dir=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match="needs a regression teacher"):
        distill(teacher=teacher_dir, label_column="score", **base)
    with pytest.raises(ConfigError, match=r"The teacher predicts score, arousal, but --label_column is arousal,score"):
        distill(teacher=regression_teacher, label_column="arousal,score", **base)
    with pytest.raises(ConfigError, match="The teacher predicts numbers"):
        distill(teacher=regression_teacher, dataset=str(topics_csv), output_dir=str(tmp_path / "c"))


def test_per_token_tasks_refuse_a_cache_and_a_tokenizer_that_splits_otherwise(
    teacher_dir, topics_csv, tmp_path, monkeypatch, no_model_build
):
    """For a task whose outputs are per token (``distill_same_tokenizer``): no cached logits, and a student
    tokenizer with the teacher's vocabulary but another normaliser is refused (other tasks take it)."""
    from transformers import AutoTokenizer

    from hftl.tasks.text_classification import TextClassification

    student = tmp_path / "student"
    BertModel(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(student)  # fmt: skip
    AutoTokenizer.from_pretrained(teacher_dir, do_lower_case=False).save_pretrained(student)
    base = dict(teacher=teacher_dir, dataset=str(topics_csv), output_dir=str(tmp_path / "o"))
    with pytest.raises(AssertionError, match="a model was built"):  # classification: the vocabulary suffices
        distill(student=str(student), **base)
    monkeypatch.setattr(TextClassification, "distill_same_tokenizer", True)
    with pytest.raises(ConfigError, match="splits text differently from the student's"):
        distill(student=str(student), **base)
    with pytest.raises(ConfigError, match="--teacher_logits cache stores one fixed-size teacher output per row"):
        distill(student_layers=1, teacher_logits="cache", **base)


def test_a_task_without_a_distillation_loss_is_refused_in_one_line(teacher_dir, topics_csv, tmp_path, monkeypatch, no_model_build):
    from hftl.tasks import Task
    from hftl.tasks.text_classification import TextClassification

    monkeypatch.setattr(TextClassification, "distill_soft_loss", Task.distill_soft_loss)
    assert not TextClassification().distillable
    with pytest.raises(ConfigError, match="--method distill needs the task's distillation loss, which --task text-classification"):
        distill(teacher=teacher_dir, dataset=str(topics_csv), output_dir=str(tmp_path / "o"))
