"""Reliability guards: a resume that would continue a different run, and a non-finite training loss."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from hftl import ConfigError, finetune
from hftl.run.checkpoints import MANIFEST
from hftl.run.identity import RUN_FILE
from hftl.trainer import NonFiniteLossError

from ..conftest import make_rows, write_csv


def test_resume_refuses_a_changed_method_or_label_set(tiny_options, tmp_path, no_model_build_after_first):
    finetune(**{**tiny_options, "save_strategy": "steps", "save_steps": 1})
    output = Path(tiny_options["output_dir"])
    assert (output / "checkpoint-2").is_dir() and json.loads((output / RUN_FILE).read_text())[
        "method"
    ] == "full"
    no_model_build_after_first()
    with pytest.raises(ConfigError, match=r"would continue a different run \(method full -> lora\)") as error:
        finetune(**{**tiny_options, "method": "lora", "resume_from_checkpoint": "auto"})
    assert "\n" not in str(error.value) and "--allow_changed_resume" in str(error.value)
    rows = [{**row, "label": row["label"].replace("tech", "science")} for row in make_rows(60)]
    other = write_csv(tmp_path / "other" / "topics.csv", rows)
    with pytest.raises(ConfigError, match=r"labels politics, sport, tech -> politics, science, sport"):
        finetune(**{**tiny_options, "dataset": str(other), "resume_from_checkpoint": "auto"})


def test_allow_changed_resume_skips_the_check(tiny_options, tmp_path):
    """Other rows of the same size and labels: refused, then with the switch training goes on from the
    checkpoint's step with the checkpoint's optimizer state (not a restart)."""
    options = {**tiny_options, "max_steps": 4, "save_strategy": "steps", "save_steps": 2}
    finetune(**options)
    checkpoint = Path(options["output_dir"]) / "checkpoint-2"
    saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)["state"]
    other = write_csv(tmp_path / "other" / "topics.csv", make_rows(60, seed=1))
    changed = {**options, "dataset": str(other), "resume_from_checkpoint": str(checkpoint)}
    with pytest.raises(ConfigError, match=r"would continue a different run \(train_data_sha256 "):
        finetune(**changed)

    class AtStart(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            self.step = state.global_step
            self.state = {
                key: {name: value.clone() for name, value in entry.items() if torch.is_tensor(value)}
                for key, entry in optimizer.state_dict()["state"].items()
            }

    start = AtStart()
    result = finetune(callbacks=[start], **{**changed, "allow_changed_resume": True})
    assert start.step == 2 and result.trainer.state.global_step == 4
    assert [entry["step"] for entry in result.trainer.state.log_history if "loss" in entry] == [1, 2, 3, 4]
    assert start.state.keys() == saved.keys() and saved  # Adam's moments, as the checkpoint holds them
    for key, entry in saved.items():
        for name, value in entry.items():
            assert torch.equal(start.state[key][name], value), (key, name)


def test_non_finite_loss_stops_within_one_step_and_saves_nothing(tiny_options):
    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 1:
                with torch.no_grad():
                    model.classifier.weight.fill_(float("nan"))

    with pytest.raises(
        NonFiniteLossError, match=r"The training loss became nan at step 2 .*nothing was saved"
    ) as error:
        finetune(
            callbacks=[Poison()],
            **{**tiny_options, "max_steps": 4, "save_strategy": "steps", "save_steps": 2},
        )
    assert "\n" not in str(error.value)
    output = Path(tiny_options["output_dir"])
    assert not (output / "model.safetensors").exists() and not (output / "checkpoint-2").exists()


def test_same_seed_reproduces_weights_and_metrics_and_another_seed_changes_the_head(tiny_options, tmp_path):
    """Twice in one process (where the global RNG has moved on): the seed is applied before the head is built."""
    from safetensors.torch import load_file

    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = finetune(**{**tiny_options, "output_dir": str(tmp_path / name), "seed": seed})
        runs[name] = (load_file(str(result.output_dir / "model.safetensors")), result.metrics["test_loss"])
    (first, first_loss), (second, second_loss), (third, _) = runs["a"], runs["b"], runs["c"]
    assert first_loss == second_loss
    for key, tensor in first.items():
        assert torch.equal(tensor, second[key]), key
    assert not torch.equal(first["classifier.weight"], third["classifier.weight"])


@pytest.fixture(scope="module")
def checkpointed(tiny_bert_dir, tmp_path_factory) -> tuple[dict, Path]:
    """A 2-step run of the tiny model with a checkpoint at step 2, and its options."""
    from ..conftest import TINY_TRAINING

    root = tmp_path_factory.mktemp("identity")
    csv = write_csv(root / "data" / "topics.csv", make_rows(60))
    options = {**TINY_TRAINING, "model": tiny_bert_dir, "dataset": str(csv), "save_strategy": "steps", "save_steps": 2}
    finetune(**{**options, "output_dir": str(root / "run")})
    assert "hftl_run.json" in json.loads((root / "run" / "checkpoint-2" / MANIFEST).read_text())["files"]
    return options, root / "run" / "checkpoint-2"


def wider_bert(folder: Path, tokenizer_from: str) -> str:
    """Another backbone (48 wide instead of 32): its weights would not fit the checkpoint's."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(vocab_size=30522, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(folder)
    return str(folder)


