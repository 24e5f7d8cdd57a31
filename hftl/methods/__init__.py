"""Adaptation methods, one module each, registered by name (``--method``)."""

from __future__ import annotations

from ..errors import ConfigError
from ._base import Method, count_parameters

__all__ = ["Method", "register_method", "get_method", "method_names", "count_parameters"]

_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Register ``method`` under ``method.name``; a second registration of the same name is refused."""
    if method.name in _METHODS:
        raise ValueError(f"A method named '{method.name}' is already registered.")
    _METHODS[method.name] = method
    return method


def method_names() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> Method:
    """The registered method called ``name``, or a ConfigError listing the known ones."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"Unknown method '{name}'; choose one of: {', '.join(method_names())}.") from None


from .full import FullFineTuning  # noqa: E402
from .lora import LoRA  # noqa: E402
from .probe import LinearProbe  # noqa: E402

register_method(FullFineTuning())
register_method(LinearProbe())
register_method(LoRA())
