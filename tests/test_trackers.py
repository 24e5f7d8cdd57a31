"""--report_to: the trackers get the run's options and its test metrics, read back from TensorBoard's event
files and trackio's local store (kept in tmp_path, no network); none writes nothing; bad values and
missing packages are one line before any compute."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml

from hftl import ConfigError, HftlTrainingArguments, finetune, make_parser, push
from hftl.options import checks
from hftl.run.output_dir import clear_earlier_run
from hftl.run.trackers import TrackerCallback

from .conftest import TINY_TRAINING, make_rows, write_csv

CANARY = "hf_CANARYcanaryCANARYcanary0123456789"
PROJECT = "hftl-tracker-test"
RUN_OPTIONS = {**TINY_TRAINING, "eval_strategy": "steps", "eval_steps": 1}


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "topics.csv", make_rows(60))


@pytest.fixture(scope="module")
def trackio_dir(tmp_path_factory):
    """trackio's store in a tmp folder (it reads TRACKIO_DIR when first imported), and no network."""
    folder = tmp_path_factory.mktemp("trackio")
    refused = []

    def connect(self, address):
        if self.family != socket.AF_UNIX:
            refused.append(address)
            raise OSError(f"test_trackers: no network ({address})")
        return real_connect(self, address)

    real_connect = socket.socket.connect
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRACKIO_DIR", str(folder))
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setattr(socket.socket, "connect", connect)
        for name, module in list(sys.modules.items()):  # already imported by an earlier test: point it here
            if name.startswith("trackio") and hasattr(module, "TRACKIO_DIR"):
                patch.setattr(module, "TRACKIO_DIR", folder)
        yield folder
    assert not refused, f"a tracker tried to reach {refused}"


@pytest.fixture(scope="module")
def tracked(tiny_bert_dir, data_csv, trackio_dir, tmp_path_factory):
    """One tiny run logging to TensorBoard and trackio, with a token that must not show anywhere."""
    out = tmp_path_factory.mktemp("tracked") / "out"
    result = finetune(
        model=tiny_bert_dir,
        dataset=str(data_csv),
        output_dir=str(out),
        report_to="tensorboard,trackio",
        project=PROJECT,
        push_to_hub=True,
        hub_model_id="me/tiny-tracked",
        push_dry_run=True,
        hub_token=CANARY,
        **RUN_OPTIONS,
    )
    return result


def _event_dir(output_dir: Path) -> Path:
    (folder,) = (output_dir / "runs").iterdir()  # Trainer's runs/<date>_<host>
    return folder


def _accumulator(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    return events


def test_tensorboard_events_hold_losses_evaluations_options_and_test_metrics(tracked, tiny_bert_dir):
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = _accumulator(_event_dir(tracked.output_dir))
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "eval/accuracy", "test/accuracy", "test/loss"} <= scalars
    assert len(events.Scalars("train/loss")) == 2  # logging_steps 1, two steps
    (test_accuracy,) = events.Scalars("test/accuracy")
    assert test_accuracy.value == pytest.approx(tracked.metrics["test_accuracy"])
    assert test_accuracy.step == 2  # at the run's last step
    (text,) = events.Tensors("hftl/config/text_summary")
    table = text.tensor_proto.string_val[0].decode()
    for row in (f"| hftl/model | {tiny_bert_dir} |", "| hftl/method | full |", "| hftl/max_steps | 2 |"):
        assert row in table
    assert "| hftl/dataset | " in table and "token" not in table
    # the HParams dashboard: the options against the test metrics
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["hftl/method"].string_value == "full"
    assert start.session_start_info.hparams["hftl/task"].string_value == "text-classification"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert "test/accuracy" in {info.name.tag for info in experiment.experiment.metric_infos}


def test_trackio_store_holds_the_options_and_the_test_metrics_in_one_run(tracked, trackio_dir, tiny_bert_dir):
    import trackio

    runs = list(trackio.Api().runs(PROJECT))
    assert len(runs) == 1, runs  # the test split is logged to the training run, not to a new one
    config = runs[0].config
    assert (config["hftl/model"], config["hftl/method"]) == (tiny_bert_dir, "full")
    assert config["hftl/task"] == "text-classification"
    assert config["hftl/dataset"].endswith("topics.csv") and config["hftl/max_steps"] == 2
    assert not any("token" in key for key in config if key.startswith("hftl/"))
    with sqlite3.connect(trackio_dir / f"{PROJECT}.db") as db:
        rows = [json.loads(metrics) for (metrics,) in db.execute("SELECT metrics FROM metrics ORDER BY step")]
    assert any("train/loss" in row for row in rows) and any("eval/accuracy" in row for row in rows)
    (test,) = [row for row in rows if "test/accuracy" in row]
    assert test["test/accuracy"] == pytest.approx(tracked.metrics["test_accuracy"])


