"""Publishing an output directory to the Hub, or writing exactly what would be published (dry run).

Trainer's own ``push_to_hub`` creates the repo in ``Trainer.__init__`` and uploads checkpoints and
``training_args.bin`` (a pickle holding ``hub_token``), so hftl never hands ``push_to_hub`` to Trainer.
It pushes once, after training, through ``huggingface_hub``, from a staging folder built here: only the
files the run wrote (its ``hftl_outputs.json``), never through a symbolic link, only safetensors, JSON,
YAML, text, Markdown and PNG files, with the run's local paths replaced by public names in every text
file (the path options of ``hftl_config.yaml``, the adapter's base model, PEFT's adapter card).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from huggingface_hub import HfApi, get_token

from .._log import log
from ..app.space import space_requirements, write_space_app
from ..commands import main as run_command
from ..errors import ConfigError, HftlError, first_line
from ..resolve import hub_status
from ..run.run_files import CONFIG_FILE, DRY_RUN_DIR, OUTPUTS_FILE, plain_path, read_outputs
from .card import CARD_FILE
from .outputs import _card_of, _public_name, looks_local

__all__ = [
    "push",
    "push_run",
    "check_can_push",
    "check_run_can_push",
    "stage_upload",
    "DRY_RUN_DIR",
    "PushError",
]

ADAPTER_CONFIG = "adapter/adapter_config.json"
# what a published model folder may hold; pickles (.bin, .pt, .pkl) and checkpoints never go
_PUBLISHED_SUFFIXES = {".safetensors", ".json", ".yaml", ".yml", ".txt", ".md", ".png", ".model", ".jinja"}
_NEVER = {"training_args.bin", DRY_RUN_DIR, "hftl_run.json", OUTPUTS_FILE}  # the last two: local only


class PushError(HftlError):
    """The upload failed; the local output directory is intact."""


def check_can_push(repo_id: str | None, dry_run: bool, token: str | None = None) -> None:
    """Pre-flight: a repo id, and unless it is a dry run, a reachable Hub and a token."""
    if not repo_id:
        raise ConfigError("--push_to_hub needs --hub_model_id USER/NAME (the repo to create or update).")
    if repo_id.count("/") != 1 or any(not part for part in repo_id.split("/")):
        raise ConfigError(f"--hub_model_id must look like user/name or org/name (got '{repo_id}').")
    if dry_run:
        return
    status = hub_status()
    if status != "reachable":
        raise ConfigError(
            f"--push_to_hub can't publish: {status}. Add --push_dry_run to write the folder that would be "
            "pushed, and push it later with `python -m hftl.hub.publish OUTPUT_DIR USER/NAME`."
        )
    if not (token or get_token()):
        raise ConfigError(
            "--push_to_hub needs a Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --hub_token "
            "(it is never written to disk or logged)."
        )


# Options whose values are places on this machine: always (files and folders) ...
_PATH_OPTIONS = {
    "weights", "output_dir", "resume_from_checkpoint", "hp_space", "config", "logging_dir", "deepspeed",
    "fsdp_config",
}  # fmt: skip
# ... or unless they are Hub ids. Every other option (label_delimiter "/", a column name) is a value.
_PATH_OR_HUB_OPTIONS = {"model", "dataset", "teacher"}
# staged files read as text for local paths
_TEXT_SUFFIXES = {".json", ".yaml", ".yml", ".txt", ".md", ".jinja"}


def _public(key: str, value, base_model: str | None = None):
    """An option's value as published: a local path (existing or gone) becomes ``base_model`` (the Hub
    id the card names) for ``model`` when known, else the name its own card gives, else its base name;
    lists are mapped item by item; options that don't hold paths are never changed."""
    if isinstance(value, list):
        return [_public(key, item, base_model) for item in value]
    always = key in _PATH_OPTIONS
    if not (always or key in _PATH_OR_HUB_OPTIONS) or not isinstance(value, str) or not value:
        return value
    if always and value.lstrip().startswith("{"):  # deepspeed/fsdp settings given inline as JSON
        return value
    if not (always or looks_local(value)):
        return value  # a Hub id
    return (base_model if key == "model" else None) or _public_name(value, local=True)


