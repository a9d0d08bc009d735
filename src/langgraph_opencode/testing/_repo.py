"""Throwaway git repositories for tests and the demo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "langgraph-opencode tests",
    "GIT_AUTHOR_EMAIL": "tests@langgraph-opencode.invalid",
    "GIT_COMMITTER_NAME": "langgraph-opencode tests",
    "GIT_COMMITTER_EMAIL": "tests@langgraph-opencode.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
"""A fixed identity, so nothing depends on the machine's git config."""


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and return its stdout."""
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """Create a git repository at ``path`` with one commit on ``main``.

    Args:
        path: The directory to create (it must not exist yet).
        files: Files of the first commit, by relative path; a README by default.
    """
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    for name, content in (files or {"README.md": "# sample\n"}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "initial commit")
    return path