def tiny_images(root: Path) -> dict:
    from PIL import Image
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64)  # fmt: skip
    ViTModel(config).save_pretrained(root / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 50, 210)}
    for index in range(30):
        name = list(colours)[index % 3]
        (root / "photos" / name).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), colours[name]).save(root / "photos" / name / f"{index}.png")
    return {"task": "image-classification", "model": str(root / "vit"), "dataset": str(root / "photos")}


def changed_options(field: str, options: dict, tmp_path: Path) -> dict:
    """finetune() options that change only ``field`` of the run identity (and what follows from it)."""
    if field == "model":
        return {"model": wider_bert(tmp_path / "wider", options["model"])}
    if field == "task":
        return tiny_images(tmp_path)
    if field == "method":
        return {"method": "lora"}
    if field == "labels":
        rows = [{**row, "label": row["label"].replace("tech", "science")} for row in make_rows(60)]
        return {"dataset": str(write_csv(tmp_path / "relabelled.csv", rows))}
    if field == "train_rows":
        return {"max_train_samples": 40}
    return {"dataset": str(write_csv(tmp_path / "other.csv", make_rows(60, seed=1)))}  # same size and labels


@pytest.mark.parametrize("field", ["model", "task", "method", "labels", "train_rows", "train_data_sha256"])
def test_each_part_of_the_run_identity_is_checked_on_resume(field, checkpointed, tmp_path, no_model_build):
    """The identity comes from what finetune() was given and is read from the checkpoint itself: each
    resume goes into a fresh --output_dir, which holds no hftl_run.json."""
    options, checkpoint = checkpointed
    resume = {**options, "resume_from_checkpoint": str(checkpoint)}
    with pytest.raises(ConfigError, match=rf"would continue a different run \((.*; )?{field} ") as error:
        finetune(**{**resume, **changed_options(field, options, tmp_path), "output_dir": str(tmp_path / "fresh")})
    assert "\n" not in str(error.value)
    assert not (tmp_path / "fresh").exists()
    with pytest.raises(AssertionError, match="a model was built"):  # the same options pass the check
        finetune(**{**resume, "output_dir": str(tmp_path / "same")})