def _local_forms(value: str) -> set[str]:
    """The ways a local path can appear in a file: as given, expanded, absolute, resolved. Only forms
    with a slash: a bare word may be anywhere in a text."""
    expanded = os.path.expanduser(value)
    forms = {value, expanded, os.path.abspath(expanded), os.path.realpath(expanded)}
    return {form.rstrip("/") for form in forms if "/" in form.rstrip("/")}


def _replacements(source: Path, base_model: str | None) -> dict[str, str]:
    """Each local path a staged file may carry (the path options of the local ``hftl_config.yaml``, the
    output folder, the adapter's base), mapped to its public name."""
    config = source / CONFIG_FILE
    values = yaml.safe_load(config.read_text()) if config.is_file() and not config.is_symlink() else {}
    pairs = [(key, value) for key, value in (values or {}).items()]
    pairs.append(("output_dir", str(source)))
    adapter_config = source / ADAPTER_CONFIG
    if adapter_config.is_file() and not adapter_config.is_symlink():
        pairs.append(("model", json.loads(adapter_config.read_text()).get("base_model_name_or_path")))
    replacements = {}
    for key, value in pairs:
        for item in value if isinstance(value, list) else [value]:
            public = _public(key, item, base_model)
            if isinstance(item, str) and public != item:
                replacements.update(dict.fromkeys(_local_forms(item), public))
    return replacements


def _without_local_paths(text: str, replacements: dict[str, str]) -> str:
    """``text`` with every local path replaced, longest first (a checkpoint before its output folder),
    also in its JSON-escaped spelling."""
    for local in sorted(replacements, key=len, reverse=True):
        public = replacements[local]
        text = text.replace(local, public)
        text = text.replace(json.dumps(local)[1:-1], json.dumps(public)[1:-1])
    return text


def _write_public_copy(
    path: Path, target: Path, base_model: str | None, replacements: dict[str, str]
) -> None:
    """A staged file without local paths (the local files keep them, so ``--config`` still reruns the
    job and the adapter still finds its base here): ``hftl_config.yaml`` and the adapter's config value
    by value, every other text file (PEFT's adapter card, ``config.json``, results) by replacing the
    run's local paths."""
    if target.name == CONFIG_FILE:
        values = yaml.safe_load(path.read_text()) or {}
        public = {key: _public(key, value, base_model) for key, value in values.items()}
        header = (
            "# The resolved hftl options of this run, local paths replaced by names. Rerun: --config FILE\n"
        )
        target.write_text(header + yaml.safe_dump(public, sort_keys=False))
    elif target.as_posix().endswith(ADAPTER_CONFIG):
        values = json.loads(path.read_text())
        key = "base_model_name_or_path"
        values[key] = _public("model", values.get(key), base_model)
        target.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # not text after all: copied as is
            shutil.copy2(path, target)
            return
        public = _without_local_paths(text, replacements)
        if public == text:
            shutil.copy2(path, target)
        else:
            target.write_text(public, encoding="utf-8")


