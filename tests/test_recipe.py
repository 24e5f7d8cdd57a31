"""The text recipe end to end as a separate process, and its one-line errors.

The recipe runs in a process forked from a server that imported hftl (``_forked.py``): its stdout and
stderr come back as one log, so what the recipe prints is looked for in both."""

from __future__ import annotations

import json

from .conftest import REPO

RECIPE = REPO / "recipes" / "text_cls.py"


def test_recipe_trains_saves_and_prints_the_table(run_forked, tiny_bert_dir, text_csv, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: lora\nmax_steps: 2\nper_device_train_batch_size: 4\nlearning_rate: 1.0e-3\n")
    exit_code, output = run_forked(
        "--config",
        str(config),
        "--model",
        tiny_bert_dir,
        "--dataset",
        str(text_csv),
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        script=RECIPE,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert exit_code == 0, output[-2000:]
    assert "test_accuracy" in output and "trainable_params" in output
    runs = list((tmp_path / "outputs").iterdir())  # no --output_dir: a fresh timestamped folder
    assert len(runs) == 1 and runs[0].name.endswith("-lora")
    results = json.loads((runs[0] / "all_results.json").read_text())
    assert results["trainable_fraction"] < 0.05
    saved = (runs[0] / "hftl_config.yaml").read_text()
    assert "method: lora" in saved and "learning_rate: 0.001" in saved and "max_length: 64" in saved


def test_recipe_bad_input_is_one_line_without_traceback(run_forked, tmp_path):
    exit_code, output = run_forked(
        "--dataset",
        "nobody/missing",
        "--model",
        tmp_path,
        script=RECIPE,
        cwd=tmp_path,
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert exit_code == 2, output[-2000:]
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]  # the error is the last line written
    assert lines[-1].startswith("hftl: error: Model directory")
    assert not (tmp_path / "outputs").exists()


def test_recipe_help_documents_the_options(run_forked):
    exit_code, output = run_forked("--help", script=RECIPE)
    assert exit_code == 0, output[-2000:]
    for option in (
        "--method",
        "--lora_r",
        "--text_column",
        "--label_column",
        "--max_length",
        "--config",
        "--learning_rate",
        "--push_to_hub",
    ):
        assert option in output