def test_no_token_in_any_tracker_file(tracked, trackio_dir):
    for folder in (tracked.output_dir / "runs", trackio_dir):
        for path in folder.rglob("*"):
            assert not path.is_file() or CANARY.encode() not in path.read_bytes(), path


def test_event_files_are_the_runs_outputs_never_pushed(tracked, tmp_path):
    listed = json.loads((tracked.output_dir / "hftl_outputs.json").read_text())["files"]
    events = sorted(
        p.relative_to(tracked.output_dir).as_posix() for p in _event_dir(tracked.output_dir).iterdir()
    )
    assert events and set(events) <= set(listed)
    pushed = tracked.output_dir / "push_dry_run"
    assert (pushed / "README.md").is_file() and not (pushed / "runs").exists()
    # --overwrite_output_dir removes them with the rest of the earlier run (on a copy: the run is shared)
    copy = shutil.copytree(tracked.output_dir, tmp_path / "copy")
    clear_earlier_run(copy)
    assert not (copy / "runs").exists() and not (copy / "model.safetensors").exists()
    push(tracked.output_dir, "me/again", dry_run=True)  # a later push of the folder: still no event file
    assert not (pushed / "runs").exists()


def test_the_config_records_the_trackers_so_a_rerun_logs_to_them(tracked):
    config = tracked.output_dir / "hftl_config.yaml"
    assert yaml.safe_load(config.read_text())["report_to"] == ["tensorboard", "trackio"]
    assert make_parser().parse(["--config", str(config)])[3].report_to == ["tensorboard", "trackio"]


def test_report_to_none_is_the_default_everywhere_and_writes_nothing(
    tiny_bert_dir, data_csv, trackio_dir, tmp_path
):
    assert HftlTrainingArguments(output_dir="x").report_to == []
    assert make_parser().parse([])[3].report_to == []
    for given in ("none", ["none"], None, "NONE"):
        assert HftlTrainingArguments(output_dir="x", report_to=given).report_to == []
    store = sorted(trackio_dir.rglob("*"))
    result = finetune(
        model=tiny_bert_dir, dataset=str(data_csv), output_dir=str(tmp_path / "out"), **TINY_TRAINING
    )
    assert result.trainer.args.report_to == []
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    kinds = tuple(INTEGRATION_TO_CALLBACK.values())
    callbacks = result.trainer.callback_handler.callbacks
    assert not any(isinstance(c, (*kinds, TrackerCallback)) for c in callbacks)
    assert not (result.output_dir / "runs").exists() and sorted(trackio_dir.rglob("*")) == store
    assert "report_to" not in yaml.safe_load((result.output_dir / "hftl_config.yaml").read_text())
    assert not any(
        name.startswith("runs/")
        for name in json.loads((result.output_dir / "hftl_outputs.json").read_text())["files"]
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            "tensorbord",
            "--report_to tensorbord is not a tracker hftl logs to; give tensorboard, trackio, mlflow, wandb",
        ),
        ("all", "--report_to all would log to whichever trackers happen to be installed"),
        ("tensorboard,comet_ml", "--report_to comet_ml is not a tracker"),
    ],
)
def test_a_bad_value_is_one_line_before_any_compute(value, expected, tiny_options, no_model_build):
    with pytest.raises(ConfigError) as error:
        finetune(**{**tiny_options, "report_to": value})
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not Path(tiny_options["output_dir"]).exists()


def test_a_tracker_not_installed_says_what_to_install(monkeypatch, tiny_options, no_model_build):
    real = checks.importlib.util.find_spec
    monkeypatch.setattr(
        checks.importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a)
    )
    with pytest.raises(ConfigError) as error:
        finetune(**{**tiny_options, "report_to": ["tensorboard", "trackio"]})
    assert (
        str(error.value)
        == "--report_to trackio needs trackio, which is not installed: pip install 'hftl[trackers]'"
    )
    with pytest.raises(ConfigError, match="needs trackio"):
        make_parser().parse(["--report_to", "trackio"])
