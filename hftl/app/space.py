"""A Space-ready ``app.py`` and ``requirements.txt`` for a model on the Hub: the page ``hftl app`` serves
(the source of ``_page.py``, which imports only gradio and transformers), loading the model by repo id.

Written by hand with :func:`write_space_app`, or added to an upload with ``hftl.hub.push(...,
space_app=True)``. Reads no weights and needs no gradio: the files are text.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from ..errors import ConfigError

__all__ = ["SPACE_FILES", "space_requirements", "space_app_source", "write_space_app"]

SPACE_FILES = ("app.py", "requirements.txt")
_PAGE = Path(__file__).with_name("_page.py")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_HEADER = '''"""A demo page for the model {repo_id}: type a text or upload an image, read the label scores.

Written by hftl (`hftl.app.space`); the same page `hftl app` serves locally. On a Gradio Space, upload
this file and requirements.txt; elsewhere: `pip install -r requirements.txt && python app.py`.
"""
'''
_MAIN = """

MODEL = {repo_json}
demo = page_for(MODEL)

if __name__ == "__main__":
    demo.launch(**LAUNCH_OPTIONS)
"""


def _page_parts() -> tuple[list[str], dict]:
    """The page's source lines after its docstring, and its task table (one source of truth)."""
    source = _PAGE.read_text(encoding="utf-8")
    tree = ast.parse(source)
    tasks = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "TASKS"
    )
    return source.splitlines()[tree.body[0].end_lineno :], tasks


def space_requirements(model_dir: str | Path) -> list[str]:
    """What ``app.py`` needs to serve the model saved in ``model_dir`` (read from its ``config.json``);
    refuses a folder the page can't serve (no merged model, token classification), before anything is written.

    Args:
        model_dir: The folder holding the model's ``config.json`` (an hftl output folder).

    Example:
        >>> space_requirements("outputs/bbc-news-minilm")  # doctest: +SKIP
        ['gradio>=5.0', 'transformers>=5.0', 'torch']
    """
    config_file = Path(model_dir) / "config.json"
    if not config_file.is_file() or config_file.is_symlink():
        raise ConfigError(
            f"{model_dir} has no merged model (config.json at its root), so a Space app can't load it with "
            "pipeline(); train with --lora_merge true (the default) or push without the Space app."
        )
    config = json.loads(config_file.read_text(encoding="utf-8"))
    tasks = _page_parts()[1]
    found = {
        task
        for architecture in config.get("architectures") or []
        for suffix, task in tasks.items()
        if architecture.endswith(suffix)
    }
    if not found & {"text-classification", "image-classification"}:
        raise ConfigError(
            f"The Space app serves text and image classifiers; {model_dir} holds a "
            f"{', '.join(config.get('architectures') or ['model without architectures'])}."
        )
    needs = ["gradio>=5.0", "transformers>=5.0", "torch"]
    if "image-classification" in found:
        needs.append("torchvision")  # the fast image processors
    if config.get("model_type") == "timm_wrapper":
        needs.append("timm>=1.0")
    return needs


def space_app_source(repo_id: str) -> str:
    """The text of ``app.py``: the page, then ``MODEL = repo_id`` and ``demo.launch()``.

    Args:
        repo_id: The model repo, ``user/name``.

    Example:
        >>> compile(space_app_source("me/bbc-news-minilm"), "app.py", "exec")  # doctest: +ELLIPSIS
        <code object <module> at ...>
    """
    if not _REPO_ID.match(repo_id or ""):
        raise ConfigError(f"The Space app needs a repo id like user/name (got '{repo_id}').")
    body = "\n".join(_page_parts()[0]).strip("\n")
    return _HEADER.format(repo_id=repo_id) + "\n" + body + "\n" + _MAIN.format(repo_json=json.dumps(repo_id))


def write_space_app(repo_id: str, destination: str | Path, model_dir: str | Path | None = None) -> list[str]:
    """Write ``app.py`` and ``requirements.txt`` into ``destination``; return their names.

    Args:
        repo_id: The model repo the app loads, ``user/name``.
        destination: The folder to write into (a staged upload, or a Space's folder).
        model_dir: The saved model the requirements are read from; ``destination`` by default.

    Example:
        >>> write_space_app("me/bbc-news-minilm", "space", model_dir="outputs/bbc-news-minilm")  # doctest: +SKIP
        ['app.py', 'requirements.txt']
    """
    source = space_app_source(repo_id)
    requirements = space_requirements(model_dir if model_dir is not None else destination)
    destination = Path(destination)
    for name in SPACE_FILES:
        if (destination / name).is_symlink():  # never written through
            raise ConfigError(
                f"{destination / name} is a symbolic link; remove it and write the Space app again."
            )
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "app.py").write_text(source, encoding="utf-8")
    (destination / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return list(SPACE_FILES)