def test_non_finite_weights_are_never_saved(tiny_options):
    """A weight poisoned after the last step (so no later loss shows it) is caught at the save."""

    class PoisonLast(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == state.max_steps:
                with torch.no_grad():
                    model.classifier.bias[0] = float("inf")

    with pytest.raises(
        NonFiniteLossError, match=r"classifier.bias holds NaN or infinite values at step 2"
    ) as error:
        finetune(callbacks=[PoisonLast()], **{**tiny_options, "save_strategy": "steps", "save_steps": 1})
    assert "\n" not in str(error.value)
    output = Path(tiny_options["output_dir"])
    assert (output / "checkpoint-1").is_dir() and not (output / "checkpoint-2").exists()
    assert not (output / "model.safetensors").exists()


def test_overwrite_output_dir_replaces_only_the_earlier_run(tiny_options):
    """A LoRA run with checkpoints, then a full run over it: the user's file by a name a run writes stops
    it (nothing touched); without that file only what the earlier run wrote goes, the user's notes stay
    and the folder holds exactly the new run. The same without hftl_outputs.json (as an older hftl, or a
    crash before the list, left the folder): hftl_run.json tells the folder is hftl's."""
    out = Path(tiny_options["output_dir"])
    finetune(**{**tiny_options, "method": "lora", "save_strategy": "steps", "save_steps": 1})
    assert (out / "adapter").is_dir() and (out / "checkpoint-2").is_dir()
    (out / "my_plot.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("mine")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"holds files hftl did not write \(my_plot.png\), which a run would"):
        finetune(**{**tiny_options, "overwrite_output_dir": True})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    (out / "my_plot.png").unlink()
    with pytest.raises(ConfigError, match="already holds a finished run"):
        finetune(**tiny_options)
    for listed_by in ("hftl_outputs.json", "nothing"):
        finetune(**{**tiny_options, "overwrite_output_dir": True})
        listed = json.loads((out / "hftl_outputs.json").read_text())["files"]
        left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert left == {*listed, "hftl_run.json", "hftl_outputs.json", "notes.txt"}, listed_by
        assert (out / "notes.txt").read_text() == "mine"
        assert not (out / "adapter").exists() and not list(out.glob("checkpoint-*"))
        assert json.loads((out / RUN_FILE).read_text())["method"] == "full"
        (out / "hftl_outputs.json").unlink()


def test_a_run_that_failed_before_its_first_checkpoint_reruns(tiny_options, monkeypatch):
    """Out of memory at step 1 (or bad data, or Ctrl-C with save_strategy no) leaves only hftl_run.json:
    rerunning the same command starts afresh instead of being refused as an interrupted run."""
    from hftl.trainer import HftlTrainer

    out = Path(tiny_options["output_dir"])
    train = HftlTrainer.train

    def out_of_memory(self, *args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(HftlTrainer, "train", out_of_memory)
    with pytest.raises(RuntimeError, match="out of memory"):
        finetune(**tiny_options)
    assert sorted(path.name for path in out.iterdir()) == [RUN_FILE]
    monkeypatch.setattr(HftlTrainer, "train", train)
    result = finetune(**tiny_options)
    assert result.trainer.state.global_step == 2 and (out / "model.safetensors").is_file()


def test_process_0_alone_decides_on_the_output_folder(tmp_path, monkeypatch):
    """With several processes, only process 0 looks at the folder, before any process writes, and every
    process takes its verdict: a slow process 1 that would see what process 0 wrote since (its
    hftl_run.json, the finished run it then leaves) decides the same as process 0."""
    from types import SimpleNamespace

    import accelerate
    import accelerate.utils

    from hftl.run.output_dir import prepare_output_dir

    sent, waits = [], []

    def broadcast(objects):  # process 0's objects reach every process
        sent.append(list(objects))
        return list(sent[0])

    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast)
    monkeypatch.setattr(accelerate, "PartialState", lambda: SimpleNamespace(wait_for_everyone=lambda: waits.append(1)))
    out = tmp_path / "out"

    def on(rank: int) -> str:
        arguments = SimpleNamespace(output_dir=str(out), overwrite_output_dir=False, world_size=2, process_index=rank)
        return prepare_output_dir(arguments, "full", resuming=False, resume_asked=False)

    assert on(0) == str(out) and sent == [[None]]  # nothing there yet: no refusal
    out.mkdir()
    (out / RUN_FILE).write_text("{}")
    (out / "all_results.json").write_text("{}")  # would stop process 1 on its own
    assert on(1) == str(out) and sent[1] == [None] and len(waits) == 2
    sent.clear()
    with pytest.raises(ConfigError, match="already holds a finished run") as refused:
        on(0)
    shutil.rmtree(out)  # process 1 sees a clean folder, yet stops with process 0's line
    with pytest.raises(ConfigError) as also_refused:
        on(1)
    assert str(also_refused.value) == str(refused.value)


def test_a_plain_checkpoint_of_another_model_is_one_line(checkpointed, tmp_path, capfd):
    """No manifest and no hftl_run.json (as plain Trainer writes it): the identity can't be checked, so
    the weights' shapes are what tells: one line instead of torch's size-mismatch traceback."""
    from hftl import CheckpointError

    options, checkpoint = checkpointed
    plain = Path(shutil.copytree(checkpoint, tmp_path / "plain" / "checkpoint-2"))
    (plain / MANIFEST).unlink()
    (plain / RUN_FILE).unlink()
    wider = wider_bert(tmp_path / "wider", options["model"])
    with pytest.raises(CheckpointError, match="holds weights of other shapes than .*wider builds") as error:
        finetune(**{**options, "model": wider, "resume_from_checkpoint": str(plain), "output_dir": str(tmp_path / "o")})
    assert "\n" not in str(error.value) and error.value.__suppress_context__
    assert "checkpoint-2 records no hftl_run.json: the run that wrote it can't be checked" in capfd.readouterr().err