def stage_upload(output_dir: str | Path, destination: str | Path) -> list[str]:
    """Copy the publishable files the run wrote (``hftl_outputs.json``) into ``destination``; return their
    relative paths. A listed file reached through a symbolic link is skipped with a line."""
    source, destination = Path(output_dir), Path(destination)
    listed = read_outputs(source)  # refuses a folder without the list
    if CARD_FILE not in listed or not (source / CARD_FILE).is_file():
        raise ConfigError(f"{source} has no {CARD_FILE} model card; push an hftl output directory.")
    base_model = _card_of(source)[1]
    replacements = _replacements(source, base_model)
    copied = []
    for relative in sorted(listed):
        path = source / relative
        if not plain_path(source, relative):
            log(f"not pushing {relative}: it is a symbolic link, and hftl pushes only files it wrote")
            continue
        first = Path(relative).parts[0]
        if not path.is_file() or first in _NEVER or first.startswith("checkpoint-"):
            continue
        if path.suffix not in _PUBLISHED_SUFFIXES or path.name in _NEVER:
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in (CONFIG_FILE, ADAPTER_CONFIG) or path.suffix in _TEXT_SUFFIXES:
            _write_public_copy(path, target, base_model, replacements)
        else:
            shutil.copy2(path, target)
        copied.append(relative)
    return copied


def push(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    dry_run: bool = False,
    space_app: bool = False,
) -> Path | str:
    """Publish an hftl output directory (model, processor, card, images, config, results) to ``repo_id``.

    A LoRA run's adapter goes along in the ``adapter/`` subfolder of the same repo, next to the merged
    model at the root. With ``dry_run`` the exact upload folder is written to
    ``output_dir/push_dry_run`` and nothing leaves the machine. With ``space_app`` the upload also holds
    a Space-ready ``app.py`` and its ``requirements.txt`` (:func:`hftl.app.write_space_app`), which hftl
    writes: the model's demo page, loading it from ``repo_id``.

    Returns:
        The dry-run folder, or the URL of the pushed commit.
    """
    check_can_push(repo_id, dry_run, token)
    output_dir = Path(output_dir)
    if space_app:
        space_requirements(output_dir)  # refuse a model the page can't serve before anything is written
    if dry_run:
        folder = output_dir / DRY_RUN_DIR
        if folder.is_symlink() or folder.exists() and not folder.is_dir():  # never written through
            raise ConfigError(
                f"{folder} is a symbolic link or a file, not hftl's dry-run folder; remove it and push again."
            )
        read_outputs(output_dir)  # refuse a folder without the list before deleting anything
        shutil.rmtree(folder, ignore_errors=True)
        files = stage_upload(output_dir, folder)
        files += write_space_app(repo_id, folder) if space_app else []
        log(f"push dry run: {len(files)} files that would go to {repo_id} are in {folder}")
        return folder
    with tempfile.TemporaryDirectory(prefix="hftl-push-") as staging:
        files = stage_upload(output_dir, staging)
        files += write_space_app(repo_id, staging) if space_app else []
        try:
            api = HfApi(token=token)
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=staging, commit_message="Upload model trained with hftl"
            )
        except Exception as exc:  # noqa: BLE001 - network and Hub errors come in many types
            reason = first_line(exc)[:160]
            raise PushError(
                f"Pushing to {repo_id} failed ({type(exc).__name__}: {reason}); {output_dir} is intact. Retry with "
                f"`python -m hftl.hub.publish {output_dir} {repo_id}`."
            ) from None
    log(f"pushed {len(files)} files to https://huggingface.co/{repo_id}")
    return getattr(commit, "commit_url", str(commit))


def check_run_can_push(training_args) -> None:
    """:func:`check_can_push` for a run's ``--push_to_hub`` options, before any compute."""
    check_can_push(training_args.hub_model_id, training_args.push_dry_run, training_args.hub_token)


def push_run(output_dir: str | Path, training_args) -> Path | str:
    """:func:`push` with a run's ``--hub_model_id``, ``--hub_private_repo``, token and ``--push_dry_run``."""
    return push(
        output_dir,
        training_args.hub_model_id,
        private=bool(training_args.hub_private_repo),
        token=training_args.hub_token,
        dry_run=training_args.push_dry_run,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m hftl.hub.publish OUTPUT_DIR USER/NAME [--private] [--dry_run] [--space_app]``: the same
    command as ``hftl push`` (kept for scripts that call it by this name)."""
    return run_command(["push", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
