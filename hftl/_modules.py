"""Module-name helpers shared by tasks, methods and techniques: which modules are the head."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["HEAD_NAMES", "within", "named_head"]

# Last name segments of classification heads across transformers and timm models
# (pre_classifier: DistilBERT's projection before its classifier; classif: some timm CNNs).
HEAD_NAMES = ("classifier", "score", "pre_classifier", "head", "fc", "classif")


def within(name: str, modules: Iterable[str]) -> bool:
    """``name`` is one of ``modules`` or lies inside one of them (``classifier.dense`` in ``classifier``)."""
    return any(name == module or name.startswith(module + ".") for module in modules)


def named_head(model: nn.Module, head_names: Iterable[str] = HEAD_NAMES) -> list[str]:
    """Head modules by their conventional names (outermost matches only)."""
    names = tuple(head_names)
    head = [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] in names]
    return [name for name in head if not any(name.startswith(other + ".") for other in head)]
