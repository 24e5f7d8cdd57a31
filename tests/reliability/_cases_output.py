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
from hftl.run.checkpoints import MANIFEST, write_manifest
from hftl.run.identity import RUN_FILE
from hftl.run.run_files import CONFIG_HEADER

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
    (out / "hftl_config.yaml").write_text("# my own options\nlr: 1\n")  # not hftl's header: no hftl output
    (out / "notes.txt").write_text("do not lose\n")  # no name a run writes: not in the way
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


def earlier_outputs(env: Env, marker: str, names: tuple[str, ...]) -> dict:
    """``out`` holding an earlier run's files without hftl_outputs.json (an older hftl, or a run cut short
    before it listed its files), ``marker`` telling it is hftl's, beside the user's own files and desktop
    and tool clutter; --overwrite_output_dir."""
    out = env.tmp / "out"
    (out / "adapter").mkdir(parents=True)
    for name in names:
        (out / name).write_text(f"{name} of the earlier run")
    if marker == RUN_FILE:
        (out / RUN_FILE).write_text(json.dumps({"method": "full"}))
    elif marker == "hftl_config.yaml":
        (out / marker).write_text(f"{CONFIG_HEADER}method: full\n")
    else:
        (out / marker).write_text("{}")
    _MADE["out"], _MADE["gone"], _MADE["kept"] = out, [marker, *names], others(out)
    return {"overwrite_output_dir": True}


def others(out: Path, in_adapter: bool = True) -> dict[str, bytes]:
    """Write files of the user's and of tools (no name a run writes) into ``out``; what they hold."""
    files = {
        "notes.txt": "do not lose\n",
        ".DS_Store": "finder",
        "Thumbs.db": "thumbs",
        "desktop.ini": "[.ShellClassInfo]",
        "wandb/run-1/files/config.yaml": "lr: 1\n",
        "runs/Dec01/events.out.tfevents.1": "events",
        ".ipynb_checkpoints/README-checkpoint.md": "# notebook copy\n",
        **({"adapter/my_notes.txt": "mine\n"} if in_adapter else {}),
    }
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return {name: text.encode() for name, text in files.items()}


def cluttered(env: Env) -> dict:
    out = env.tmp / "out"
    out.mkdir()
    _MADE["out"], _MADE["gone"], _MADE["kept"] = out, [], others(out, in_adapter=False)
    return {}


def only_earlier_files_removed(seen: dict, log: str) -> None:
    """The earlier run's files went (hftl_run.json is the new run's); every other file is as it was."""
    out = _MADE["out"]
    left = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {name: left.get(name) for name in _MADE["kept"]} == _MADE["kept"], "a file of the user's changed"
    assert not [name for name in _MADE["gone"] if name in left and name != RUN_FILE], "an earlier file was kept"
    if RUN_FILE in _MADE["gone"]:
        assert json.loads(left[RUN_FILE])["model"], "the earlier run's hftl_run.json was not replaced"


def linked_checkpoint(env: Env) -> dict:
    """``out/checkpoint-8`` is a link to another run's complete checkpoint; resume auto."""
    target = checkpoint(env, "other-run", 8, run={"method": "full"})
    out = env.tmp / "out"
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"method": "full"}))
    (out / "checkpoint-8").symlink_to(target, target_is_directory=True)
    return {"resume_from_checkpoint": "auto"}


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


# what an earlier run wrote, by the names a run writes them (and one in adapter/)
EARLIER_FILES = ("README.md", "config.json", "model.safetensors", "tokenizer.json", "training_curves.png", "adapter/adapter_config.json")

