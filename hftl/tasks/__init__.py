"""Tasks: what a model predicts and how raw columns become model inputs. One module per task."""

from __future__ import annotations

from .._registry import Registry
from ..options.config import TASK_CHOICES
from ._base import Task

__all__ = ["Task", "ClassificationTask", "RegressionTask", "register_task", "get_task", "task_names"]

_TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    """Register ``task`` under ``task.name``; a second registration of the same name is refused."""
    return _TASKS.register(task.name, task)


def task_names() -> list[str]:
    return _TASKS.names()


def get_task(name: str) -> Task:
    """The registered task called ``name``, or a ConfigError listing the known ones."""
    return _TASKS.get(name)


from .classification import ClassificationTask  # noqa: E402
from .image_classification import ImageClassification  # noqa: E402
from .regression import ImageRegression, RegressionTask, TextRegression  # noqa: E402
from .text_classification import TextClassification  # noqa: E402
from .token_classification import TokenClassification  # noqa: E402

register_task(TextClassification())
register_task(ImageClassification())
register_task(TextRegression())
register_task(ImageRegression())
register_task(TokenClassification())
TASK_CHOICES.connect(help=lambda: f"The task to train for: {', '.join(task_names())}.")
