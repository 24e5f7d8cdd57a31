"""Adaptation methods, one module each, registered by name (``--method``).

A method is a :class:`Method` subclass in a module of its own that ends with one
:func:`register_method` call; the import below loads it. ``docs/extending.md`` walks through one.
"""

from __future__ import annotations

from ._base import Method, count_parameters
from ._registry import (
    check_method_switches,
    check_sharded_method,
    default_method,
    get_method,
    method_help,
    method_names,
    methods_with,
    register_method,
)

# isort: split
# each module ends with its register_method call: the import order is the order --help and the
# error messages list the methods in
from . import full, probe, lora, distill, ia3  # noqa: F401, I001

__all__ = [
    "Method",
    "check_method_switches",
    "check_sharded_method",
    "count_parameters",
    "default_method",
    "get_method",
    "method_help",
    "method_names",
    "methods_with",
    "register_method",
]
