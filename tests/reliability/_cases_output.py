"""Bad-input cases: see test_bad_inputs.py, which runs them."""

from __future__ import annotations

from ._battery import Case

OUTPUT_CASES: list[Case] = []