OUTPUT_CASES: list[Case] = [
    Case(
        "output-dir-user-files", "--output_dir holding the user's own README.md, config.json and notes", "Refused, naming the files: a run would overwrite them.",
        user_files,
        ConfigError, "holds files hftl did not write (README.md, config.json, hftl_config.yaml), which a run would overwrite",
    ),
    Case(
        "output-dir-user-files-overwrite", "the same with --overwrite_output_dir", "Refused as well: --overwrite_output_dir deletes only an earlier hftl run.",
        lambda env: user_files(env, overwrite=True),
        ConfigError, "holds files hftl did not write (README.md, config.json, hftl_config.yaml), which a run would overwrite",
    ),
    Case(
        "output-dir-user-files-resume-auto", "the same with --resume_from_checkpoint auto and no checkpoint yet (as requeue scripts pass it)", "Refused as well: with nothing to resume it is a fresh start.",
        lambda env: {**user_files(env), "resume_from_checkpoint": "auto"},
        ConfigError, "holds files hftl did not write (README.md, config.json, hftl_config.yaml), which a run would overwrite",
    ),
    Case(
        "output-dir-other-files", "--output_dir holding the user's notes, desktop files (.DS_Store, Thumbs.db) and tool folders (wandb/, runs/, .ipynb_checkpoints/)", "Runs: a run writes no file of those names; they stay as they are (never deleted nor pushed), with a line.",
        cluttered,
        None, "also holds .ipynb_checkpoints/, notes.txt, runs/ and 1 more: left as they are beside the run",
        check=only_earlier_files_removed,
    ),
    Case(
        "output-dir-user-link", "--output_dir holding a symbolic link to a file elsewhere", "Refused like a user file; the link is never followed.",
        linked_user_file,
        ConfigError, "holds files hftl did not write (README.md)",
    ),
    Case(
        "output-dir-legacy-run-overwrite", "--overwrite_output_dir on a finished run without hftl_outputs.json (older hftl; all_results.json), beside the user's and tools' files", "Its files of the names a run writes are deleted at the start of training, with a line; the other files stay.",
        lambda env: earlier_outputs(env, "all_results.json", EARLIER_FILES),
        None, "--overwrite_output_dir: removed the earlier run's 7 files",
        check=only_earlier_files_removed,
    ),
    Case(
        "output-dir-cut-short-run-overwrite", "--overwrite_output_dir on a run cut short between saving the model and listing its files (hftl_run.json, no all_results.json)", "The same.",
        lambda env: earlier_outputs(env, RUN_FILE, EARLIER_FILES),
        None, "--overwrite_output_dir: removed the earlier run's 7 files",
        check=only_earlier_files_removed,
    ),
    Case(
        "output-dir-hftl-config-overwrite", "--overwrite_output_dir on an older run's folder that only hftl_config.yaml with hftl's header tells apart", "The same.",
        lambda env: earlier_outputs(env, "hftl_config.yaml", EARLIER_FILES),
        None, "--overwrite_output_dir: removed the earlier run's 7 files",
        check=only_earlier_files_removed,
    ),
    Case(
        "output-dir-interrupted-run", "a fresh run in an interrupted run's folder (checkpoints, hftl_run.json)", "Refused, pointing to --resume_from_checkpoint auto or --overwrite_output_dir.",
        interrupted,
        ConfigError, "holds an interrupted run (checkpoint-8): a fresh start would overwrite its checkpoints. Continue it with --resume_from_checkpoint auto, or pass --overwrite_output_dir",
    ),
    Case(
        "output-dir-interrupted-before-a-checkpoint", "the same command rerun in a folder whose run stopped before its first checkpoint (only hftl_run.json)", "Runs: there is nothing to continue; hftl_run.json is replaced, with a line.",
        lambda env: interrupted(env, checkpoints=False),
        None, "the earlier run stopped before its first checkpoint; its hftl_run.json is replaced",
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
        "checkpoint-symlinked-auto", "a checkpoint-N in --output_dir that is a link to another folder, resume auto", "Skipped with a line, never resumed from or deleted through; with nothing else to resume, the fresh start is refused (a save of that step would write through the link).",
        linked_checkpoint,
        ConfigError, "holds files hftl did not write (checkpoint-8), which a run would overwrite",
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
