"""The README's commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [b for b in _sh_blocks(readme) if "pytest" in b]
    assert len(commands) == 1, commands
    assert commands[0] in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_main_job_is_the_benchmark() -> None:
    readme = (ROOT / "README.md").read_text()
    assert any(b.endswith("python -m microrequests bench") for b in _sh_blocks(readme))
