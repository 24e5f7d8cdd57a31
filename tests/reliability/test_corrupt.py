"""Corrupt checkpoints: a truncated, bit-flipped or deleted file is named in one line; auto-resume falls
back to the previous intact checkpoint, an explicit one is refused; nothing restarts silently with a
fresh optimizer, and no checkpoint file is ever unpickled beyond plain tensors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hftl import CheckpointError, finetune
from hftl.run.checkpoints import MANIFEST, check_checkpoint, resume_checkpoint, write_manifest

# 48 training rows in batches of 4, one epoch: 12 steps, a checkpoint every 4
OPTIONS = dict(
    num_train_epochs=1,
    per_device_train_batch_size=4,
    per_device_eval_batch_size=8,
    max_steps=-1,
    save_strategy="steps",
    save_steps=4,
    logging_steps=1,
    eval_strategy="no",
    seed=5,
)
STATE_FILES = ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"]


@pytest.fixture(scope="module")
def trained(tiny_bert_dir, tmp_path_factory):
    """A finished run with checkpoints 4, 8 and 12, and its options."""
    from ..conftest import make_rows, write_csv

    root = tmp_path_factory.mktemp("corrupt")
    csv = write_csv(root / "data" / "topics.csv", make_rows(60))
    options = {**OPTIONS, "model": tiny_bert_dir, "dataset": str(csv), "output_dir": str(root / "run")}
    result = finetune(**options)
    assert sorted(p.name for p in result.output_dir.glob("checkpoint-*")) == [
        "checkpoint-12",
        "checkpoint-4",
        "checkpoint-8",
    ]
    return options, result.output_dir


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    _, output = trained
    return Path(shutil.copytree(output, tmp_path / "run"))


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "bit-flipped":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(data)
    else:
        path.unlink()


@pytest.mark.parametrize(
    "name, how",
    [(name, how) for name in STATE_FILES for how in ("truncated", "bit-flipped")]
    + [("optimizer.pt", "deleted"), ("rng_state.pth", "deleted")],
)
def test_damaged_file_falls_back_to_the_previous_checkpoint_with_one_line(run_copy, name, how, capfd):
    damage(run_copy / "checkpoint-12" / name, how)
    assert resume_checkpoint("auto", str(run_copy), world_size=1, allow_changed=False) == str(
        run_copy / "checkpoint-8"
    )
    said = [line for line in capfd.readouterr().err.splitlines() if "checkpoint-12" in line]
    assert len(said) == 1 and name in said[0] and "falling back to the previous checkpoint" in said[0], said
    expected = {"truncated": "truncated", "bit-flipped": "checksum", "deleted": "missing"}[how]
    assert expected in said[0]
    with pytest.raises(CheckpointError, match=rf"{name}.*--resume_from_checkpoint auto") as error:
        resume_checkpoint(str(run_copy / "checkpoint-12"), str(run_copy), world_size=1, allow_changed=False)
    assert "\n" not in str(error.value)


def test_auto_resume_past_a_corrupt_checkpoint_reaches_the_same_weights(trained, run_copy):
    options, output = trained
    damage(run_copy / "checkpoint-12" / "optimizer.pt", "bit-flipped")
    resumed = finetune(**{**options, "output_dir": str(run_copy), "resume_from_checkpoint": "auto"})
    assert resumed.trainer.state.global_step == 12
    expected, actual = (
        load_file(str(output / "model.safetensors")),
        load_file(str(run_copy / "model.safetensors")),
    )
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


def test_no_intact_checkpoint_is_refused_rather_than_restarted(run_copy):
    for step in (4, 8, 12):
        damage(run_copy / f"checkpoint-{step}" / "scheduler.pt", "truncated")
    with pytest.raises(CheckpointError, match="No checkpoint in .* is intact"):
        resume_checkpoint("auto", str(run_copy), world_size=1, allow_changed=False)


def test_a_pickle_payload_in_a_checkpoint_is_never_run(
    trained, run_copy, tmp_path, no_model_build_after_first
):
    """Even with a manifest that vouches for it (written by whoever planted it)."""
    options, _ = trained
    canary = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (canary,))

    checkpoint = run_copy / "checkpoint-8"
    torch.save({"state": Payload(), "param_groups": []}, checkpoint / "optimizer.pt")
    write_manifest(checkpoint, world_size=1)
    with pytest.raises(CheckpointError, match="not plain tensors and was not loaded") as error:
        finetune(**{**options, "output_dir": str(run_copy), "resume_from_checkpoint": str(checkpoint)})
    assert "\n" not in str(error.value) and not canary.exists()


def test_plain_trainer_checkpoint_without_optimizer_is_refused(run_copy, capfd):
    checkpoint = run_copy / "checkpoint-8"
    (checkpoint / MANIFEST).unlink()
    check_checkpoint(checkpoint, world_size=1, allow_changed=False)  # complete, just unverifiable
    assert "its files can't be verified" in capfd.readouterr().err
    (checkpoint / "optimizer.pt").unlink()
    with pytest.raises(
        CheckpointError, match="has no optimizer.pt, so training would restart it from scratch"
    ):
        check_checkpoint(checkpoint, world_size=1, allow_changed=False)


def test_a_different_process_count_is_refused_unless_allowed(run_copy):
    checkpoint = run_copy / "checkpoint-12"
    manifest = json.loads((checkpoint / MANIFEST).read_text())
    (checkpoint / MANIFEST).write_text(json.dumps({**manifest, "world_size": 2}))
    with pytest.raises(CheckpointError, match=r"written by 2 process\(es\) and this run has 1"):
        check_checkpoint(checkpoint, world_size=1, allow_changed=False)
    check_checkpoint(checkpoint, world_size=1, allow_changed=True)


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (links not followed)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_rotation_and_cleanup_never_delete_through_a_symlinked_checkpoint(trained, run_copy, tmp_path, capfd):
    """checkpoint-4 is a link to a complete checkpoint elsewhere and checkpoint-16 one to an incomplete
    folder elsewhere: auto-resume skips both, and neither the cleanup of incomplete checkpoints nor the
    rotation (--save_total_limit 1) deletes or unmarks anything through them."""
    options, _ = trained
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(run_copy / "checkpoint-4", elsewhere / "checkpoint-4")
    (run_copy / "checkpoint-4").symlink_to(elsewhere / "checkpoint-4", target_is_directory=True)
    (elsewhere / "partial").mkdir()
    (elsewhere / "partial" / "optimizer.pt").write_bytes(b"not a checkpoint of this run")
    (run_copy / "checkpoint-16").symlink_to(elsewhere / "partial", target_is_directory=True)
    outside = tree(elsewhere)
    damage(run_copy / "checkpoint-12" / "optimizer.pt", "bit-flipped")
    resumed = finetune(
        **{**options, "output_dir": str(run_copy), "resume_from_checkpoint": "auto", "save_total_limit": 1}
    )
    assert resumed.trainer.state.global_step == 12
    err = capfd.readouterr().err
    assert "skipping checkpoint-16: a symbolic link" in err and "resuming from " + str(run_copy / "checkpoint-8") in err
    assert tree(elsewhere) == outside  # bit for bit, manifests included
    assert (run_copy / "checkpoint-4").is_symlink() and (run_copy / "checkpoint-16").is_symlink()
    assert not (run_copy / "checkpoint-8").exists() and (run_copy / "checkpoint-12" / MANIFEST).is_file()


def test_each_checkpoint_carries_its_run_identity_under_its_manifest(run_copy):
    """A resume checks the identity of the checkpoint itself; a copy edited afterwards is caught."""
    checkpoint = run_copy / "checkpoint-8"
    manifest = json.loads((checkpoint / MANIFEST).read_text())
    assert "hftl_run.json" in manifest["files"]
    identity = json.loads((checkpoint / "hftl_run.json").read_text())
    assert identity == json.loads((run_copy / "hftl_run.json").read_text()) and identity["method"] == "full"
    (checkpoint / "hftl_run.json").write_text(json.dumps({**identity, "model": "other/model"}))
    with pytest.raises(CheckpointError, match="unusable: hftl_run.json has .* bytes, .* were written"):
        check_checkpoint(checkpoint, world_size=1, allow_changed=False)
