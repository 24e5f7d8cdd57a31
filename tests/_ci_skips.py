"""Under ``CI=true`` (``.ci/run`` sets it) a skipped test fails: CI installs every extra the tests need,
so a skip there means a test that CI is meant to run did not. Only reasons that depend on the machine
rather than on the install are allowed (``CI_ALLOWED_SKIPS``). Imported by ``conftest.py``."""

from __future__ import annotations

import os

import pytest

# Substrings of the allowed skip reasons: a test that skips for any other reason fails under CI=true.
CI_ALLOWED_SKIPS = (
    "the Debian package dataset-fashion-mnist is not installed",  # apt may be unavailable (.ci/run)
    "needs a CUDA GPU",  # CI machines have none
    "chromium and chromium-driver are not installed",  # the app's browser test; apt may be unavailable (.ci/run)
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not any(allowed in reason for allowed in CI_ALLOWED_SKIPS):
        report.outcome = "failed"
        report.longrepr = (
            f"{reason} - skipped under CI=true, where every test is meant to run: install what it needs in "
            ".ci/run, or add the reason to CI_ALLOWED_SKIPS in tests/_ci_skips.py if it depends on the machine"
        )
