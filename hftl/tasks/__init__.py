"""Tasks: what a model predicts and how raw columns become model inputs. One module per task."""

from __future__ import annotations

from ..errors import ConfigError
from ._base import Task

__all__ = ["Task", "register_task", "get_task", "task_names"]

_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Register ``task`` under ``task.name``; a second registration of the same name is refused."""
    if task.name in _TASKS:
        raise ValueError(f"A task named '{task.name}' is already registered.")
    _TASKS[task.name] = task
    return task


def task_names() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    """The registered task called ``name``, or a ConfigError listing the known ones."""
    try:
        return _TASKS[name]
    except KeyError:
        raise ConfigError(f"Unknown task '{name}'; choose one of: {', '.join(task_names())}.") from None


from .text_classification import TextClassification  # noqa: E402  (registers itself)

register_task(TextClassification())
