"""Merging: task branches into integration, and integration back into a task.

Merges into the integration branch happen in its own worktree, one at a time
per run; an interrupted one is aborted before the next, and a task merged
already is reported as such. A refresh (integration into a task) happens in
the task's worktree and may stop on conflicts for the task's agent to resolve.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from langgraph_opencode.errors import GitError, MergeConflict, RefreshAborted
from langgraph_opencode.tools.git._branches import RunBranches
from langgraph_opencode.tools.git._command import command_error, run_git, split_z
from langgraph_opencode.tools.git._commits import reset_worktree
from langgraph_opencode.tools.git._gitdir import head_of, merge_in_progress
from langgraph_opencode.tools.git._layout import RunLayout
from langgraph_opencode.tools.git._locks import clear_stale_locks
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git._run_locks import RunLocks
from langgraph_opencode.tools.git._run_worktrees import RunWorktrees
from langgraph_opencode.tools.git._worktrees import (
    conflict_marker_paths,
    ensure_worktree,
    status_entries,
    unmerged_paths,
)
from langgraph_opencode.tools.git.models import MergeResult, RefreshResult

__all__ = ["Merging"]


class Merging:
    """The merges of one run, into its integration branch and into its tasks."""

    def __init__(
        self,
        repo: Repository,
        layout: RunLayout,
        locks: RunLocks,
        branches: RunBranches,
        worktrees: RunWorktrees,
    ) -> None:
        """Merges between the branches of ``layout``, in the worktrees of ``worktrees``."""
        self._repo = repo
        self._layout = layout
        self._locks = locks
        self._branches = branches
        self._worktrees = worktrees

    @property
    def _integration(self) -> str:
        return self._layout.integration_branch

    async def merge(self, task_id: str, *, message: str | None) -> MergeResult:
        """Merge a task branch into integration (``--no-ff``); see ``GitRun.merge``."""
        branch = self._layout.task_branch(task_id)
        message = message or f"Merge task {task_id} ({branch})"
        async with self._locks.merge:
            await self._refuse_unfinished_task(task_id)
            wt = await self._ready_integration_worktree()
            head = await self._branches.head(branch)
            if await self._repo.is_ancestor(head, self._integration):
                sha = await self._merge_commit_of(head)
                return MergeResult(task_id=task_id, branch=branch, sha=sha, already_merged=True)
            before = await head_of(wt)
            out = await run_git(
                wt,
                "merge",
                "--no-ff",
                "--no-edit",
                "-m",
                message,
                branch,
                check=False,
                identity=self._repo.identity,
            )
            if out.ok:
                after = await head_of(wt)
                files = await run_git(wt, "diff", "--name-only", "-z", before, after)
                return MergeResult(
                    task_id=task_id,
                    branch=branch,
                    sha=after,
                    already_merged=False,
                    files=split_z(files.stdout),
                )
            paths = await unmerged_paths(wt)
            if await merge_in_progress(wt):
                await run_git(wt, "merge", "--abort")
            if not paths:
                raise command_error(out, f"merging {branch} into {self._integration} failed")
            raise MergeConflict(
                f"merging {branch} into {self._integration} conflicts in "
                f"{', '.join(paths)}; the merge was aborted and {branch} is intact: "
                "refresh the task (refresh) and have its agent resolve the conflicts",
                paths=paths,
                command=out.command,
                stderr=out.stderr.strip(),
            )

    async def _merge_commit_of(self, head: str) -> str:
        """The integration commit that merged ``head`` (a task branch's head, merged).

        The oldest commit on the integration branch's first-parent line that
        contains ``head``: its ``--no-ff`` merge, or ``head`` itself when it
        lies on that line (a task that committed nothing of its own).
        """
        listed = await self._repo.git(
            "rev-list",
            "--first-parent",
            "--ancestry-path",
            "--reverse",
            "--parents",
            f"^{head}",
            self._integration,
            "--",
        )
        first = listed.stdout.split("\n", 1)[0].split()
        if not first or first[1:2] == [head]:
            return head  # on the first-parent line itself: nothing was merged for it
        return first[0]

    async def refresh(self, task_id: str, *, message: str | None) -> RefreshResult:
        """Merge the integration head into a task branch; see ``GitRun.refresh``."""
        branch = self._layout.task_branch(task_id)
        wt = await self._worktrees.task_path(task_id)
        if await merge_in_progress(wt):
            conflicts = await conflict_marker_paths(wt)
            if not conflicts:
                return await self.finish_refresh(task_id)
            return RefreshResult(
                task_id=task_id, branch=branch, head=await head_of(wt), conflicts=conflicts
            )
        if dirty := await status_entries(wt):
            raise GitError(
                f"{wt} has uncommitted changes ({', '.join(e.path for e in dirty[:10])}): "
                "commit them (commit_all) before refreshing"
            )
        await clear_stale_locks(wt)
        await self._branches.ensure_integration()
        head = await head_of(wt)
        if await self._repo.is_ancestor(self._integration, head):
            return RefreshResult(task_id=task_id, branch=branch, head=head, up_to_date=True)
        message = message or f"Merge {self._integration} into {branch}"
        out = await run_git(
            wt,
            "merge",
            "--ff",
            "--no-edit",
            "-m",
            message,
            self._integration,
            check=False,
            identity=self._repo.identity,
        )
        if out.ok:
            return RefreshResult(task_id=task_id, branch=branch, head=await head_of(wt))
        conflicts = await unmerged_paths(wt)
        if not conflicts:
            if await merge_in_progress(wt):
                await run_git(wt, "merge", "--abort")
            raise command_error(out, f"merging {self._integration} into {branch} failed")
        return RefreshResult(task_id=task_id, branch=branch, head=head, conflicts=conflicts)

    async def finish_refresh(self, task_id: str) -> RefreshResult:
        """Commit a refresh merge once its conflicts are resolved; see ``GitRun.finish_refresh``."""
        branch = self._layout.task_branch(task_id)
        wt = await self._worktrees.task_path(task_id)
        if not await merge_in_progress(wt):
            head = await head_of(wt)
            if await self._repo.is_ancestor(self._integration, head):
                return RefreshResult(task_id=task_id, branch=branch, head=head, up_to_date=True)
            raise RefreshAborted(
                f"no refresh merge is in progress in {wt} and {branch} lacks "
                f"{self._integration}'s head: call refresh (again)"
            )
        if conflicts := await conflict_marker_paths(wt):
            raise MergeConflict(
                f"{', '.join(conflicts)} in {wt} still hold conflict markers: "
                "resolve them before finishing the refresh",
                paths=conflicts,
            )
        await clear_stale_locks(wt)
        await run_git(wt, "add", "-A")
        await run_git(
            wt, "commit", "--quiet", "--no-verify", "--no-edit", identity=self._repo.identity
        )
        return RefreshResult(task_id=task_id, branch=branch, head=await head_of(wt))

    async def abort_refresh(self, task_id: str) -> None:
        """Abandon a pending refresh merge, restoring the task worktree's last commit."""
        wt = await self._worktrees.task_path(task_id)
        if await merge_in_progress(wt):
            await run_git(wt, "merge", "--abort")

    @contextlib.asynccontextmanager
    async def integration_checkout(self) -> AsyncIterator[Path]:
        """The integration worktree, clean at the branch's head; cleaned again after."""
        async with self._locks.merge:
            wt = await self._ready_integration_worktree()
            try:
                yield wt
            finally:
                await reset_worktree(wt)

    async def remove_integration_worktree(self) -> bool:
        """Remove the integration worktree (the branch stays); refused if it is not clean."""
        async with self._locks.merge:
            return await self._worktrees.remove_worktree_of(self._integration)

    async def _ready_integration_worktree(self) -> Path:
        start = await self._branches.ensure_integration()
        async with self._locks.admin:
            wt, _, _ = await ensure_worktree(
                self._repo.root,
                self._integration,
                self._layout.integration_path,
                start=start,
                owned=self._layout.run_dir,
                common_dir=self._repo.common_dir,
            )
        await clear_stale_locks(wt)  # left by a git command killed with the orchestrator
        if await merge_in_progress(wt):  # left by a crash in the middle of a merge
            await run_git(wt, "merge", "--abort")
        if await status_entries(wt):
            # This worktree only ever holds the run's own merges, and every
            # finished merge is a commit: what is left is an interrupted merge,
            # which is redone from the task branch. No user work lives here.
            await reset_worktree(wt)
        return wt

    async def _refuse_unfinished_task(self, task_id: str) -> None:
        try:
            wt = await self._worktrees.task_path(task_id)
        except GitError:
            return  # no worktree: the branch is all there is
        if await merge_in_progress(wt):
            raise GitError(
                f"task {task_id!r} has an unfinished refresh merge in {wt}: finish it first"
            )
        if dirty := await status_entries(wt):
            raise GitError(
                f"task {task_id!r} has uncommitted changes in {wt} "
                f"({', '.join(e.path for e in dirty[:10])}) that a merge would leave out: "
                "commit them (commit_all) or discard them first"
            )
