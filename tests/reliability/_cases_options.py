"""Bad-input cases: see test_bad_inputs.py, which runs them.

Option values: one case per (option, bad value) that stock ``TrainingArguments`` lets through to the
model build (hftl's table of ranges is ``hftl/options/checks.py``), then YAML configs of the wrong shape.
"""

from __future__ import annotations

from hftl import ConfigError

from ._battery import Case, Env

# (option, bad value, the error line's fragment): each refused before any model is built
NUMERIC = [
    ("per_device_train_batch_size", 0, "--per_device_train_batch_size must be at least 1 (got 0)."),
    ("per_device_train_batch_size", 2.5, "--per_device_train_batch_size must be a whole number (got 2.5)."),
    ("gradient_accumulation_steps", 0, "--gradient_accumulation_steps must be at least 1 (got 0)."),
    ("learning_rate", float("nan"), "--learning_rate must be a finite number (got nan)."),
    ("learning_rate", float("inf"), "--learning_rate must be a finite number (got inf)."),
    ("learning_rate", 0, "--learning_rate must be positive (got 0), or left unset."),
    ("num_train_epochs", 0, "--num_train_epochs must be positive (got 0), or left unset."),
    ("warmup_steps", -10, "--warmup_steps must be a whole number of steps >= 0, or a fraction of the run in [0, 1)"),
    ("weight_decay", -0.01, "--weight_decay must be 0 or more (got -0.01)."),
    ("max_grad_norm", float("nan"), "--max_grad_norm must be a finite number (got nan)."),
    ("seed", -1, "--seed must be a whole number from 0 to 4294967295 (got -1)."),
    ("logging_steps", 2.5, "--logging_steps must be a whole number of steps >= 1, or a fraction of the run"),
    ("save_total_limit", 0, "--save_total_limit must be at least 1 (got 0), or left unset to keep every checkpoint."),
    ("dataloader_num_workers", -1, "--dataloader_num_workers must be at least 0 (got -1), or left unset."),
    ("max_length", 0, "--max_length must be a positive number of tokens, at least 1 (got 0), or left unset."),
    ("image_size", 0, "--image_size must be a positive number of pixels, at least 1 (got 0), or left unset."),
    ("lora_dropout", 1.0, "--lora_dropout must be a probability in [0, 1) (got 1.0)."),
    ("distill_temperature", 0, "--distill_temperature must be positive (got 0)."),
    ("layer_decay", 1.5, "--layer_decay must be in (0, 1], e.g. 0.75 (got 1.5), or left unset."),
    ("early_stopping_patience", 0, "--early_stopping_patience must be at least 1 evaluation (got 0), or left unset."),
]


def _numeric_case(option: str, value, message: str) -> Case:
    label = str(value).replace("-", "minus").replace(".", "-")  # nan, inf, 0, 2-5, minus1
    return Case(
        f"option-{option.replace('_', '-')}-{label}",
        f"--{option} {value}",
        "Refused, naming the allowed range.",
        lambda env, option=option, value=value: {option: value},
        ConfigError,
        message,
    )


def yaml_config(text: str):
    """``make`` for a case: the YAML ``text`` as ``--config``."""

    def make(env: Env) -> dict:
        path = env.tmp / "run.yaml"
        path.write_text(text)
        return {"config": str(path)}

    return make


OPTION_CASES: list[Case] = [
    *(_numeric_case(*row) for row in NUMERIC),
    Case(
        "option-max-length-below-special-tokens", "--max_length 2 (the tokenizer adds [CLS] and [SEP])",
        "Refused after loading the tokenizer: give at least 3.",
        lambda env: {"max_length": 2},
        ConfigError, "--max_length 2 leaves no room for text: the tokenizer adds 2 special tokens to each example; give at least 3",
    ),
    Case(
        "option-python-wrong-type", "finetune(learning_rate='fast')", "Refused: learning_rate must be a number.",
        lambda env: {"learning_rate": "fast"},
        ConfigError, "finetune(): learning_rate must be a number (write floats as 2.0e-5), not 'fast'.",
    ),
    Case(
        "yaml-dataset-list", "YAML dataset: [a.csv, b.csv]", "Refused, naming the file and the key.",
        yaml_config("dataset: [a.csv, b.csv]\n"),
        ConfigError, "run.yaml': dataset must be a single value, not ['a.csv', 'b.csv'].",
    ),
    Case(
        "yaml-dataset-mapping", "YAML dataset: {train: a.csv}", "Refused, naming the file and the key.",
        yaml_config("dataset: {train: a.csv}\n"),
        ConfigError, "run.yaml': dataset must be a single value, not {'train': 'a.csv'}.",
    ),
    Case(
        "yaml-top-level-list", "a YAML config that is a list", "Refused: a config is a mapping of option: value.",
        yaml_config("- method: lora\n- lora_r: 4\n"),
        ConfigError, "run.yaml' must be a mapping of option: value, one a line (got a list).",
    ),
    Case(
        "yaml-learning-rate-word", "YAML learning_rate: fast", "Refused, naming the file and the key.",
        yaml_config("learning_rate: fast\n"),
        ConfigError, "run.yaml': learning_rate must be a number (write floats as 2.0e-5), not 'fast'.",
    ),
    Case(
        "yaml-epochs-list", "YAML num_train_epochs: [1]", "Refused, naming the file and the key.",
        yaml_config("num_train_epochs: [1]\n"),
        ConfigError, "run.yaml': num_train_epochs must be a number, not [1].",
    ),
    Case(
        "yaml-bool-for-text", "YAML eval_strategy: no (read by YAML as false)", "Refused: quote the value.",
        yaml_config("eval_strategy: no\n"),
        ConfigError, "run.yaml': eval_strategy must be text, not False; quote the value",
    ),
    Case(
        "yaml-nan", "YAML learning_rate: .nan", "Refused, naming the allowed range.",
        yaml_config("learning_rate: .nan\n"),
        ConfigError, "--learning_rate must be a finite number (got nan).",
    ),
    Case(
        "yaml-unknown-key", "YAML key learning_rte", "Refused, suggesting learning_rate.",
        yaml_config("learning_rte: 1.0e-4\n"),
        ConfigError, "Unknown key 'learning_rte' in config file",
    ),
    Case(
        "yaml-invalid-syntax", "a YAML config with an unclosed bracket", "Refused with the line number.",
        yaml_config("method: lora\nlora_r: [4\n"),
        ConfigError, "run.yaml' is not valid YAML (line 3); fix the syntax.",
    ),
    Case(
        "yaml-not-utf8", "a Latin-1 YAML config", "Refused with the line and byte, and an iconv command.",
        lambda env: {"config": str(env.csv("run.yaml", "method: lora\ndataset: caf\xe9.csv\n".encode("latin-1")))},
        ConfigError, "run.yaml' is not UTF-8 text (byte 0xe9 on line 2); save it as UTF-8 (iconv -f latin1",
    ),
    Case(
        "yaml-config-is-a-folder", "--config naming a folder", "Refused: pass the path of a YAML file.",
        lambda env: {"config": str(env.tmp)},
        ConfigError, "is a folder; pass the path of a YAML file to --config.",
    ),
    Case(
        "yaml-missing-file", "--config naming no file", "Refused: pass the path of a YAML file.",
        lambda env: {"config": str(env.tmp / "missing.yaml")},
        ConfigError, "missing.yaml' does not exist; pass the path of a YAML file to --config.",
    ),
]  # fmt: skip
