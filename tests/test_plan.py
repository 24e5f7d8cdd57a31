"""A run resolves its options into a frozen plan of its own: the caller's argument objects never change."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from hftl import DataArguments, HftlTrainingArguments, MethodArguments, ModelArguments, finetune
from hftl.plan import plan_run

from .conftest import TINY_TRAINING


def _values(arguments) -> dict:
    return copy.deepcopy({field.name: getattr(arguments, field.name) for field in dataclasses.fields(arguments)})


def test_a_run_leaves_the_callers_arguments_as_given(tiny_bert_dir, text_csv, tmp_path, monkeypatch):
    monkeypatch.setattr("hftl.hub.publish.hub_status", lambda: "reachable")
    arguments = (
        ModelArguments(model=tiny_bert_dir),
        DataArguments(dataset=str(text_csv)),  # max_length on auto
        MethodArguments(),  # the default method
        HftlTrainingArguments(  # learning rate and epochs on auto, a push (dry run) asked
            output_dir=str(tmp_path / "out"), push_to_hub=True, hub_model_id="me/tiny", push_dry_run=True,
            **TINY_TRAINING,
        ),
    )  # fmt: skip
    before = [_values(a) for a in arguments]
    result = finetune(*arguments)
    assert [_values(a) for a in arguments] == before
    assert arguments[3].learning_rate is None and arguments[3].push_to_hub and arguments[1].max_length is None
    used = result.trainer.args
    assert used is not arguments[3] and used.learning_rate is not None and not used.push_to_hub
    saved = yaml.safe_load((result.output_dir / "hftl_config.yaml").read_text())
    assert saved["learning_rate"] == used.learning_rate and saved["push_to_hub"] is True
    assert saved["max_length"] > 0


def test_the_plan_is_frozen_and_records_why_each_auto_setting_was_chosen(tiny_bert_dir, text_csv, tmp_path):
    plan = plan_run(
        ModelArguments(model=tiny_bert_dir),
        DataArguments(dataset=str(text_csv)),
        MethodArguments(),
        HftlTrainingArguments(output_dir=str(tmp_path / "out"), **TINY_TRAINING),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.output_dir = "elsewhere"
    chosen = {setting.option: setting for setting in plan.auto_settings}
    assert chosen["learning_rate"].value == plan.training_args.learning_rate == plan.method.default_learning_rate
    assert chosen["learning_rate"].reason == f"the {plan.method.name} default"
    assert chosen["max_length"].value == plan.max_length == plan.data_args.max_length
    assert plan.data.source.kind == "file" and str(plan.data.source) == f"file {text_csv}"
