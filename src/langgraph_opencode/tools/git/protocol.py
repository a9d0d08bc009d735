"""The git operations the graph's nodes use, as a protocol.

The nodes get a run's git side from ``nodes._common.git_run`` typed as
:class:`GitOperations`, never as the class that implements it
(:class:`~langgraph_opencode.tools.git.run.GitRun`), so another git layer
with these members can take its place.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from langgraph_opencode.tools.git.models import (
    CommitResult,
    MergeResult,
    Reattached,
    RefreshResult,
    RunInventory,
    SharedChanges,
    TaskDiff,
    TaskWorktree,
    WorkingTreeStatus,
)

__all__ = ["GitOperations"]


class GitOperations(Protocol):
    """One run's branches and worktrees, as the nodes drive them.

    See :class:`~langgraph_opencode.tools.git.run.GitRun` for what each
    member does and raises.
    """

    @property
    def repo_root(self) -> Path:
        """The top directory of the user's working tree."""
        ...

    @property
    def run_dir(self) -> Path:
        """The directory holding the run's worktrees, checks and report."""
        ...

    @property
    def integration_branch(self) -> str:
        """``lgoc/<run_id>/integration``, where the tasks are merged."""
        ...

    async def repo_status(self) -> WorkingTreeStatus:
        """The user's branch, HEAD and uncommitted files."""
        ...

    async def check_namespace(self) -> None:
        """Refuse to start when a branch of the user's is in the way of the run's."""
        ...

    async def ensure_integration_branch(self) -> str:
        """Create the integration branch at the user's HEAD unless it exists; its head."""
        ...

    async def integration_head(self) -> str | None:
        """The integration branch's head, ``None`` before it exists."""
        ...

    async def tracked_files(self, commit: str) -> list[str]:
        """The paths of the files ``commit`` holds."""
        ...

    async def planner_checkout(self, commit: str) -> Path:
        """A clean detached checkout of ``commit`` for the planner."""
        ...

    async def remove_planner_checkout(self) -> bool:
        """Remove the planner's checkout; whether there was one."""
        ...

    async def create_task_worktree(self, task_id: str, *, path: Path | None = None) -> TaskWorktree:
        """Give a task its branch and worktree, reusing whatever exists."""
        ...

    async def reattach(self, task_id: str, path: Path) -> Reattached | None:
        """Check the task branch out again in its worktree at ``path``, keeping the work."""
        ...

    async def undo_shared_changes(self, task_id: str) -> SharedChanges | None:
        """Put the repository's shared git files back as the run recorded them."""
        ...

    async def commit_all(self, task_id: str, message: str) -> CommitResult | None:
        """Commit everything in a task's worktree; ``None`` when nothing changed."""
        ...

    async def discard_uncommitted(self, task_id: str, *, to: str = "HEAD") -> None:
        """Put a task's worktree back to commit ``to`` (tracked and untracked files)."""
        ...

    async def task_head(self, task_id: str) -> str:
        """The commit at the head of the task branch."""
        ...

    async def unmerged_commits(self, task_id: str) -> list[str]:
        """The task branch's commits that the integration branch lacks, oldest first."""
        ...

    async def diff(self, task_id: str, *, max_chars: int = ...) -> TaskDiff:
        """What a task branch changes since its merge base with integration."""
        ...

    async def refresh(self, task_id: str, *, message: str | None = None) -> RefreshResult:
        """Merge the integration head into a task branch, in its worktree."""
        ...

    async def finish_refresh(self, task_id: str) -> RefreshResult:
        """Commit a refresh merge once its conflicts are resolved."""
        ...

    async def abort_refresh(self, task_id: str) -> None:
        """Abandon a pending refresh merge."""
        ...

    async def merge(self, task_id: str, *, message: str | None = None) -> MergeResult:
        """Merge a task branch into integration."""
        ...

    def integration_checkout(self) -> AbstractAsyncContextManager[Path]:
        """The integration worktree, clean at the branch's head, to run commands in."""
        ...

    async def remove_task_worktree(
        self, task_id: str, *, force: bool = False, delete_branch: bool = False
    ) -> bool:
        """Remove a task's worktree, refusing whenever work could be lost."""
        ...

    async def remove_integration_worktree(self) -> bool:
        """Remove the integration worktree (the branch stays), if clean."""
        ...

    async def inventory(self) -> RunInventory:
        """The run's branches and worktrees: what is left behind."""
        ...
