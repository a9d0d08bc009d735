"""The offline demo, as a newcomer runs it: `langgraph-opencode demo`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.opencode


def test_demo_runs_offline_and_leaves_the_work_in_a_sample_repo() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "langgraph_opencode.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "opencode serve healthy" in out
    assert re.search(r"greet: ok in [\d.]+s", out)
    assert re.search(r"farewell: ok in [\d.]+s", out)
    assert "'approved': True" in out
    match = re.search(r"Sample repository: (\S+)", out)
    assert match is not None
    repo = Path(match.group(1))
    try:
        assert 'return f"Hello, {name}!"' in (repo / "greet.py").read_text()
        assert 'return f"Goodbye, {name}!"' in (repo / "farewell.py").read_text()
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
