"""Bad-input cases: see test_bad_inputs.py, which runs them.

Output folders, checkpoints and resume: a folder holding the user's own files or an interrupted run, an
empty ``--output_dir``, checkpoints whose manifest is of the wrong shape or names files outside the
checkpoint, symbolic links where checkpoints belong, and a checkpoint another run wrote. Checkpoints are
written by hand here (a few bytes per file and a real manifest): none of these cases trains.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hftl import CheckpointError, ConfigError
from hftl._resume import RUN_FILE
from hftl.checkpoints import MANIFEST, write_manifest

from ._battery import Case, Env

STATE_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")


def checkpoint(env: Env, where: str = "run", step: int = 4, run: dict | None = None) -> Path:
    """A complete-looking ``<where>/checkpoint-<step>`` with its manifest (and ``run`` as its identity)."""
    folder = env.tmp / where / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in STATE_FILES:
        (folder / name).write_text(f"{name} of step {step}")
    if run is not None:
        (folder / RUN_FILE).write_text(json.dumps(run))
    write_manifest(folder, world_size=1)
    return folder


def edited_manifest(env: Env, edit) -> dict:
    """Resume from a checkpoint whose manifest ``edit(manifest, folder)`` rewrote (valid JSON)."""
    folder = checkpoint(env)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps(edit(manifest, folder)))
    return {"resume_from_checkpoint": str(folder)}


def listing(text: str = "x") -> dict:
    """A manifest entry for a file holding ``text``."""
    return {"bytes": len(text.encode()), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def outside_file(env: Env) -> Path:
    path = env.tmp / "elsewhere" / "secret.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def escaping(env: Env, absolute: bool) -> dict:
    target = outside_file(env)

    def edit(manifest, folder):
        name = str(target) if absolute else "../../elsewhere/secret.txt"
        manifest["files"][name] = listing()
        return manifest

    return edited_manifest(env, edit)


def linked_file(env: Env) -> dict:
    """A checkpoint file that is a link to a file outside, listed with the outside file's checksum."""
    target = outside_file(env)
    folder = checkpoint(env)
    (folder / "extra.json").symlink_to(target)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["extra.json"] = listing()
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return {"resume_from_checkpoint": str(folder)}


def user_files(env: Env, overwrite: bool = False) -> dict:
    out = env.tmp / "out"
    out.mkdir()
    (out / "README.md").write_text("# my notes on this model\n")
    (out / "config.json").write_text('{"mine": true}\n')
    (out / "notes.txt").write_text("do not lose\n")
    return {"overwrite_output_dir": True} if overwrite else {}


def linked_user_file(env: Env) -> dict:
    out = env.tmp / "out"
    out.mkdir()
    (out / "README.md").symlink_to(outside_file(env))
    return {}


def interrupted(env: Env, checkpoints: bool = True, **options) -> dict:
    out = env.tmp / "out"
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"method": "full"}))
    if checkpoints:
        checkpoint(env, "out", 4, run={"method": "full"})
        checkpoint(env, "out", 8, run={"method": "full"})
    return options


_MADE: dict = {}  # what the last make() wrote, for its case's check


def overwritten(env: Env) -> dict:
    _MADE["out"] = env.tmp / "out"
    return interrupted(env, overwrite_output_dir=True)


def earlier_run_removed(seen: dict, log: str) -> None:
    out = _MADE["out"]
    assert out.is_dir() and not list(out.glob("checkpoint-*")), "the earlier run's checkpoints were kept"


def linked_checkpoint(env: Env) -> dict:
    """``out/checkpoint-8`` is a link to another run's complete checkpoint; resume auto."""
    target = checkpoint(env, "other-run", 8, run={"method": "full"})
    out = env.tmp / "out"
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"method": "full"}))
    (out / "checkpoint-8").symlink_to(target, target_is_directory=True)
    _MADE["target"] = target
    return {"resume_from_checkpoint": "auto"}


def link_kept(seen: dict, log: str) -> None:
    target = _MADE["target"]
    assert (target / MANIFEST).is_file() and (target.parent.parent / "out" / "checkpoint-8").is_symlink()
    assert "no checkpoint in" in log and "starting from the beginning" in log


def foreign(env: Env) -> dict:
    folder = checkpoint(env, "other-run", 4, run={"model": "other/model", "method": "full"})
    return {"resume_from_checkpoint": str(folder)}


def unreadable_identity(env: Env) -> dict:
    folder = env.tmp / "run" / "checkpoint-4"
    checkpoint(env)
    (folder / RUN_FILE).write_text("[1, 2]")
    write_manifest(folder, world_size=1)  # vouched for: only its content is wrong
    return {"resume_from_checkpoint": str(folder)}


def unverified_identity(env: Env) -> dict:
    return {"resume_from_checkpoint": str(checkpoint(env))}


