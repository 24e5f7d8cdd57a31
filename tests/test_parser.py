"""One config flow: dataclass default < YAML < command line, and Python matches the CLI."""

from __future__ import annotations

import dataclasses

import pytest

from hftl import ConfigError, make_parser
from hftl.options._collect import collect_arguments


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


# --- option values: one table of ranges (hftl/options/checks.py) ---------------------------------


def numeric_fields() -> dict[str, type]:
    """Every int/float field of the four argument dataclasses -> int or float."""
    import typing

    from hftl.options.parser import ARGUMENT_CLASSES

    fields = {}
    for cls in ARGUMENT_CLASSES:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            members = typing.get_args(hints[field.name]) or (hints[field.name],)
            if field.init and float in members:
                fields[field.name] = float
            elif field.init and int in members:
                fields[field.name] = int
    return fields


def test_every_numeric_option_has_a_rule():
    from hftl.options.checks import OPTION_RULES

    fields = numeric_fields()
    assert len(fields) >= 50  # the stock TrainingArguments ones included
    assert sorted(set(fields) - set(OPTION_RULES)) == []  # a new numeric field needs a rule
    assert sorted(set(OPTION_RULES) - set(fields)) == []  # a rule for a field that no longer exists


@pytest.mark.parametrize("name", sorted(numeric_fields()))
def test_every_numeric_option_refuses_a_value_out_of_range(name):
    """The table is applied to every field, on the command line: NaN for float fields, -2 (below every
    int rule, -1 being some fields' "off") for int ones."""
    bad = "nan" if numeric_fields()[name] is float else "-2"
    with pytest.raises(ConfigError) as error:
        parse([f"--{name}", bad])
    line = str(error.value)
    assert line.startswith(f"--{name} must be ") and f"(got {bad})" in line, line
    assert "\n" not in line


def test_defaults_and_edges_of_the_ranges_are_accepted():
    _, data_args, method_args, training_args = parse(
        ["--warmup_steps", "0.1", "--logging_steps", "0.5", "--max_steps", "-1", "--seed", "0", "--layer_decay", "1",
         "--lora_dropout", "0", "--label_fraction", "1", "--dataloader_num_workers", "0", "--max_grad_norm", "0"]
    )  # fmt: skip
    assert (training_args.warmup_steps, training_args.logging_steps, training_args.layer_decay) == (
        0.1,
        0.5,
        1.0,
    )
    assert (training_args.seed, training_args.dataloader_num_workers, method_args.lora_dropout) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"per_device_train_batch_size": 0}, "--per_device_train_batch_size must be at least 1 (got 0)."),
        ({"learning_rate": float("nan")}, "--learning_rate must be a finite number (got nan)."),
        ({"seed": -1}, "--seed must be a whole number from 0 to 4294967295 (got -1)."),
        ({"lora_r": 2.5}, "--lora_r must be a whole number (got 2.5)."),
        ({"num_train_epochs": [1]}, "finetune(): num_train_epochs must be a number, not [1]."),
        ({"dataset": ["a.csv"]}, "finetune(): dataset must be a single value, not ['a.csv']."),
        (
            {"per_device_train_batch_size": True},
            "finetune(): per_device_train_batch_size must be a whole number",
        ),
    ],
)
def test_python_keywords_are_checked_like_flags(options, expected):
    with pytest.raises(ConfigError) as error:
        collect_arguments({"model": None, "data": None, "method": None, "training": None}, options)
    assert expected in str(error.value)


def test_python_keywords_in_text_are_converted_like_flags(tmp_path):
    import numpy as np

    _, data_args, method_args, training_args = collect_arguments(
        {"model": None, "data": None, "method": None, "training": None},
        {
            "learning_rate": "2e-5",
            "lora_r": "4",
            "seed": np.int64(3),
            "output_dir": tmp_path,
            "dataset": tmp_path,
        },
    )
    assert (training_args.learning_rate, method_args.lora_r, training_args.seed) == (2e-5, 4, 3)
    assert training_args.output_dir == data_args.dataset == str(tmp_path)  # a Path is welcome


