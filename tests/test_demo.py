"""The offline demo, as a newcomer runs it: `langgraph-opencode demo`."""

from __future__ import annotations

import re
import shutil
import signal
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


def test_ctrl_c_in_the_demo_says_it_cannot_be_resumed_and_keeps_its_repository() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "langgraph_opencode.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    repo: Path | None = None
    try:
        assert process.stdout is not None
        for line in process.stdout:  # ends at EOF if the demo exits first
            if found := re.search(r"Sample repository: (\S+)", line):
                repo = Path(found.group(1))
            if "dispatched" in line:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)  # a guard against a hang
        assert process.returncode == 130, err
        assert "a demo cannot be resumed" in err
        assert repo is not None
        assert git(repo, "status", "--porcelain") == ""  # left as it was
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if repo is not None:
            shutil.rmtree(repo.parent, ignore_errors=True)