OUTPUT_CASES: list[Case] = [
    Case(
        "output-dir-user-files", "--output_dir holding the user's own README.md, config.json and notes", "Refused, naming the files: a run would overwrite them.",
        user_files,
        ConfigError, "holds files hftl did not write (README.md, config.json, notes.txt), which a run would overwrite",
    ),
    Case(
        "output-dir-user-files-overwrite", "the same with --overwrite_output_dir", "Refused as well: --overwrite_output_dir deletes only an earlier hftl run.",
        lambda env: user_files(env, overwrite=True),
        ConfigError, "holds files hftl did not write (README.md, config.json, notes.txt)",
    ),
    Case(
        "output-dir-user-link", "--output_dir holding a symbolic link to a file elsewhere", "Refused like a user file; the link is never followed.",
        linked_user_file,
        ConfigError, "holds files hftl did not write (README.md)",
    ),
    Case(
        "output-dir-legacy-run-overwrite", "--overwrite_output_dir on a finished run without hftl_outputs.json (older hftl)", "Refused: without the list its files can't be told from the user's.",
        lambda env: (env.tmp.joinpath("out").mkdir(), env.tmp.joinpath("out", "all_results.json").write_text("{}"), {"overwrite_output_dir": True})[2],
        ConfigError, "holds files hftl did not write (all_results.json)",
    ),
    Case(
        "output-dir-interrupted-run", "a fresh run in an interrupted run's folder (checkpoints, hftl_run.json)", "Refused, pointing to --resume_from_checkpoint auto or --overwrite_output_dir.",
        interrupted,
        ConfigError, "holds an interrupted run (checkpoint-8): a fresh start would overwrite its checkpoints. Continue it with --resume_from_checkpoint auto, or pass --overwrite_output_dir",
    ),
    Case(
        "output-dir-interrupted-before-a-checkpoint", "a fresh run in a folder whose run stopped before its first checkpoint", "Refused the same way.",
        lambda env: interrupted(env, checkpoints=False),
        ConfigError, "holds an interrupted run (hftl_run.json)",
    ),
    Case(
        "output-dir-interrupted-overwrite", "--overwrite_output_dir on an interrupted run's folder", "Its checkpoints and hftl_run.json are deleted at the start of training, with a line.",
        overwritten,
        None, "--overwrite_output_dir: removed the earlier run's",
        check=earlier_run_removed,
    ),
    Case(
        "output-dir-empty-string", "--output_dir ''", "Refused: never the current folder.",
        lambda env: {"output_dir": ""},
        ConfigError, "--output_dir is empty; name a folder, or leave the option out",
    ),
    Case(
        "checkpoint-symlinked-auto", "a checkpoint-N in --output_dir that is a link to another folder, resume auto", "Skipped with a line; never resumed from or deleted through.",
        linked_checkpoint,
        None, "skipping checkpoint-8: a symbolic link, which hftl never resumes from or deletes",
        check=link_kept,
    ),
    Case(
        "manifest-not-a-table", "a checkpoint manifest that is JSON but a list", "Refused in one line.",
        lambda env: edited_manifest(env, lambda manifest, folder: [1, 2]),
        CheckpointError, "is not an hftl manifest (no files table)",
    ),
    Case(
        "manifest-entry-without-checksum", "a manifest entry without size and checksum", "Refused in one line.",
        lambda env: edited_manifest(env, lambda manifest, folder: {**manifest, "files": {**manifest["files"], "optimizer.pt": "ok"}}),
        CheckpointError, "has no size and checksum for optimizer.pt",
    ),
    Case(
        "manifest-lists-no-files", "a manifest listing no files, optimizer.pt deleted", "Refused: the optimizer would silently restart.",
        lambda env: edited_manifest(env, lambda manifest, folder: ((folder / "optimizer.pt").unlink(), {**manifest, "files": {}})[1]),
        CheckpointError, "its manifest does not list trainer_state.json, so training would restart it from scratch",
    ),
    Case(
        "manifest-path-escape", "a manifest naming ../../elsewhere/secret.txt", "Refused: names outside the checkpoint are never read.",
        lambda env: escaping(env, absolute=False),
        CheckpointError, "its manifest names '../../elsewhere/secret.txt', outside the folder or behind a link",
    ),
    Case(
        "manifest-absolute-path", "a manifest naming an absolute path", "Refused the same way.",
        lambda env: escaping(env, absolute=True),
        CheckpointError, "elsewhere/secret.txt', outside the folder or behind a link",
    ),
    Case(
        "manifest-names-a-link", "a checkpoint file that is a link to a file outside, listed with its checksum", "Refused: never read through a link.",
        linked_file,
        CheckpointError, "its manifest names 'extra.json', outside the folder or behind a link",
    ),
    Case(
        "checkpoint-of-another-run", "--resume_from_checkpoint naming another model's checkpoint, fresh --output_dir", "Refused by the identity stored in the checkpoint itself.",
        foreign,
        ConfigError, "would continue a different run (model other/model -> ",
    ),
    Case(
        "checkpoint-identity-unreadable", "a checkpoint whose hftl_run.json is not a mapping", "Refused in one line.",
        unreadable_identity,
        CheckpointError, "is unreadable, so the run that wrote checkpoint-4 can't be checked",
    ),
    Case(
        "checkpoint-without-identity", "a checkpoint with no hftl_run.json (older hftl), fresh --output_dir", "Resumed, with a line saying its run can't be checked.",
        unverified_identity,
        None, "checkpoint-4 records no hftl_run.json: the run that wrote it can't be checked",
    ),
]  # fmt: skip
