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
