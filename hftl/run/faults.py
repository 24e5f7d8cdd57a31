"""Fault injection for the crash-safety tests: ``HFTL_FAULT=<point>[@<step>]`` makes the process signal
itself (``HFTL_FAULT_SIGNAL``: KILL by default, or TERM/INT) when it reaches that point.

The points are ``step`` (after an optimizer step), ``save:after-weights`` (the model file is written,
the optimizer file is not), ``save:before-manifest`` (every file but the manifest), ``save:manifest``
(the manifest's temporary file is written, not yet renamed) and ``save:rotation`` (an old checkpoint is
marked for deletion, not yet deleted). Unset, each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["fault_point", "FAULT_ENV"]

FAULT_ENV = "HFTL_FAULT"


def fault_point(name: str, step: int | None = None) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, at_step = spec.partition("@")
    if point != name or (at_step and step != int(at_step)):
        return
    signame = os.environ.get("HFTL_FAULT_SIGNAL", "KILL").upper().removeprefix("SIG")
    os.kill(os.getpid(), getattr(signal, f"SIG{signame}"))
