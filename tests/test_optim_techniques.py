"""The optimizer-side switches: --layer_decay / --head_learning_rate (the optimizer's groups carry the
hand-computed rates on BERT, HF ViT, timm ViT and timm ResNet), --unfreeze_schedule (parameters start
changing exactly at their step, also after a resume) and --find_lr (the real run is unaffected)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    TimmWrapperConfig,
    TimmWrapperForImageClassification,
    TrainerCallback,
    TrainerState,
    ViTConfig,
    ViTForImageClassification,
)

from hftl import ConfigError, HftlTrainingArguments, TrainingStopped, finetune
from hftl.techniques.unfreeze import GradualUnfreezing
from hftl.trainer import HftlTrainer

timm = pytest.importorskip("timm")

BASE, HEAD, DECAY, WD = 1e-3, 1e-2, 0.5, 0.01


def tiny_bert():
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=3)  # fmt: skip
    return BertForSequenceClassification(config), ["classifier"]


def tiny_vit():
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                       intermediate_size=64, num_labels=3)  # fmt: skip
    return ViTForImageClassification(config), ["classifier"]


def tiny_timm(architecture: str):
    pretrained_cfg = dict(timm.create_model(architecture, pretrained=False).pretrained_cfg)
    config = TimmWrapperConfig(architecture=architecture, pretrained_cfg=pretrained_cfg, num_labels=3)
    return TimmWrapperForImageClassification(config), ["timm_model." + pretrained_cfg["classifier"]]


def bert_exponent(name: str) -> int:  # L = 2: embeddings 3, layer.0 2, layer.1 1, pooler 0
    if name.startswith("bert.embeddings."):
        return 3
    if match := re.match(r"bert\.encoder\.layer\.(\d+)\.", name):
        return 2 - int(match[1])
    assert name.startswith("bert.pooler."), name
    return 0


def vit_exponent(name: str) -> int:  # L = 3; the final layernorm sits above the stack
    if name.startswith("vit.embeddings."):
        return 4
    if match := re.match(r"vit\.layers\.(\d+)\.", name):
        return 3 - int(match[1])
    assert name.startswith("vit.layernorm."), name
    return 0


def timm_vit_exponent(name: str) -> int:  # 6 blocks; timm groups the final norm with the last block
    name = name.removeprefix("timm_model.")
    if re.match(r"(cls_token|pos_embed|patch_embed)", name):
        return 7
    if match := re.match(r"blocks\.(\d+)\.", name):
        return 6 - int(match[1])
    assert name.startswith("norm."), name
    return 1


def timm_resnet_exponent(name: str) -> int:  # stem and 4 stages (layer1..layer4)
    name = name.removeprefix("timm_model.")
    if match := re.match(r"layer(\d)\.", name):
        return 5 - int(match[1])
    assert re.match(r"(conv1|bn1)\.", name), name
    return 5


def make_trainer(model, head, tmp_path, **options) -> HftlTrainer:
    args = HftlTrainingArguments(
        output_dir=str(tmp_path), learning_rate=BASE, weight_decay=WD, eval_strategy="no", **options
    )
    return HftlTrainer(model=model, args=args, head_modules=head)


def group_of(optimizer) -> dict[int, dict]:
    return {id(p): group for group in optimizer.param_groups for p in group["params"]}


@pytest.mark.parametrize(
    "build, exponent",
    [
        (tiny_bert, bert_exponent),
        (tiny_vit, vit_exponent),
        (lambda: tiny_timm("test_vit"), timm_vit_exponent),
        (lambda: tiny_timm("test_resnet"), timm_resnet_exponent),
    ],
    ids=["bert", "hf-vit", "timm-vit", "timm-resnet"],
)
def test_layer_decay_gives_each_parameter_its_layers_rate(build, exponent, tmp_path):
    torch.manual_seed(0)
    model, head = build()
    trainer = make_trainer(model, head, tmp_path, layer_decay=DECAY, head_learning_rate=HEAD)
    optimizer = trainer.create_optimizer()
    assert type(optimizer).__name__ == "AdamW"  # still Trainer's --optim
    groups = group_of(optimizer)
    named = dict(model.named_parameters())
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(named)  # each parameter once
    for name, parameter in named.items():
        in_head = any(name.startswith(module + ".") for module in head)
        expected = HEAD if in_head else BASE * DECAY ** exponent(name)
        assert math.isclose(groups[id(parameter)]["lr"], expected, rel_tol=1e-12), name
    # Trainer's weight-decay split is kept (no decay on biases and norms)
    decayed = {name for name, p in named.items() if groups[id(p)]["weight_decay"] == WD}
    assert decayed == set(trainer.get_decay_parameter_names(model))
    assert all(groups[id(p)]["weight_decay"] == 0.0 for name, p in named.items() if name not in decayed)


def test_head_learning_rate_alone_and_lora_prefixes(tmp_path):
    from hftl.methods import get_method
    from hftl.options.config import MethodArguments

    model, head = tiny_bert()
    method_args = MethodArguments(method="lora", lora_r=2)
    lora = get_method("lora")().prepare(model, head, method_args, "tiny")  # base_model.model.* names
    trainer = make_trainer(lora, head, tmp_path, layer_decay=DECAY, head_learning_rate=HEAD)
    groups = group_of(trainer.create_optimizer())
    trainable = {name: p for name, p in lora.named_parameters() if p.requires_grad}
    assert {id(p) for p in trainable.values()} == set(groups)  # frozen base weights stay out
    for name, parameter in trainable.items():
        if "modules_to_save" in name:
            assert groups[id(parameter)]["lr"] == HEAD, name
        else:  # LoRA matrices inside encoder layer i
            layer = int(re.search(r"encoder\.layer\.(\d+)\.", name)[1])
            assert math.isclose(groups[id(parameter)]["lr"], BASE * DECAY ** (2 - layer)), name

    model, head = tiny_bert()
    groups = group_of(make_trainer(model, head, tmp_path, head_learning_rate=HEAD).create_optimizer())
    for name, parameter in model.named_parameters():
        assert groups[id(parameter)]["lr"] == (HEAD if name.startswith("classifier.") else BASE), name


def test_a_model_without_a_stack_of_layers_is_refused_for_layer_decay():
    from torch import nn

    from hftl.techniques.param_groups import layer_map

    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ConfigError, match="--layer_decay .* need a stack of layers"):
        layer_map(mlp, ["2"], require_stack=True)
    assert layer_map(mlp, ["2"]).head == {"2.weight", "2.bias"}  # a head learning rate still works


# --- gradual unfreezing ---------------------------------------------------------------------------
# 48 training rows in batches of 4: 12 steps an epoch; an interval of 1/12 epoch is 1 step
UNFREEZE = dict(max_steps=5, unfreeze_interval=1 / 12, learning_rate=1e-2, weight_decay=0.1, seed=1,
                unfreeze_schedule="gradual", save_strategy="steps", save_steps=50)  # fmt: skip


class StepSnapshots(TrainerCallback):
    """Which parameters each optimizer step changed: step -> set of names."""

    def __init__(self):
        self.changed: dict[int, set[str]] = {}
        self.previous: dict[str, torch.Tensor] = {}

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.previous = {name: p.detach().clone() for name, p in model.named_parameters()}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.changed[state.global_step] = {
            name for name, p in model.named_parameters() if not torch.equal(self.previous[name], p.detach())
        }


def bert_stage(name: str, schedule: str) -> int:
    """Head 0; head-first: the rest 1; gradual: the top layer with the pooler 1, layer 0 2, embeddings 3."""
    if name.startswith("classifier."):
        return 0
    return 1 if schedule == "head-first" else max(1, bert_exponent(name))


def test_unfreezing_starts_each_layer_exactly_at_its_step_and_resumes_mid_schedule(
    tiny_options, tmp_path, monkeypatch
):
    snapshots = StepSnapshots()
    options = {**tiny_options, **UNFREEZE}
    reference = finetune(**{**options, "output_dir": str(tmp_path / "reference"), "callbacks": [snapshots]})
    unfreeze = next(
        cb for cb in reference.trainer.callback_handler.callbacks if isinstance(cb, GradualUnfreezing)
    )
    assert unfreeze.interval_steps == 1
    names = [name for name, _ in reference.trainer.model.named_parameters()]
    assert set(snapshots.changed) == set(range(1, 6))
    for step, changed in snapshots.changed.items():
        # update `step` follows step - 1 completed ones: stage s trains once step - 1 >= s (weight decay
        # included: a frozen parameter has no gradient, so AdamW skips it)
        expected = {name for name in names if bert_stage(name, "gradual") <= step - 1}
        assert changed == expected, f"step {step}: {sorted(changed ^ expected)[:4]}"
    assert all(p.requires_grad for p in reference.trainer.model.parameters())  # as method full left it

    monkeypatch.setenv("HFTL_FAULT", "step@2")  # SIGTERM after step 2: checkpoint-2, mid-schedule
    monkeypatch.setenv("HFTL_FAULT_SIGNAL", "TERM")
    with pytest.raises(TrainingStopped):
        finetune(**{**options, "output_dir": str(tmp_path / "resumed")})
    monkeypatch.delenv("HFTL_FAULT")
    resumed = finetune(
        **{**options, "output_dir": str(tmp_path / "resumed"), "resume_from_checkpoint": "auto"}
    )
    expected, actual = reference.trainer.model.state_dict(), resumed.trainer.model.state_dict()
    for key, tensor in expected.items():
        assert torch.equal(tensor, actual[key]), f"{key} differs after resuming mid-schedule"


@pytest.mark.parametrize("schedule", ["head-first", "gradual"])
@pytest.mark.parametrize("step", [0, 1, 2, 5, 6])
def test_the_frozen_set_follows_from_the_global_step_alone(tmp_path, schedule, step):
    """As after a resume: nothing but ``state.global_step`` (2 steps an epoch, interval 1 epoch)."""
    model, head = tiny_bert()
    callback = GradualUnfreezing(schedule, 1.0, head)
    args = HftlTrainingArguments(output_dir=str(tmp_path), eval_strategy="no")
    callback.on_train_begin(args, TrainerState(global_step=step, max_steps=100), None, model=model,
                            train_dataloader=range(2))  # fmt: skip
    training = {name for name, p in model.named_parameters() if p.requires_grad}
    assert training == {
        name for name, _ in model.named_parameters() if 2 * bert_stage(name, schedule) <= step
    }


def test_unfreezing_other_methods_is_refused_before_any_model_is_built(tiny_options, no_model_build):
    with pytest.raises(ConfigError, match="--unfreeze_schedule gradual works with --method full only"):
        finetune(**tiny_options, method="lora", unfreeze_schedule="gradual")


# --- LR finder ------------------------------------------------------------------------------------
# a few steps from 1e-7 to 1 see no descent on the tiny model; 15 from 1e-3 to 10 do (at 0.1)
FINDER = dict(find_lr=True, find_lr_steps=15, per_device_train_batch_size=16)


@pytest.fixture
def short_range(monkeypatch):
    from hftl.techniques import lr_finder

    monkeypatch.setattr(lr_finder, "START_LR", 1e-3)
    monkeypatch.setattr(lr_finder, "END_LR", 10.0)


class WeightsAtStart(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weights = {name: t.detach().clone() for name, t in model.state_dict().items()}


def test_find_lr_trains_with_its_suggestion_and_leaves_no_trace(tiny_options, tmp_path, short_range):
    tested, plain = WeightsAtStart(), WeightsAtStart()
    options = {**tiny_options, "max_steps": 1, "per_device_train_batch_size": 16}
    result = finetune(**{**options, **FINDER, "output_dir": str(tmp_path / "lr"), "callbacks": [tested]})
    report = json.loads((result.output_dir / "lr_finder.json").read_text())
    assert (result.output_dir / "lr_finder.png").stat().st_size > 0
    assert 2 <= len(report["losses"]) == len(report["lrs"]) <= 15
    assert report["lrs"] == sorted(report["lrs"]) and report["lrs"][0] == pytest.approx(1e-3)
    suggestion = report["suggestion"]
    assert report["lrs"][0] <= suggestion <= report["lrs"][-1]
    # no --learning_rate: the run trained with the suggestion
    assert result.trainer.args.learning_rate == suggestion
    assert result.trainer.optimizer.param_groups[0]["initial_lr"] == suggestion

    # the same run without the test, at that rate: the same start, bit for bit (weights, buffers and
    # RNG restored), and so the same end
    reference = finetune(
        **{
            **options,
            "learning_rate": suggestion,
            "output_dir": str(tmp_path / "plain"),
            "callbacks": [plain],
        }
    )
    for name, tensor in plain.weights.items():
        assert torch.equal(tensor, tested.weights[name]), name
    final, expected = result.trainer.model.state_dict(), reference.trainer.model.state_dict()
    assert all(torch.equal(final[name], expected[name]) for name in final)


def test_find_lr_keeps_an_explicit_rate_and_a_resumed_run_reuses_its_test(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from hftl.techniques import lr_finder

    runs = []
    monkeypatch.setattr(
        lr_finder, "find_learning_rate", lambda trainer, steps, out: runs.append(steps) or {"suggestion": 0.1}
    )
    trainer = SimpleNamespace(args=SimpleNamespace(learning_rate=1e-3, find_lr_steps=50))
    assert lr_finder.apply_lr_finder(trainer, tmp_path, learning_rate_given=True, resuming=False) == 0.1
    assert trainer.args.learning_rate == 1e-3 and runs == [50]  # tested, suggestion only printed
    assert lr_finder.apply_lr_finder(trainer, tmp_path, learning_rate_given=False, resuming=False) == 0.1
    assert trainer.args.learning_rate == 0.1
    (tmp_path / "lr_finder.json").write_text(json.dumps({"suggestion": 0.02}))
    trainer.args.learning_rate = 1e-3
    assert lr_finder.apply_lr_finder(trainer, tmp_path, learning_rate_given=False, resuming=True) == 0.02
    assert trainer.args.learning_rate == 0.02 and runs == [50, 50]  # the first run's test stands


def test_suggestion_is_the_steepest_descent_before_the_minimum_or_none():
    from hftl.techniques.lr_finder import suggest_learning_rate

    lrs = [10.0**e for e in range(-6, 1)]
    # steepest fall between 1e-4 and 1e-3; minimum at 1e-2; divergence after it
    assert suggest_learning_rate(lrs, [2.0, 1.98, 1.9, 1.0, 0.8, 0.9, 5.0]) == (1e-3, 1e-3)
    assert suggest_learning_rate(lrs, [2.0, 2.0, 2.01, 2.02, 2.2, 3.0, 9.0]) == (None, 1e-6)
