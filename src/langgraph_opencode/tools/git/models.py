"""What the git toolkit returns: small frozen models, safe to keep in graph state."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "BranchInfo",
    "CommitResult",
    "MergeResult",
    "Reattached",
    "RefreshResult",
    "RunInventory",
    "SharedChanges",
    "StatusEntry",
    "TaskDiff",
    "TaskWorktree",
    "WorkingTreeStatus",
    "WorktreeInfo",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatusEntry(_Model):
    """One line of ``git status --porcelain``."""

    code: str
    """The two-letter status, e.g. ``" M"``, ``"A "``, ``"??"``."""
    path: str
    """The path relative to the repository root."""


class WorkingTreeStatus(_Model):
    """The state of the user's checkout, read without changing anything."""

    branch: str | None
    """The checked-out branch, or ``None`` on a detached HEAD."""
    head: str
    """The commit HEAD points at."""
    entries: tuple[StatusEntry, ...] = ()
    """Modified, staged and untracked files (ignored files are not listed)."""

    @property
    def dirty(self) -> bool:
        """Whether there are uncommitted changes or untracked files."""
        return bool(self.entries)

    @property
    def files(self) -> tuple[str, ...]:
        """The paths of :attr:`entries`."""
        return tuple(e.path for e in self.entries)


class TaskWorktree(_Model):
    """A task's branch and the worktree it is checked out in."""

    run_id: str
    task_id: str
    branch: str
    """The task branch, ``lgoc/<run_id>/<task_id>``."""
    path: Path
    """The worktree directory the agent works in."""
    head: str
    """The branch head when the worktree was made ready."""
    created: bool
    """False when an existing branch was reused (e.g. after a crash)."""
    repaired: bool = False
    """True when a registered worktree whose directory had gone was re-added."""


class CommitResult(_Model):
    """A commit made from everything in a worktree."""

    sha: str
    files: tuple[str, ...]
    """The paths the commit changed."""
    ignored: tuple[str, ...] = ()
    """Untracked paths left out because ``.gitignore`` excludes them (directories end in ``/``)."""


class Reattached(_Model):
    """A task worktree found off its branch (the agent switched), put back on it."""

    task_id: str
    branch: str
    """The task branch, checked out in the worktree again."""
    left_on: str | None
    """The branch the worktree was found on; ``None`` for a detached HEAD."""
    found: str
    """The commit the worktree was at, after committing what was uncommitted."""
    committed: str | None = None
    """The commit made of uncommitted work found there, if any."""
    how: Literal["fast_forward", "merged", "switched"]
    """``fast_forward``: the task branch was moved up to the commits made
    elsewhere; ``merged``: the two had diverged, and those commits were merged
    into the task branch; ``switched``: they had nothing the task branch lacks."""
    head: str
    """The task branch head now."""


class TaskDiff(_Model):
    """What a task branch changes relative to its merge base with integration."""

    branch: str
    base: str
    """The merge base of the task branch and the integration branch."""
    head: str
    """The task branch head the diff was taken at."""
    text: str
    """The unified diff, cut at a line boundary when longer than the cap."""
    truncated: bool
    total_chars: int
    """The length of the whole diff, before any cut."""
    stat: str
    """``git diff --stat`` of the same range."""
    files: tuple[str, ...]


class MergeResult(_Model):
    """A task branch merged into the integration branch."""

    task_id: str
    branch: str
    sha: str
    """The integration head after the merge."""
    already_merged: bool
    """True when there was nothing to do (e.g. repeated after a crash)."""
    files: tuple[str, ...] = ()
    """The paths the merge brought into integration."""


class RefreshResult(_Model):
    """The integration branch merged into a task branch, for conflict rework."""

    task_id: str
    branch: str
    head: str
    """The task branch head (unchanged while conflicts are pending)."""
    conflicts: tuple[str, ...] = ()
    """Paths left with conflict markers in the worktree, for the agent to resolve."""
    up_to_date: bool = False
    """True when the task branch already contained the integration head."""

    @property
    def clean(self) -> bool:
        """Whether the refresh finished without conflicts."""
        return not self.conflicts


class SharedChanges(_Model):
    """Changes to the repository's shared git files, found after a task's turn and undone.

    These are files every checkout of the repository uses (``.git/config``,
    ``.git/hooks/``, ...), which an agent's ``git config`` in its worktree writes.
    """

    task_id: str
    """The task whose turn had just ended (with tasks in parallel, maybe another's doing)."""
    files: tuple[str, ...]
    """The files put back, relative to the git directory (``config``, ``hooks/post-checkout``)."""
    config_keys: tuple[str, ...] = ()
    """The config keys that had changed (names only: values may be secrets)."""
    kept: Path
    """Where the changed versions were moved, under the same names."""

    @property
    def summary(self) -> str:
        """One line for the run's events and report."""
        shown = [
            f"config ({', '.join(self.config_keys)})"
            if name == "config" and self.config_keys
            else name
            for name in self.files
        ]
        return (
            f"the repository's shared git files were changed; put back: {', '.join(shown)} "
            f"(the changed versions are kept in {self.kept})"
        )


class BranchInfo(_Model):
    """A branch of the run, for reports."""

    name: str
    sha: str
    merged: bool
    """Whether every commit of it is in the integration branch."""
    unmerged_commits: int = 0


class WorktreeInfo(_Model):
    """A worktree of the run, for reports."""

    path: Path
    branch: str | None
    head: str | None
    missing: bool
    """Registered with git but its directory is gone."""
    dirty: bool | None
    """Uncommitted changes or untracked files; ``None`` when missing."""


class RunInventory(_Model):
    """What a run has left in the repository: branches and worktrees."""

    run_id: str
    branches: tuple[BranchInfo, ...]
    """The integration branch first, then task branches by name."""
    worktrees: tuple[WorktreeInfo, ...]

    @property
    def empty(self) -> bool:
        """Whether the run left nothing behind."""
        return not self.branches and not self.worktrees
