"""One config flow: dataclass default < YAML < command line, and Python matches the CLI."""

from __future__ import annotations

import dataclasses

import pytest

from hftl import ConfigError, make_parser
from hftl._arguments import collect_arguments


def parse(args):
    return make_parser().parse(args)


def test_defaults_run_the_demo():
    model_args, data_args, method_args, training_args = parse([])
    assert model_args.model is None and data_args.dataset is None  # the task's demo, chosen at run time
    from hftl.tasks import get_task

    assert get_task(model_args.task).demo_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert get_task("image-classification").demo_dataset == "mnist"
    assert method_args.method == "full"
    assert training_args.learning_rate is None and training_args.num_train_epochs is None  # auto
    assert training_args.output_dir is None  # a fresh timestamped folder at run time


def test_yaml_overrides_defaults_and_cli_overrides_yaml(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: lora\nlora_r: 4\nlearning_rate: 2.0e-5\nmax_length: 32\nnum_train_epochs: 2\n")
    _, data_args, method_args, training_args = parse(["--config", str(config), "--lora_r", "16"])
    assert method_args.method == "lora"  # YAML beats the default
    assert method_args.lora_r == 16  # CLI beats YAML
    assert training_args.learning_rate == 2e-5
    assert data_args.max_length == 32
    assert training_args.num_train_epochs == 2


def test_yaml_float_written_without_a_dot_is_still_a_float(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 2e-5\n")  # PyYAML reads this as a string
    assert parse(["--config", str(config)])[3].learning_rate == 2e-5


def test_python_and_cli_build_the_same_arguments(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: linear-probe\nmax_length: 48\n")
    cli = parse(
        [
            "--config",
            str(config),
            "--dataset",
            "x.csv",
            "--text_column",
            "a,b",
            "--seed",
            "7",
            "--output_dir",
            "out",
        ]
    )
    python = collect_arguments(
        {"model": None, "data": None, "method": None, "training": None},
        {
            "config": str(config),
            "dataset": "x.csv",
            "text_column": ["a", "b"],
            "seed": 7,
            "output_dir": "out",
        },
    )
    for from_cli, from_python in zip(cli, python, strict=True):
        assert from_cli.__class__ is from_python.__class__
        if dataclasses.is_dataclass(from_cli) and hasattr(from_cli, "to_dict"):
            assert from_cli.to_dict() == from_python.to_dict()
        else:
            assert from_cli == from_python


def test_keyword_options_override_a_given_dataclass():
    from hftl import MethodArguments

    _, _, method_args, _ = collect_arguments(
        {"model": None, "data": None, "method": MethodArguments(method="lora", lora_r=4), "training": None},
        {"lora_alpha": 32},
    )
    assert (method_args.method, method_args.lora_r, method_args.lora_alpha) == ("lora", 4, 32)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--lerning_rate", "1e-3"],
            "Unrecognised argument '--lerning_rate'. Did you mean '--learning_rate'?",
        ),
        (["--lora_r", "many"], "invalid int value: 'many'"),
        (["--validation_split_size", "1.5"], "--validation_split_size must be a fraction between 0 and 1"),
        (["--lora_r", "0"], "--lora_r must be a positive rank"),
        (["--learning_rate", "-1"], "--learning_rate must be positive"),
        (["--config", "missing.yaml"], "Config file 'missing.yaml' does not exist"),
    ],
)
def test_bad_options_are_one_line(args, expected):
    with pytest.raises(ConfigError) as error:
        parse(args)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_yaml_key_is_named(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("methd: lora\n")
    with pytest.raises(ConfigError, match="Unknown key 'methd' .* Did you mean 'method'"):
        parse(["--config", str(config)])


def test_invalid_yaml_is_one_line(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: [lora\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse(["--config", str(config)])


def test_unknown_python_keyword_is_named():
    with pytest.raises(ConfigError, match="unknown option 'lerning_rate'. Did you mean 'learning_rate'"):
        collect_arguments(
            {"model": None, "data": None, "method": None, "training": None}, {"lerning_rate": 1}
        )


def test_text_column_repeats_and_replaces_the_yaml_value(tmp_path):
    assert parse(["--text_column", "premise", "--text_column", "hypothesis"])[1].text_columns == [
        "premise",
        "hypothesis",
    ]
    assert parse(["--text_column", "premise", "hypothesis"])[1].text_columns == ["premise", "hypothesis"]
    config = tmp_path / "run.yaml"
    config.write_text("text_column: [a, b]\n")
    assert parse(["--config", str(config)])[1].text_columns == ["a", "b"]
    assert parse(["--config", str(config), "--text_column", "c"])[1].text_columns == ["c"]


def test_python_config_gets_the_cli_type_conversion(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 2e-5\nnum_train_epochs: 2\n")  # a string for PyYAML
    python = collect_arguments(
        {"model": None, "data": None, "method": None, "training": None}, {"config": str(config), "seed": 3}
    )
    assert python[3].learning_rate == 2e-5 and python[3].num_train_epochs == 2 and python[3].seed == 3


def test_sampling_strategy_typo_is_refused():
    with pytest.raises(ConfigError, match="invalid choice: 'group_by_lenght'"):
        parse(["--train_sampling_strategy", "group_by_lenght"])
