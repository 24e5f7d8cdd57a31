"""CI runs exactly the README's test command, in a fresh venv, and fails when it fails."""

from __future__ import annotations

import re

from .conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_the_demo_and_the_test_command():
    demo, tests = readme_commands()[:2]
    assert demo == 'pip install -e ".[demo]" && accelerate launch recipes/text_cls.py'
    assert tests == 'pip install -e ".[dev]" && pytest'


def test_ci_makes_a_fresh_venv_and_runs_the_readme_test_command():
    script = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script  # a failing test fails CI
    assert "python3 -m venv" in script
    assert readme_commands()[1] in script.splitlines()
    assert "mkdocs build --strict" in script


SKIPPING_TESTS = '''
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="the Debian package dataset-fashion-mnist is not installed")
def test_machine_dependent():
    pass

@pytest.mark.skipif(True, reason="needs the demo extra")
def test_skipped_by_a_marker():
    pass

def test_skipped_in_the_test():
    pytest.skip("needs the demo extra")

def test_skipped_on_an_import():
    pytest.importorskip("hftl_no_such_module")
'''


def run_pytest_on_skips(tmp_path, ci: str | None):
    """pytest with hftl's skip hook on a file of skipping tests, in a process of its own."""
    import os
    import subprocess
    import sys

    (tmp_path / "test_skips.py").write_text(SKIPPING_TESTS)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests._ci_skips", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-q", "-rA", "--rootdir", str(tmp_path), "-c", os.devnull, "test_skips.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_under_ci_a_skip_fails_unless_its_reason_depends_on_the_machine(tmp_path):
    ci = run_pytest_on_skips(tmp_path, "true")
    assert ci.returncode == 1, ci.stdout
    summary = ci.stdout.splitlines()
    assert "SKIPPED [1] test_skips.py:7: the Debian package dataset-fashion-mnist is not installed" in summary
    assert {line.split(" - ")[0] for line in summary if line.startswith(("PASSED", "FAILED", "ERROR"))} == {
        "PASSED test_skips.py::test_runs",
        "ERROR test_skips.py::test_skipped_by_a_marker",  # a skip in setup becomes a setup error
        "FAILED test_skips.py::test_skipped_in_the_test",
        "FAILED test_skips.py::test_skipped_on_an_import",
    }, ci.stdout
    assert summary[-1].startswith("2 failed, 1 passed, 1 skipped, 1 error"), ci.stdout
    assert "needs the demo extra - skipped under CI=true" in ci.stdout
    assert "could not import 'hftl_no_such_module'" in ci.stdout

    local = run_pytest_on_skips(tmp_path, None)  # outside CI a skip stays a skip
    assert local.returncode == 0 and "1 passed, 4 skipped" in local.stdout, local.stdout


def test_ci_sets_ci_true_so_skips_fail():
    assert "export CI=true" in (REPO / ".ci" / "run").read_text().splitlines()
