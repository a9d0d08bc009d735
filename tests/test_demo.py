"""The offline demo, as a newcomer runs it: `langgraph-opencode demo`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from langgraph_opencode.testing import git

pytestmark = pytest.mark.opencode


def test_demo_plans_reworks_and_merges_offline() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "langgraph_opencode.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=600,  # a guard against a hang: about a minute on a quiet machine
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "the planner proposed 3 tasks" in out
    assert re.search(r"rework\s+greet: round 1: greet\(\) must return", out)
    assert "run completed: 3/3 tasks merged" in out
    repo = Path(re.search(r"Sample repository: (\S+)", out).group(1))  # type: ignore[union-attr]
    branch = re.search(r"git merge (\S+)", out).group(1)  # type: ignore[union-attr]
    try:
        assert 'return f"Hello, {name}!"' in git(repo, "show", f"{branch}:greet.py")
        assert "farewell(name)" in git(repo, "show", f"{branch}:cli.py")
        # The user's own branch and working tree are as they were.
        assert git(repo, "ls-files").split() == ["README.md"]
        assert git(repo, "status", "--porcelain") == ""
    finally:
        shutil.rmtree(repo.parent)


def test_unknown_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "langgraph_opencode.cli", "fly"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice: 'fly'" in result.stderr
