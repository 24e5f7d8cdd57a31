"""docs/reliability.md against tests/reliability: every row names a test that exists, every test has a
row, and the bad-input rows say what the test table (``CASES``) says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..conftest import REPO
from .test_bad_inputs import CASES

PAGE = REPO / "docs" / "reliability.md"
HERE = Path(__file__).parent


def documented_tests() -> list[str]:
    """The ``file.py::test[params]`` names in the page's tables (``*`` stands for any parameters)."""
    return re.findall(r"`(test_\w+\.py::[^`]+)`", PAGE.read_text())


def reliability_test_ids(session) -> set[str]:
    ids = {item.nodeid.partition("tests/reliability/")[2] for item in session.items}
    ids.discard("")
    modules = {path.name for path in HERE.glob("test_*.py")}
    if {test_id.split("::")[0] for test_id in ids} != modules:  # only part of the folder was collected
        listing = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(HERE)],
            capture_output=True, text=True, cwd=REPO, check=True,
        ).stdout  # fmt: skip
        ids = {line.partition("tests/reliability/")[2] for line in listing.splitlines() if "::" in line}
    return ids


def matches(pattern: str, test_id: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), test_id) is not None


def test_every_reliability_case_is_documented_and_tested(request):
    patterns, ids = documented_tests(), reliability_test_ids(request.session)
    assert len(ids) > 80, sorted(ids)
    undocumented = sorted(test_id for test_id in ids if not any(matches(p, test_id) for p in patterns))
    untested = [pattern for pattern in patterns if not any(matches(pattern, test_id) for test_id in ids)]
    assert not undocumented, f"tests with no row in docs/reliability.md: {undocumented}"
    assert not untested, f"rows in docs/reliability.md with no such test: {untested}"


def test_bad_input_rows_say_what_the_cases_say():
    rows = {}
    for line in PAGE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[0].startswith("`") and "test_bad_inputs.py" in cells[3]:
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    assert rows == {case.id: (case.what, case.hftl_does) for case in CASES}
    assert len(CASES) >= 170
