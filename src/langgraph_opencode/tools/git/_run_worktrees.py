"""A run's worktrees: each task's, the planner's checkout, and removing them safely.

Every method may be called again after a crash at any point and picks up what
is there: branches are reused (never reset), and a registered worktree whose
directory vanished is re-added. Nothing is removed while work could be lost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from langgraph_opencode.errors import ConfigurationError, GitError
from langgraph_opencode.tools.git._branches import RunBranches
from langgraph_opencode.tools.git._command import run_git
from langgraph_opencode.tools.git._commits import commit_everything, reset_worktree
from langgraph_opencode.tools.git._gitdir import checked_out_at, merge_in_progress
from langgraph_opencode.tools.git._layout import RunLayout, absolute
from langgraph_opencode.tools.git._locks import clear_stale_locks
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git._run_locks import RunLocks
from langgraph_opencode.tools.git._shared import SharedFiles
from langgraph_opencode.tools.git._worktrees import (
    ensure_detached_worktree,
    ensure_worktree,
    forget_missing_worktree,
    list_worktrees,
    status_entries,
)
from langgraph_opencode.tools.git.models import CommitResult, TaskWorktree

__all__ = ["RunWorktrees"]


class RunWorktrees:
    """The worktrees of one run: made, committed in, reset and removed."""

    def __init__(
        self,
        repo: Repository,
        layout: RunLayout,
        locks: RunLocks,
        branches: RunBranches,
        shared: SharedFiles,
    ) -> None:
        """The worktrees ``layout`` places, of ``branches``, in ``repo``.

        ``shared`` is recorded when the run's first task worktree is made.
        """
        self._repo = repo
        self._layout = layout
        self._locks = locks
        self._branches = branches
        self._shared = shared
        self._paths: dict[str, Path] = {}
        """Task worktrees found so far (this object lives for one step of the graph)."""

    async def create_task_worktree(self, task_id: str, *, path: Path | None) -> TaskWorktree:
        """Give a task its branch and worktree, reusing whatever exists (see ``GitRun``)."""
        branch = self._layout.task_branch(task_id)
        start = await self._branches.ensure_integration()
        where = absolute(path or self._layout.task_path(task_id))
        async with self._locks.admin:
            await self._shared.record_if_missing()
            where, created, repaired = await ensure_worktree(
                self._repo.root,
                branch,
                where,
                start=start,
                owned=self._layout.run_dir,
                common_dir=self._repo.common_dir,
            )
        self._paths[task_id] = where
        return TaskWorktree(
            run_id=self._layout.run_id,
            task_id=task_id,
            branch=branch,
            path=where,
            # A new branch starts at ``start`` (no hook runs to move it).
            head=start if created else await self._branches.head(branch),
            created=created,
            repaired=repaired,
        )

    async def task_path(self, task_id: str) -> Path:
        """The directory of a task's worktree.

        Raises:
            GitError: The task has no worktree.
        """
        branch = self._layout.task_branch(task_id)
        known = self._paths.get(task_id, self._layout.task_path(task_id))
        if await checked_out_at(known, f"refs/heads/{branch}", self._repo.common_dir):
            self._paths[task_id] = known
            return known
        for entry in await list_worktrees(self._repo.root):
            if entry.branch == branch and not entry.missing:
                self._paths[task_id] = entry.path
                return entry.path
        raise GitError(f"task {task_id!r} has no worktree: call create_task_worktree first")

    async def commit_all(self, task_id: str, message: str) -> CommitResult | None:
        """Commit everything in a task's worktree, unless a refresh merge is pending there."""
        if not message.strip():
            raise ConfigurationError("a commit message must not be empty")
        wt = await self.task_path(task_id)
        if await merge_in_progress(wt):
            raise GitError(
                f"a refresh merge is in progress in {wt}: resolve the conflicts, then call "
                "finish_refresh (or abort_refresh) instead of commit_all"
            )
        return await commit_everything(wt, message, self._repo.identity)

    async def discard_uncommitted(self, task_id: str, *, to: str) -> None:
        """Reset a task's worktree to commit ``to``, tracked and untracked files."""
        wt = await self.task_path(task_id)
        await clear_stale_locks(wt)
        await reset_worktree(wt, to)

    async def remove_task_worktree(self, task_id: str, *, force: bool, delete_branch: bool) -> bool:
        """Remove a task's worktree (and branch), refusing whenever work could be lost."""
        branch = self._layout.task_branch(task_id)
        merged = not await self._branches.exists(branch) or await self._branches.is_merged(task_id)
        if not merged and (delete_branch or not force):
            count = await self._branches.count_unmerged(branch)
            integration = self._layout.integration_branch
            raise GitError(
                f"{branch} has {count} commit(s) not merged into {integration}: "
                "merge it first, or pass force=True to remove only its worktree "
                "(the branch is never deleted unmerged)"
            )
        removed = await self.remove_worktree_of(branch)
        if delete_branch and await self._branches.exists(branch):
            await self._branches.delete(branch)
            removed = True
        return removed

    async def remove_worktree_of(self, branch: str) -> bool:
        """Remove the worktree ``branch`` is checked out in, if clean; whether there was one.

        Raises:
            GitError: A merge is in progress there, or it has uncommitted
                changes or untracked files.
        """
        self._paths.clear()
        async with self._locks.admin:
            for entry in await list_worktrees(self._repo.root):
                if entry.branch != branch:
                    continue
                if entry.missing:
                    await forget_missing_worktree(self._repo.root, entry)
                    return True
                if await merge_in_progress(entry.path):
                    raise GitError(
                        f"refusing to remove {entry.path}: a merge is in progress there; "
                        "finish or abort it first"
                    )
                if dirty := await status_entries(entry.path):
                    raise GitError(
                        f"refusing to remove {entry.path}: it has uncommitted changes or "
                        f"untracked files ({', '.join(e.path for e in dirty[:10])}); commit "
                        "or move them first"
                    )
                # git refuses any worktree with submodules; it was found clean above
                # (a submodule's own changes count), which is all --force skips.
                force = ("--force",) if await _has_submodules(entry.path) else ()
                await run_git(self._repo.root, "worktree", "remove", *force, str(entry.path))
                return True
        return False

    async def planner_checkout(self, commit: str) -> Path:
        """A clean detached checkout of ``commit`` for the planner, made if missing."""
        async with self._locks.admin:
            return await ensure_detached_worktree(
                self._repo.root, self._layout.planner_path, commit
            )

    async def remove_planner_checkout(self) -> bool:
        """Remove the planner's checkout, whatever is in it; whether there was one."""
        async with self._locks.admin:
            for entry in await list_worktrees(self._repo.root):
                if entry.path == self._layout.planner_path and entry.branch is None:
                    if entry.missing:
                        await forget_missing_worktree(self._repo.root, entry)
                    else:
                        await run_git(
                            self._repo.root, "worktree", "remove", "--force", str(entry.path)
                        )
                    return True
        return False


async def _has_submodules(worktree: Path) -> bool:
    return await asyncio.to_thread((worktree / ".gitmodules").is_file)