def test_an_instance_changed_after_it_was_built_is_checked_again():
    from hftl import HftlTrainingArguments

    training_args = HftlTrainingArguments(output_dir="out")
    training_args.per_device_train_batch_size = 0  # __post_init__ has run already
    with pytest.raises(ConfigError, match="--per_device_train_batch_size must be at least 1"):
        collect_arguments({"model": None, "data": None, "method": None, "training": training_args}, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dataset: [a.csv, b.csv]\n", "run.yaml': dataset must be a single value, not ['a.csv', 'b.csv']."),
        ("dataset: {train: a.csv}\n", "run.yaml': dataset must be a single value"),
        ("- method: lora\n", "run.yaml' must be a mapping of option: value, one a line (got a list)."),
        (
            "learning_rate: fast\n",
            "run.yaml': learning_rate must be a number (write floats as 2.0e-5), not 'fast'.",
        ),
        ("num_train_epochs: [1]\n", "run.yaml': num_train_epochs must be a number, not [1]."),
        (
            "per_device_train_batch_size: 2.5\n",
            "--per_device_train_batch_size must be a whole number (got 2.5).",
        ),
        ("learning_rate: .inf\n", "--learning_rate must be a finite number (got inf)."),
        ("eval_strategy: no\n", "run.yaml': eval_strategy must be text, not False; quote the value"),
        ("fp16: [1]\n", "run.yaml': fp16 must be true or false, not [1]."),
        ("revision: 1.10\n", "run.yaml': revision must be text, not 1.1; quote the value"),
        ("seed: -3\n", "--seed must be a whole number from 0 to 4294967295 (got -3)."),
    ],
)
def test_yaml_values_of_the_wrong_shape_are_one_line(tmp_path, text, expected):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        parse(["--config", str(config)])
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_yaml_lists_where_lists_belong_and_quoted_text_still_work(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("text_column: [a, b]\nlora_target_modules: [query, value]\nreport_to: [none]\n"
                      "eval_strategy: 'no'\nlora_r: '16'\ndataset_config: 2019\n")  # fmt: skip
    _, data_args, method_args, training_args = parse(["--config", str(config)])
    assert data_args.text_columns == ["a", "b"] and method_args.lora_targets == ["query", "value"]
    assert (training_args.eval_strategy.value, method_args.lora_r, data_args.dataset_config) == (
        "no",
        16,
        "2019",
    )


def test_max_length_must_leave_room_for_text(tiny_bert_dir):
    from transformers import AutoTokenizer

    from hftl.options.checks import check_room_for_text

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)  # [CLS] a [SEP], [CLS] a [SEP] b [SEP]
    check_room_for_text(tokenizer, 3, ["text"])
    check_room_for_text(tokenizer, None, ["text"])  # auto: the model maximum
    with pytest.raises(
        ConfigError, match="--max_length 2 leaves no room for text: .* 2 special tokens .* at least 3"
    ):
        check_room_for_text(tokenizer, 2, ["text"])
    with pytest.raises(ConfigError, match="adds 3 special tokens to each example; give at least 4"):
        check_room_for_text(tokenizer, 3, ["premise", "hypothesis"])


def test_cli_prints_one_line_and_no_traceback(capsys):
    from hftl import run_cli

    def main(*arguments):
        raise AssertionError("main ran with a bad option")

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, make_parser(), ["--per_device_train_batch_size", "0"])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err == "hftl: error: --per_device_train_batch_size must be at least 1 (got 0).\n"
    )


def test_layer_decay_help_says_what_the_code_does():
    """Above the stack: --learning_rate; top layer: factor x it; embeddings: factor^(L+1) x it."""

    from hftl.techniques.param_groups import LayerMap

    help_text = next(a.help for a in make_parser()._actions if a.dest == "layer_decay")
    assert "above the layer stack (pooler, final norm) trains at --learning_rate" in help_text
    assert "the top layer at this factor times it" in help_text and "factor^(L+1)" in help_text
    layers = LayerMap(ids={"embeddings": 0, "layer.0": 1, "layer.1": 2, "pooler": 3}, num_layers=2)
    assert [layers.scale(name, 0.5) for name in layers.ids] == [0.125, 0.25, 0.5, 1.0]


