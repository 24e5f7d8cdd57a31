"""``hftl app MODEL``: the demo page of a saved model, served on this machine.

gradio (the extra ``app``) does the serving; this module checks the folder first, so every bad input
costs one line before anything loads, and launches with no share link, no telemetry and no network.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from transformers import AutoConfig

from .._log import log
from ..errors import ConfigError, ModelNotFoundError, first_line

try:
    from . import _page
except ImportError as error:  # gradio is an extra; the entry says how to install it
    if error.name is None or not error.name.startswith("gradio"):
        raise
    _page = None

__all__ = ["check_model_folder", "build_app", "launch", "serve", "INSTALL_HINT"]

INSTALL_HINT = "hftl app needs gradio: pip install 'hftl[app]'"


def check_model_folder(model: str | Path) -> Path:
    """The folder ``hftl app`` can serve: a saved model with its ``config.json`` at the root (an hftl
    output folder, whose merged model sits there, or any ``save_pretrained`` folder).

    Args:
        model: The folder.

    Example:
        >>> check_model_folder("outputs/bbc-news-minilm")  # doctest: +SKIP
    """
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"{model} is not a folder: hftl app serves a saved model (an hftl output folder or a "
            "save_pretrained folder on this machine)."
        )
    if (folder / "config.json").is_file():
        return folder
    if (folder / "adapter_config.json").is_file() or (folder / "adapter" / "adapter_config.json").is_file():
        raise ConfigError(
            f"{model} holds only a LoRA adapter, which pipeline() can't serve alone: train with --lora_merge "
            "true (the default) to save the merged model at the output root, and serve that folder."
        )
    raise ModelNotFoundError(
        f"{model} has no config.json: serve a folder written by save_pretrained() or an hftl output folder."
    )


def build_app(model: str | Path, title: str | None = None):
    """The Gradio page (a ``gr.Interface``) for a saved text or image classifier (or regressor).

    Args:
        model: A saved model folder (see :func:`check_model_folder`).
        title: The page title; the folder's name by default.

    Example:
        >>> page = build_app("outputs/bbc-news-minilm")  # doctest: +SKIP
        >>> page.launch(server_name="127.0.0.1")  # doctest: +SKIP
    """
    if _page is None:
        raise ConfigError(INSTALL_HINT)
    folder = check_model_folder(model)
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as error:
        raise ModelNotFoundError(f"{model}/config.json can't be read ({first_line(error)[:160]}).") from None
    task = _page.task_of(config)
    if task == "token-classification":
        raise ConfigError(
            f"{model} is a token-classification model; hftl app serves text and image classifiers and "
            'regressors. Tag texts with pipeline("token-classification", model=...).'
        )
    if task is None:
        raise ConfigError(
            f"{model} is a {', '.join(config.architectures or ['model without architectures'])}: hftl app "
            "serves text and image classifiers (architectures ending in ForSequenceClassification or "
            "ForImageClassification)."
        )
    try:
        classifier = _page.make_classifier(str(folder), task, config)
    except Exception as error:  # noqa: BLE001 - a missing tokenizer or processor fails in many types
        raise ModelNotFoundError(
            f"transformers' pipeline can't load {model} ({type(error).__name__}: {first_line(error)[:160]}); "
            "the folder needs the model's tokenizer or image processor files (save them with save_pretrained)."
        ) from None
    return _page.build_page(classifier, task, config, title or folder.resolve().name)


def launch(model: str | Path, host: str = "127.0.0.1", port: int | None = None, block: bool = True):
    """Serve the page of ``model`` at ``http://host:port`` and return ``(page, url)``.

    Never a share link, no telemetry, no server-side rendering process; with ``block`` it serves until
    interrupted, otherwise it returns at once (call ``page.close()`` to stop it).

    Args:
        model: A saved model folder.
        host: The address to listen on; the default is reachable from this machine only.
        port: The port; the first free one from 7860 when None.
        block: Serve until Ctrl-C.

    Example:
        >>> page, url = launch("outputs/bbc-news-minilm", port=7861, block=False)  # doctest: +SKIP
        >>> page.close()  # doctest: +SKIP
    """
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535 (got {port}).")
    page = build_app(model)
    if not _is_loopback(host):
        log(f"hftl app listens on {host}: the page is reachable from other machines on the network")
    try:
        page.launch(
            server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, **_page.LAUNCH_OPTIONS
        )
    except OSError as error:
        raise ConfigError(
            f"hftl app can't listen on {host}:{port or 'a port from 7860'} "
            f"({first_line(error).split('. ')[0][:120]}); pass a free --port (and a --host of this machine)."
        ) from None
    url = page.local_url
    log(f"hftl app: {model} is served at {url} (Ctrl-C stops it)")
    if block:
        try:
            page.block_thread()
        finally:
            page.close()
    return page, url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> None:
    """The ``hftl app`` entry: :func:`launch` with the command's options."""
    try:
        launch(args.model, host=args.host, port=args.port, block=True)
    except KeyboardInterrupt:
        log("hftl app stopped")
