"""--hp_search optuna: each trial is a finetune() run of its own; the tables, the best config, failures."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

import hftl.search.trials
from hftl import ConfigError, FinetuneResult, HftlTrainingArguments, TrainingStopped, finetune, make_parser
from hftl.trainer import NonFiniteLossError

from .conftest import TINY_TRAINING, TOPICS

needs_optuna = pytest.mark.skipif(
    importlib.util.find_spec("optuna") is None, reason="pip install 'hftl[search]'"
)


@pytest.fixture(scope="module")
def small_vocab_bert(tmp_path_factory) -> str:
    """A tiny BERT whose tokenizer knows only the test topics' words: hashing the tokenizer for the
    datasets cache and the embeddings stay small, so a real trial takes seconds."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("small-vocab-bert")
    words = sorted(
        {word for text in TOPICS.values() for word in text.split()} | set("the a of and in on for".split())
    )
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    BertTokenizerFast(vocab={token: index for index, token in enumerate(tokens)}).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return str(folder)


def read_trials(search_dir: Path) -> list[dict]:
    with open(search_dir / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@needs_optuna
def test_lora_search_writes_tables_and_a_best_config_that_reruns(tiny_options, small_vocab_bert, text_csv):
    tiny_options = {**tiny_options, "model": small_vocab_bert}
    out = Path(tiny_options["output_dir"])
    result = finetune(method="lora", hp_search="optuna", n_trials=2, **tiny_options)

    search = out / "hp_search"
    assert result.search_dir == search
    rows = read_trials(search)
    assert [row["trial"] for row in rows] == ["0", "1"] and {row["state"] for row in rows} == {"COMPLETE"}
    # trial 0 is the configuration as given: lora's default learning rate, the batch size, the LoRA options
    assert float(rows[0]["learning_rate"]) == 5e-4 and rows[0]["per_device_train_batch_size"] == "4"
    assert (rows[0]["lora_r"], rows[0]["lora_alpha"], rows[0]["lora_dropout"]) == ("8", "16", "0.1")
    assert rows[1]["learning_rate"] != rows[0]["learning_rate"]
    assert "num_train_epochs" not in rows[0]  # --max_steps fixes the run length
    # every trial trained with its own options in its own folder
    for row in rows:
        trial_dir = out / "trials" / f"trial-{row['trial']}"
        assert row["output_dir"] == str(trial_dir) and (trial_dir / "adapter").is_dir()
        saved = yaml.safe_load((trial_dir / "hftl_config.yaml").read_text())
        assert saved["learning_rate"] == pytest.approx(float(row["learning_rate"]))
        assert saved["lora_r"] == int(row["lora_r"]) and saved.get("hp_search") is None
    # the best by validation accuracy is returned from its trial folder, not retrained
    best = max(rows, key=lambda row: float(row["eval_accuracy"]))
    assert result.output_dir == out / "trials" / f"trial-{best['trial']}"
    assert result.metrics["eval_accuracy"] == pytest.approx(float(best["eval_accuracy"]))
    table = (search / "trials.md").read_text().splitlines()
    assert len(table) == 4 and "**best**" in table[2 + int(best["trial"])]
    # the kept trainer still works after being parked between trials
    assert result.trainer.evaluate()["eval_accuracy"] == pytest.approx(result.metrics["eval_accuracy"])

    # best_config.yaml passes the strict parser and holds the best trial's options
    model_args, data_args, method_args, training_args = make_parser().parse(
        ["--config", str(search / "best_config.yaml")]
    )
    assert training_args.learning_rate == pytest.approx(float(best["learning_rate"]))
    assert training_args.per_device_train_batch_size == int(best["per_device_train_batch_size"])
    assert (method_args.method, method_args.lora_r, method_args.lora_alpha) == (
        "lora",
        int(best["lora_r"]),
        int(best["lora_alpha"]),
    )
    assert method_args.lora_dropout == pytest.approx(float(best["lora_dropout"]))
    assert training_args.hp_search is None and training_args.output_dir is None
    assert training_args.max_steps == 2 and data_args.dataset == str(text_csv)
    assert model_args.model == tiny_options["model"]


def test_missing_optuna_is_one_line_before_any_model(tiny_options, monkeypatch, no_model_build):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(ConfigError) as error:
        finetune(hp_search="optuna", **tiny_options)
    assert "pip install 'hftl[search]'" in str(error.value) and "\n" not in str(error.value)
    assert not Path(tiny_options["output_dir"]).exists()


def test_hp_space_needs_hp_search(tiny_options, no_model_build, tmp_path):
    with pytest.raises(ConfigError, match="--hp_space .* add --hp_search optuna"):
        finetune(hp_space=str(tmp_path / "space.yaml"), **tiny_options)


class FakeFinetune:
    """Stands in for each trial's finetune(): records the options, returns metrics made from them."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.fail_trials, self.error = (), RuntimeError("boom")

    def __call__(self, model_args, data_args, method_args, training_args, callbacks=None):
        self.calls.append((model_args, data_args, method_args, training_args))
        if len(self.calls) - 1 in self.fail_trials:
            raise self.error
        lr = training_args.learning_rate
        trainer = SimpleNamespace(
            accelerator=SimpleNamespace(free_memory=lambda: None),
            create_accelerator_and_postprocess=lambda: None,
            model=torch.nn.Linear(1, 1),
            args=SimpleNamespace(device=torch.device("cpu")),
            is_world_process_zero=lambda: True,
        )
        metrics = {"eval_accuracy": lr * 1000, "eval_loss": lr * 100}
        return FinetuneResult(
            metrics=metrics, output_dir=Path(training_args.output_dir), trainer=trainer, labels=None
        )


@pytest.fixture
def fake_finetune(monkeypatch):
    pytest.importorskip("optuna")
    fake = FakeFinetune()
    monkeypatch.setattr(
        hftl.search.trials, "run_finetuning", fake
    )  # what the search calls per trial; finetune() here is real
    return fake


def test_failed_trials_are_recorded_and_the_search_goes_on(tiny_options, fake_finetune):
    fake_finetune.fail_trials = (1,)
    result = finetune(method="lora", hp_search="optuna", n_trials=3, **tiny_options)
    rows = read_trials(result.search_dir)
    assert [row["state"] for row in rows] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert rows[1]["error"] == "RuntimeError: boom" and rows[1]["eval_accuracy"] == ""
    assert "fail: RuntimeError: boom" in (result.search_dir / "trials.md").read_text()
    assert "Traceback" in (result.search_dir / "logs" / "trial-1.log").read_text()
    best = max(
        (row for row in rows if row["state"] == "COMPLETE"), key=lambda row: float(row["learning_rate"])
    )
    assert result.output_dir.name == f"trial-{best['trial']}"
    # each trial: a plain finetune() (no search) into its own folder, quiet
    for number, (*_, training_args) in enumerate(fake_finetune.calls):
        assert training_args.hp_search is None and training_args.output_dir.endswith(f"trials/trial-{number}")
        assert training_args.disable_tqdm and not training_args.push_to_hub


def test_a_nan_loss_fails_only_its_trial(tiny_options, fake_finetune):
    fake_finetune.fail_trials = (0,)
    fake_finetune.error = NonFiniteLossError(
        "The training loss became nan at step 3; nothing was saved. Lower it."
    )
    result = finetune(hp_search="optuna", n_trials=2, **tiny_options)
    rows = read_trials(result.search_dir)
    assert [row["state"] for row in rows] == ["FAIL", "COMPLETE"] and result.output_dir.name == "trial-1"
    assert rows[0]["error"] == "The training loss became nan at step 3"


def test_a_stop_signal_stops_the_search(tiny_options, fake_finetune):
    fake_finetune.fail_trials = (1,)
    fake_finetune.error = TrainingStopped(
        "SIGINT stopped training at step 3 of 9; continue with ...", signal_number=2
    )
    with pytest.raises(
        TrainingStopped, match="SIGINT stopped training at step 3 of 9 in trial 1 of the search"
    ) as stop:
        finetune(hp_search="optuna", n_trials=3, **tiny_options)
    assert stop.value.exit_status == 130 and len(fake_finetune.calls) == 2
    assert len(read_trials(Path(tiny_options["output_dir"]) / "hp_search")) == 1


def test_a_config_error_in_a_trial_stops_the_search_at_once(tiny_options, fake_finetune):
    fake_finetune.fail_trials, fake_finetune.error = (
        (0,),
        ConfigError("--text_column 'body' is not a column."),
    )
    with pytest.raises(ConfigError, match="body"):
        finetune(hp_search="optuna", n_trials=3, **tiny_options)
    assert len(fake_finetune.calls) == 1
    fake_finetune.fail_trials = ()  # the corrected command may reuse the folder: no trial finished there
    assert finetune(hp_search="optuna", n_trials=1, **tiny_options).output_dir.name == "trial-0"


def test_full_search_space_is_seeded_and_reproducible(tiny_options, fake_finetune, tmp_path):
    options = {**tiny_options, "max_steps": -1, "num_train_epochs": 2, "learning_rate": 1e-4}
    first = finetune(method="full", hp_search="optuna", n_trials=6, **options)
    options["output_dir"] = str(tmp_path / "again")
    second = finetune(method="full", hp_search="optuna", n_trials=6, **options)
    rows = read_trials(first.search_dir)
    params = lambda rows: [{k: v for k, v in r.items() if k not in ("runtime_s", "output_dir")} for r in rows]  # noqa: E731
    assert params(rows) == params(read_trials(second.search_dir))
    assert set(rows[0]) >= {"learning_rate", "per_device_train_batch_size", "num_train_epochs", "layer_decay"}
    assert float(rows[0]["learning_rate"]) == 1e-4 and rows[0]["num_train_epochs"] == "2"
    assert all(1e-5 <= float(row["learning_rate"]) <= 1e-3 for row in rows)
    assert all(1 <= int(row["num_train_epochs"]) <= 4 for row in rows)
    # the trials ran with the options in the table
    for row, (*_, training_args) in zip(rows, fake_finetune.calls, strict=False):
        assert training_args.learning_rate == pytest.approx(float(row["learning_rate"]))
        assert training_args.unfreeze_schedule == (row.get("unfreeze_schedule") or "none")
        assert str(training_args.layer_decay or "") == row["layer_decay"]
    # head-first is only tried where there is an epoch left to unfreeze in
    assert all(row["unfreeze_schedule"] == "" for row in rows if row["num_train_epochs"] == "1")
    best = rows[int(first.output_dir.name.removeprefix("trial-"))]
    _, _, method_args, training_args = make_parser().parse(
        ["--config", str(first.search_dir / "best_config.yaml")]
    )
    assert method_args.method == "full" and training_args.num_train_epochs == int(best["num_train_epochs"])
    assert training_args.layer_decay == (float(best["layer_decay"]) if best["layer_decay"] else None)


def test_a_searched_value_the_model_refuses_says_how_to_skip_it(tiny_options, fake_finetune):
    fake_finetune.fail_trials = (1,)
    fake_finetune.error = ConfigError("--layer_decay and --unfreeze_schedule gradual need a stack of layers.")
    with pytest.raises(ConfigError, match=r"trial 1 tried layer_decay=.*'layer_decay: null'"):
        finetune(method="full", hp_search="optuna", n_trials=3, **tiny_options)


def test_metric_for_best_model_must_be_a_validation_metric(tiny_options, fake_finetune):
    with pytest.raises(
        ConfigError, match="--metric_for_best_model eval_f1 is not .* loss, accuracy, macro_f1"
    ):
        finetune(hp_search="optuna", metric_for_best_model="eval_f1", **tiny_options)
    assert not fake_finetune.calls


def test_loss_objective_is_minimised(tiny_options, fake_finetune):
    result = finetune(hp_search="optuna", n_trials=3, metric_for_best_model="loss", **tiny_options)
    rows = read_trials(result.search_dir)
    assert "eval_loss" in rows[0]
    best = min(rows, key=lambda row: float(row["eval_loss"]))
    assert result.output_dir.name == f"trial-{best['trial']}"


def test_hp_space_file_replaces_dimensions(tiny_options, fake_finetune, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "lora_r: [2, 4]\nlearning_rate: {low: 1.0e-4, high: 2.0e-4, log: true}\nlora_dropout: null\n"
    )
    result = finetune(method="lora", hp_search="optuna", n_trials=3, hp_space=str(space), **tiny_options)
    rows = read_trials(result.search_dir)
    assert all(row["lora_r"] in ("2", "4") and 1e-4 <= float(row["learning_rate"]) <= 2e-4 for row in rows)
    assert "lora_dropout" not in rows[0]
    assert all(call[2].lora_dropout == 0.1 for call in fake_finetune.calls)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lora_rnk: [4, 8]\n", "Unknown option 'lora_rnk'.*Did you mean 'lora_r'"),
        ("lora_r: [0, 8]\n", "--lora_r must be a positive rank"),
        ("output_dir: [a, b]\n", "'output_dir' can't be searched"),
        ("lora_dropout: {low: 0.3, high: 0.1}\n", "lora_dropout needs low < high"),
        (
            "learning_rate: null\nper_device_train_batch_size: null\nlora_r: null\nlora_alpha: null\nlora_dropout: null\n",
            "leaves nothing to search",
        ),
    ],
)
def test_bad_hp_space_is_refused_before_any_trial(tiny_options, fake_finetune, tmp_path, text, message):
    space = tmp_path / "space.yaml"
    space.write_text(text)
    with pytest.raises(ConfigError, match=message):
        finetune(method="lora", hp_search="optuna", hp_space=str(space), **tiny_options)
    assert not fake_finetune.calls


def test_an_existing_search_is_not_overwritten(tiny_options, fake_finetune):
    finetune(hp_search="optuna", n_trials=1, **tiny_options)
    with pytest.raises(ConfigError, match="already holds a hyperparameter search"):
        finetune(hp_search="optuna", n_trials=1, **tiny_options)
    finetune(hp_search="optuna", n_trials=1, overwrite_output_dir=True, **tiny_options)
    assert len(fake_finetune.calls) == 2


def test_a_search_leaves_the_callers_arguments_as_given(tiny_bert_dir, text_csv, fake_finetune, tmp_path, monkeypatch):
    """No --output_dir: the search's root is a fresh outputs/<timestamp>-<method>-search folder, chosen
    without writing it into the caller's training arguments (nor anything else)."""
    monkeypatch.chdir(tmp_path)
    training_args = HftlTrainingArguments(output_dir=None, hp_search="optuna", n_trials=2, **TINY_TRAINING)
    before = {field.name: getattr(training_args, field.name) for field in dataclasses.fields(training_args)}
    result = finetune(model=tiny_bert_dir, dataset=str(text_csv), training_args=training_args)
    after = {field.name: getattr(training_args, field.name) for field in dataclasses.fields(training_args)}
    assert after == before and training_args.output_dir is None
    assert result.search_dir.resolve().parent.parent == (tmp_path / "outputs").resolve()