def _doc_blocks(path, language):
    """The fenced ``language`` blocks of a docs page, as text."""
    blocks, current = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if current is None and line.strip() == f"```{language}":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _docs_option_examples():
    """Every option example of docs/techniques.md: the keyword options of each ``finetune(...)`` call,
    each YAML config block (and the alternatives its comments name: ``# or a list: [1, 1, 4]``), and
    each recipe command line."""
    import ast
    import re
    import shlex
    from pathlib import Path

    import yaml

    page = Path(__file__).resolve().parents[1] / "docs" / "techniques.md"
    examples = []
    for block in _doc_blocks(page, "python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "finetune":
                options = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
                examples.append(("python", options))
    for block in _doc_blocks(page, "yaml"):
        options = yaml.safe_load(block)
        if any(isinstance(value, dict) for value in options.values()):
            continue  # an --hp_space file, not a config
        examples.append(("yaml", options))
        for key, alternative in re.findall(r"^(\w+):.*#.*\bor a list: (\[[^\]]*\])", block, re.M):
            examples.append(("yaml", {**options, key: yaml.safe_load(alternative)}))
    for block in _doc_blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] in (["python", "recipes/text_cls.py"], ["python", "recipes/image_cls.py"]):
                if "--config" not in words:  # a file the example's earlier run writes
                    examples.append(("cli", words[2:]))
    return examples


@pytest.mark.parametrize(("kind", "options"), _docs_option_examples(), ids=lambda value: str(value)[:60])
def test_the_option_examples_of_docs_techniques_build_their_arguments(tmp_path, kind, options):
    """What the docs show must run; class_weights=[1, 1, 4] was refused as 'must be a single value'."""
    import yaml

    if kind == "cli":
        parse(options)
        return
    if kind == "yaml":
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(options))
        parse(["--config", str(config)])
        options = {"config": str(config)}
    collect_arguments({"model": None, "data": None, "method": None, "training": None}, dict(options))


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ([1, 1, 4], "1,1,4"),
        ((0.5, 2), "0.5,2"),
        (["1", "2.5"], "1,2.5"),
        ("1, 1, 4", "1,1,4"),
        ("Auto", "auto"),
    ],
)
def test_class_weights_take_a_list_of_numbers_from_python_and_yaml(tmp_path, given, saved):
    python = collect_arguments(
        {"model": None, "data": None, "method": None, "training": None}, {"class_weights": given}
    )
    assert python[3].class_weights == saved
    config = tmp_path / "run.yaml"
    config.write_text(f"class_weights: {list(given) if isinstance(given, tuple) else given}\n")
    assert parse(["--config", str(config)])[3].class_weights == saved


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([True, 2], "class_weights must be a single value (a mode, or a list of numbers), not [True, 2]."),
        ([[1], 2], "class_weights must be a single value (a mode, or a list of numbers), not [[1], 2]."),
        ([1, 0], "--class_weights must all be positive numbers"),
        ([1, "x"], "--class_weights must be none, auto, effective or a comma-separated list of numbers"),
        ({"a": 1}, "class_weights must be a single value (a mode, or a list of numbers)"),
    ],
)
def test_class_weights_lists_of_non_numbers_are_one_line(given, expected):
    with pytest.raises(ConfigError) as error:
        collect_arguments(
            {"model": None, "data": None, "method": None, "training": None}, {"class_weights": given}
        )
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_task_method_and_learning_rate_help_come_from_the_registries(monkeypatch):
    import hftl.methods._registry
    import hftl.tasks
    from hftl.methods import Method

    class Toy(Method):
        name, default_learning_rate, help = "toy-method", 3e-3, "a method registered by this test"

    monkeypatch.setitem(hftl.methods._registry._METHODS._entries, Toy.name, Toy)
    monkeypatch.setitem(hftl.tasks._TASKS._entries, "toy-task", object())
    helps = {action.dest: action.help for action in make_parser()._actions}
    assert "toy-task" in helps["task"] and "text-classification" in helps["task"]
    assert "toy-method (a method registered by this test)" in helps["method"]
    assert "lora 5e-4" in helps["learning_rate"] and "toy-method 3e-3" in helps["learning_rate"]
