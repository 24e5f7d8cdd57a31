"""Adaptation methods, one module each, registered by name (``--method``)."""

from __future__ import annotations

from .._registry import Registry
from ._base import Method, count_parameters

__all__ = ["Method", "register_method", "get_method", "method_names", "count_parameters"]

_METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    """Register ``method`` under ``method.name``; a second registration of the same name is refused."""
    return _METHODS.register(method.name, method)


def method_names() -> list[str]:
    return _METHODS.names()


def get_method(name: str) -> Method:
    """The registered method called ``name``, or a ConfigError listing the known ones."""
    return _METHODS.get(name)


from .distill import Distillation  # noqa: E402
from .full import FullFineTuning  # noqa: E402
from .lora import LoRA  # noqa: E402
from .probe import LinearProbe  # noqa: E402

register_method(FullFineTuning())
register_method(LinearProbe())
register_method(LoRA())
register_method(Distillation())
