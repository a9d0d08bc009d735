"""The names and paths of one run: its branches, worktrees and directory.

Layout of a run ``R`` in the user's repository::

    lgoc/R/integration            branch: starts at the user's HEAD, collects merges
    lgoc/R/<task_id>              branch: one per task, from the integration head
    <run_dir>/integration         worktree of the integration branch (merges happen here)
    <run_dir>/worktrees/<task_id> worktree of a task branch (the agent works here)
    <run_dir>/planner             detached checkout of the run's start (the planner reads it)

``run_dir`` defaults to ``<repo>/.git/langgraph-opencode/runs/R``, inside the
git directory, so the user's ``git status`` never sees it. Nothing here runs git.
"""

from __future__ import annotations

import re
from pathlib import Path

from langgraph_opencode.errors import ConfigurationError

__all__ = ["BRANCH_NAMESPACE", "RESERVED_TASK_IDS", "RunLayout", "absolute"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_INTEGRATION = "integration"
_PLANNER = "planner"
BRANCH_NAMESPACE = "lgoc"
"""Every run's branches are ``lgoc/<run_id>/...``."""
RESERVED_TASK_IDS = frozenset({_INTEGRATION})
"""Names the run gives its own branches (``lgoc/<run_id>/integration``): not task ids."""


class RunLayout:
    """Where one run keeps its branches and worktrees.

    ``run_id``, ``run_dir`` (absolute), ``integration_branch``,
    ``integration_path`` and ``planner_path`` are the attributes of the same
    names of :class:`~langgraph_opencode.tools.git.run.GitRun`, as the module
    docstring lays them out.
    """

    def __init__(self, common_dir: Path, run_id: str, *, run_dir: Path | None = None) -> None:
        """Name the run ``run_id`` of the repository whose git directory is ``common_dir``.

        Raises:
            ConfigurationError: ``run_id`` is not a usable id.
        """
        self.run_id = _check_id("run id", run_id)
        default = common_dir / "langgraph-opencode" / "runs" / run_id
        self.run_dir = absolute(run_dir or default)
        self.integration_branch = f"{BRANCH_NAMESPACE}/{run_id}/{_INTEGRATION}"
        self.integration_path = self.run_dir / _INTEGRATION
        self.planner_path = self.run_dir / _PLANNER
        self.branch_prefix = f"{BRANCH_NAMESPACE}/{run_id}/"
        """What every branch of the run starts with."""

    def task_branch(self, task_id: str) -> str:
        """Return the branch name of a task, ``lgoc/<run_id>/<task_id>``.

        Raises:
            ConfigurationError: ``task_id`` is not a usable id, or is reserved.
        """
        _check_id("task id", task_id)
        if task_id in RESERVED_TASK_IDS:
            raise ConfigurationError(f"{task_id!r} is reserved; choose another task id")
        return self.branch_prefix + task_id

    def task_path(self, task_id: str) -> Path:
        """Where a task's worktree goes unless it is given another place."""
        return self.run_dir / "worktrees" / task_id


def absolute(path: Path) -> Path:
    """``path`` made absolute; the file system is asked only for a relative one."""
    return path if path.is_absolute() else path.resolve()


def _check_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value) or ".." in value or value.endswith((".", ".lock")):
        raise ConfigurationError(
            f"invalid {kind} {value!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' and not ending in '.' or '.lock'"
        )
    return value
