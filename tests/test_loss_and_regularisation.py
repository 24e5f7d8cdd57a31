"""Class weights and label smoothing in the loss, the dropout override, and early stopping with the best
checkpoint restored (hftl.techniques.class_weights / dropout / early_stopping)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, List, Value
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    ResNetConfig,
    TrainerCallback,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
)

from hftl import ConfigError, HftlTrainingArguments, finetune
from hftl.data.labels import LabelSpace
from hftl.run.checkpoints import MANIFEST
from hftl.techniques.class_weights import ClassLoss, class_weights, label_counts
from hftl.techniques.dropout import override_dropout

from .conftest import TOPICS, write_csv

NAMES = sorted(TOPICS)  # hftl's label order for the tiny CSV: politics, sport, tech


# --- class weights: the numbers ------------------------------------------------------------------------
def test_auto_and_effective_weights_from_counts():
    counts = np.array([10, 30, 60])
    inverse = np.array([1 / 10, 1 / 30, 1 / 60])
    np.testing.assert_allclose(class_weights("auto", counts, 100, False), inverse / inverse.mean())
    effective = np.array([(1 - 0.999) / (1 - 0.999**n) for n in counts])
    np.testing.assert_allclose(class_weights("effective", counts, 100, False), effective / effective.mean())
    # multi-label: pos_weight = negatives / positives per class (a class without positives counts one)
    np.testing.assert_allclose(class_weights("auto", np.array([10, 30, 0]), 100, True), [9.0, 70 / 30, 100.0])


def test_counts_come_from_the_encoded_label_column():
    single = Dataset.from_dict({"labels": [0, 2, 2, 1, 2]}).cast_column(
        "labels", ClassLabel(names=["a", "b", "c"])
    )
    assert label_counts(single, LabelSpace(["a", "b", "c"])).tolist() == [1, 1, 3]
    hot = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    multi = Dataset.from_dict({"labels": hot}).cast_column("labels", List(Value("float32")))
    multi = multi.select([0, 1, 2, 1])  # through an indices mapping, as carved splits are
    assert label_counts(multi, LabelSpace(["a", "b", "c"], multi_label=True)).tolist() == [2, 0, 3]


def test_weighted_cross_entropy_with_smoothing_equals_the_hand_computed_loss():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 2, 1, 2, -100])
    weight, eps = torch.tensor([0.5, 2.0, 1.5]), 0.1
    loss = ClassLoss(multi_label=False, weight=weight, smoothing=eps)(logits, labels)
    # torch's weighted mean: sum_i [(1-eps) w_y (-log p_y) + eps/C sum_c w_c (-log p_c)] / sum_i w_y,
    # over the labelled rows only
    log_p, y = logits[:4].log_softmax(-1), labels[:4]
    per_row = -(1 - eps) * weight[y] * log_p[torch.arange(4), y] - eps / 3 * (weight * log_p).sum(-1)
    torch.testing.assert_close(loss, per_row.sum() / weight[y].sum())


def test_multi_label_bce_with_pos_weight_and_smoothing_equals_the_hand_computed_loss():
    torch.manual_seed(1)
    logits = torch.randn(4, 3)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    pos_weight, eps = torch.tensor([3.0, 0.5, 1.0]), 0.2
    loss = ClassLoss(multi_label=True, weight=pos_weight, smoothing=eps)(logits, labels)
    target = labels * (1 - eps) + eps / 2  # 0 -> 0.1, 1 -> 0.9
    sigmoid = torch.sigmoid(logits)
    by_hand = -(pos_weight * target * sigmoid.log() + (1 - target) * (1 - sigmoid).log()).mean()
    torch.testing.assert_close(loss, by_hand)


# --- class weights: wired into a run -------------------------------------------------------------------
def test_class_weights_smoothing_and_dropout_reach_the_trainer_and_model(tiny_options, capsys):
    # one run for three switches (test time): each is checked on its own below
    result = finetune(class_weights="1,2,3", label_smoothing_factor=0.1, dropout=0.3, **tiny_options)
    logged = capsys.readouterr().err
    train = result.trainer.train_dataset.with_format(None)["labels"]
    counts = ", ".join(f"{name} {train.count(i)}" for i, name in enumerate(NAMES))
    assert f"train examples per class: {counts}" in logged
    assert "class weights (as given): politics 1, sport 2, tech 3" in logged

    trainer, model = result.trainer, result.trainer.model.eval()
    batch = next(iter(trainer.get_eval_dataloader()))
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    y, weight, eps = batch["labels"], torch.tensor([1.0, 2.0, 3.0]), 0.1
    log_p = logits.log_softmax(-1)
    per_row = -(1 - eps) * weight[y] * log_p[torch.arange(len(y)), y] - eps / 3 * (weight * log_p).sum(-1)
    torch.testing.assert_close(loss, per_row.sum() / weight[y].sum())

    # --dropout: every dropout module of the built model, and the config saved with it
    assert (
        "dropout 0.3 (was: hidden_dropout_prob 0.1, attention_probs_dropout_prob 0.1, classifier_dropout None)"
        in logged
    )
    rates = {module.p for module in model.modules() if isinstance(module, torch.nn.Dropout)}
    assert rates == {0.3}
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.3


def test_auto_multi_label_weights_are_negatives_over_positives(tmp_path, tiny_bert_dir, capsys):
    rows = [
        {
            "text": " ".join(TOPICS[t].split()[:4]),
            "label": "|".join(sorted({t, "sport"}) if i % 4 == 0 else [t]),
        }
        for i, t in enumerate(NAMES * 20)
    ]
    data = write_csv(tmp_path / "multi.csv", rows)
    result = finetune(model=tiny_bert_dir, dataset=str(data), label_delimiter="|", class_weights="auto", max_steps=1,
                      save_strategy="no", eval_strategy="no", output_dir=str(tmp_path / "out"))  # fmt: skip
    logged = capsys.readouterr().err
    assert "train positives per class (of 48 rows): politics " in logged
    assert "BCE pos_weight (negatives/positives): politics " in logged
    hot = np.array(result.trainer.train_dataset.with_format(None)["labels"])
    positives = hot.sum(axis=0)
    expected = torch.tensor((len(hot) - positives) / positives, dtype=torch.float32)
    torch.testing.assert_close(result.trainer.class_loss.weight, expected)
    assert result.trainer.class_loss.multi_label


def test_a_weight_list_of_the_wrong_length_is_one_line_before_any_model(tiny_options, no_model_build):
    with pytest.raises(
        ConfigError, match=r"has 2 weight\(s\) but there are 3 labels.*order: politics, sport, tech"
    ):
        finetune(class_weights="1,2", **tiny_options)
    for bad in ("auto,2", "1,0,2", "inverse"):
        with pytest.raises(ConfigError, match="--class_weights"):
            HftlTrainingArguments(output_dir="x", class_weights=bad)


def test_distillation_weights_its_true_label_term(tmp_path):
    from hftl.methods.distill.trainer import DistillationTrainer

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    teacher = AutoModelForSequenceClassification.from_config(config).eval()
    student = AutoModelForSequenceClassification.from_config(config).train()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    trainer = DistillationTrainer(model=student, args=args, teacher=teacher, alpha=1.0, temperature=2.0)
    weight = torch.tensor([1.0, 4.0, 0.5])
    trainer.class_loss = ClassLoss(multi_label=False, weight=weight)
    batch = {"input_ids": torch.randint(0, 50, (4, 6)), "attention_mask": torch.ones(4, 6, dtype=torch.long),
             "labels": torch.tensor([0, 1, 1, -100])}  # fmt: skip
    loss = trainer.compute_loss(student, dict(batch))
    logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:3]
    y = batch["labels"][:3]
    by_hand = -(weight[y] * logits.log_softmax(-1)[torch.arange(3), y]).sum() / weight[y].sum()
    torch.testing.assert_close(loss, by_hand)


# --- dropout --------------------------------------------------------------------------------------------
def test_dropout_override_for_vit_timm_and_a_model_without_dropout(capsys):
    vit = ViTConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=32,
        patch_size=8,
    )
    assert override_dropout(vit, 0.25) == ["hidden_dropout_prob", "attention_probs_dropout_prob"]
    model = ViTForImageClassification(vit)
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.25}

    timm = pytest.importorskip("timm")
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    arch = "test_efficientnet"
    config = TimmWrapperConfig(architecture=arch, pretrained_cfg=dict(timm.create_model(arch).pretrained_cfg))
    assert override_dropout(config, 0.25) == ["drop_rate"]
    assert TimmWrapperForImageClassification(config).timm_model.drop_rate == 0.25

    assert override_dropout(ResNetConfig(), 0.25) == []
    assert "the resnet config has no dropout field hftl knows" in capsys.readouterr().err


# --- early stopping -------------------------------------------------------------------------------------
def test_early_stopping_sets_checkpointing_or_refuses_in_one_line():
    args = HftlTrainingArguments(output_dir="x", early_stopping_patience=2)
    assert args.load_best_model_at_end and args.save_strategy.value == "epoch"
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False
    args = HftlTrainingArguments(output_dir="x", early_stopping_patience=2, metric_for_best_model="macro_f1",
                                 eval_strategy="steps", eval_steps=20)  # fmt: skip
    assert (args.save_strategy.value, args.save_steps, args.greater_is_better) == ("steps", 20, True)
    with pytest.raises(ConfigError, match="needs --eval_strategy epoch or steps"):
        HftlTrainingArguments(output_dir="x", early_stopping_patience=2, eval_strategy="no")
    with pytest.raises(ConfigError, match="--save_strategy is steps every 7 steps"):
        HftlTrainingArguments(output_dir="x", early_stopping_patience=2, save_steps=7)
    with pytest.raises(ConfigError, match="only acts with --early_stopping_patience"):
        HftlTrainingArguments(output_dir="x", early_stopping_threshold=0.01)


def test_an_unknown_best_metric_is_one_line_before_any_model(tiny_options, no_model_build):
    options = {**tiny_options, "eval_strategy": "epoch", "save_strategy": "epoch"}
    with pytest.raises(
        ConfigError, match="--metric_for_best_model f1 is not reported.*loss, accuracy, macro_f1"
    ):
        finetune(early_stopping_patience=1, metric_for_best_model="f1", **options)


class WreckFromSecondEpoch(TrainerCallback):
    """From the second epoch on, a learning rate that ruins the model: validation loss must get worse."""

    def on_epoch_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        if state.epoch >= 1:
            lr_scheduler.base_lrs = [1.0 for _ in lr_scheduler.base_lrs]
            for group in optimizer.param_groups:
                group["lr"] = 1.0


def test_early_stopping_stops_and_saves_the_best_checkpoint_with_save_total_limit_1(
    tiny_options, capsys, monkeypatch
):
    import hftl.trainer

    rotations, rotate = [], hftl.trainer.rotate_checkpoints
    monkeypatch.setattr(hftl.trainer, "rotate_checkpoints", lambda *a: (rotations.append(a), rotate(*a))[1])
    options = {key: value for key, value in tiny_options.items() if key not in ("save_strategy", "max_steps")}
    options.update(eval_strategy="epoch", num_train_epochs=6, per_device_train_batch_size=16, learning_rate=1e-3,
                   lr_scheduler_type="constant", save_total_limit=1, early_stopping_patience=1)  # fmt: skip
    result = finetune(callbacks=[WreckFromSecondEpoch()], **options)
    logged = capsys.readouterr().err
    assert "early stopping: stops after 1 evaluation(s) without eval_loss improving" in logged
    assert "train examples per class: politics " in logged  # printed for every run
    assert result.trainer.class_loss is None  # neither weights nor smoothing: the model's own loss
    state, out = result.trainer.state, Path(result.output_dir)
    losses = [entry["eval_loss"] for entry in state.log_history if "eval_loss" in entry and "epoch" in entry]
    assert state.epoch == 2 < 6 and losses[1] > losses[0]  # stopped after the first worse evaluation
    best = Path(state.best_model_checkpoint)
    assert best.name == "checkpoint-3" and (best / MANIFEST).is_file()
    assert [p.name for p in out.glob("checkpoint-*")] == ["checkpoint-3"]  # the later one rotated away
    assert rotations[-1][1:3] == (1, [str(best)])  # by hftl's crash-safe rotation, not Trainer's rmtree
    saved, kept = load_file(str(out / "model.safetensors")), load_file(str(best / "model.safetensors"))
    assert saved.keys() == kept.keys() and all(torch.equal(saved[k], kept[k]) for k in saved)
    assert json.loads((out / "all_results.json").read_text())["eval_loss"] == pytest.approx(
        losses[0], rel=1e-5
    )
