"""The export folder: which files in it hftl wrote (``hftl_export.json``), refusing to overwrite any other,
removing what a refused check leaves behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import ConfigError

__all__ = ["MANIFEST", "ExportFolder"]

MANIFEST = "hftl_export.json"
_STAGING = ".hftl-export-staging"  # the processor is saved here first, to learn its file names


class ExportFolder:
    """An export's output folder. Files hftl wrote there are listed in ``hftl_export.json``; a file of a
    name the export writes that the list doesn't hold is refused before anything is written."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if self.folder.is_symlink() or (self.folder.exists() and not self.folder.is_dir()):
            raise ConfigError(
                f"--output_dir {self.folder} is a link or a file; name a folder hftl may write the export into."
            )
        self.existed = self.folder.exists()
        self.earlier = self._listed()
        self.files = sorted(self.earlier)  # still hftl's until this export replaces or removes them
        self.details: dict = {}

    def _listed(self) -> set[str]:
        path = self.folder / MANIFEST
        if not path.is_file() or path.is_symlink():
            return set()
        try:
            files = json.loads(path.read_text()).get("files", [])
        except (OSError, ValueError, AttributeError):
            return set()
        return {
            name for name in files if isinstance(name, str) and "/" not in name and name not in ("", "..")
        }

    def stage_processor(self, processor, config) -> list[str]:
        """Save the config and the tokenizer / image processor into a staging folder; their file names."""
        staging = self.folder / _STAGING
        if staging.is_symlink():
            raise ConfigError(f"{staging} is a link; remove it, it is hftl's staging folder.")
        shutil.rmtree(staging, ignore_errors=True)  # a crashed export's, hftl's own name
        staging.mkdir(parents=True)
        config.save_pretrained(staging)
        processor.save_pretrained(staging)
        return sorted(path.name for path in staging.iterdir() if path.is_file())

    def discard_staged(self) -> None:
        """Remove the staging folder (and the export folder, when this export made it and it is empty)."""
        shutil.rmtree(self.folder / _STAGING, ignore_errors=True)
        if not self.existed and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()

    def check_names(self, names: list[str]) -> None:
        """Refuse when the folder holds a file of one of ``names`` that hftl did not write."""
        for name in [*names, MANIFEST]:
            path = self.folder / name
            if path.is_symlink() or (path.exists() and name not in self.earlier and name != MANIFEST):
                raise ConfigError(
                    f"{path} exists and was not written by hftl export; pass another --output_dir, or move it."
                )
        manifest = self.folder / MANIFEST
        if manifest.exists() and not manifest.is_file():
            raise ConfigError(f"{manifest} is not a file; pass another --output_dir, or move it.")

    def remove_stale(self, names: list[str]) -> None:
        """Delete what an earlier export wrote that this one won't (an int8 file without --quantize now)."""
        for name in sorted(self.earlier - set(names)):
            path = self.folder / name
            if path.is_file() and not path.is_symlink():
                path.unlink()
            if name in self.files:
                self.files.remove(name)

    def take_staged(self) -> None:
        """Move the staged config and processor files into the folder."""
        staging = self.folder / _STAGING
        for path in sorted(staging.iterdir()):
            os.replace(path, self.folder / path.name)
            self.added(path.name)
        staging.rmdir()

    def added(self, name: str) -> Path:
        """Record ``name`` as written by this export; its path."""
        if name not in self.files:
            self.files.append(name)
        self.record()
        return self.folder / name

    def remove(self, name: str) -> None:
        """Delete a file this export wrote (a refused model) and drop it from the list."""
        (self.folder / name).unlink(missing_ok=True)
        if name in self.files:
            self.files.remove(name)
        self.record()

    def record(self, **details) -> None:
        """Write ``hftl_export.json``: the files this export wrote (and ``details``), atomically."""
        self.details.update(details)
        data = {"format": 1, **self.details, "files": sorted(self.files)}
        temporary = self.folder / f".{MANIFEST}.tmp"
        temporary.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(temporary, self.folder / MANIFEST)
