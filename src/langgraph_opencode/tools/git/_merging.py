"""Merging: task branches into integration, and integration back into a task."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from langgraph_opencode.errors import GitError, MergeConflict, RefreshAborted
from langgraph_opencode.tools.git._base import RunBase, split_z
from langgraph_opencode.tools.git._command import command_error, run_git
from langgraph_opencode.tools.git._locks import clear_stale_locks
from langgraph_opencode.tools.git._worktrees import (
    conflict_marker_paths,
    ensure_worktree,
    merge_in_progress,
    status_entries,
    unmerged_paths,
)
from langgraph_opencode.tools.git.models import MergeResult, RefreshResult

__all__ = ["MergingRun"]


class MergingRun(RunBase):
    """Merges of one run, serialised per run."""

    async def merge(self, task_id: str, *, message: str | None = None) -> MergeResult:
        """Merge a task branch into integration (``--no-ff``), in the integration worktree.

        Merges of one run are serialised. A task already merged is reported
        with ``already_merged=True`` instead of being merged twice, and with
        the commit that merged it, not whatever the integration head is by now
        (after a crash in a loop of merges, several tasks are merged already).

        Raises:
            MergeConflict: The merge conflicted. It was aborted: the
                integration worktree is clean and the task branch untouched.
            GitError: The task's worktree has uncommitted changes or an
                unfinished refresh, which the merge would silently leave out.
        """
        branch = self.task_branch(task_id)
        message = message or f"Merge task {task_id} ({branch})"
        async with self._merge_lock:
            await self._refuse_unfinished_task(task_id)
            wt = await self._ready_integration_worktree()
            head = await self._branch_head(branch)
            if await self.repo.is_ancestor(head, self.integration_branch):
                sha = await self._merge_commit_of(head)
                return MergeResult(task_id=task_id, branch=branch, sha=sha, already_merged=True)
            before = await self._head_of(wt)
            out = await run_git(
                wt,
                "merge",
                "--no-ff",
                "--no-edit",
                "-m",
                message,
                branch,
                check=False,
                identity=self.repo.identity,
            )
            if out.ok:
                after = await self._head_of(wt)
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
                raise command_error(out, f"merging {branch} into {self.integration_branch} failed")
            raise MergeConflict(
                f"merging {branch} into {self.integration_branch} conflicts in "
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
        listed = await self.repo.git(
            "rev-list",
            "--first-parent",
            "--ancestry-path",
            "--reverse",
            "--parents",
            f"^{head}",
            self.integration_branch,
            "--",
        )
        first = listed.stdout.split("\n", 1)[0].split()
        if not first or first[1:2] == [head]:
            return head  # on the first-parent line itself: nothing was merged for it
        return first[0]

    async def refresh(self, task_id: str, *, message: str | None = None) -> RefreshResult:
        """Merge the integration head into a task branch, in its worktree.

        On conflict the merge is left in progress with conflict markers in the
        files, for the task's agent to resolve; then call :meth:`finish_refresh`.
        Calling ``refresh`` again while the merge is pending reports the paths
        that still conflict, or finishes the merge when none do.

        Raises:
            GitError: The worktree has uncommitted changes (commit them first).
        """
        branch = self.task_branch(task_id)
        wt = await self.task_path(task_id)
        if await merge_in_progress(wt):
            conflicts = await conflict_marker_paths(wt)
            if not conflicts:
                return await self.finish_refresh(task_id)
            return RefreshResult(
                task_id=task_id, branch=branch, head=await self._head_of(wt), conflicts=conflicts
            )
        if dirty := await status_entries(wt):
            raise GitError(
                f"{wt} has uncommitted changes ({', '.join(e.path for e in dirty[:10])}): "
                "commit them (commit_all) before refreshing"
            )
        await clear_stale_locks(wt)
        await self.ensure_integration_branch()
        head = await self._head_of(wt)
        if await self.repo.is_ancestor(self.integration_branch, head):
            return RefreshResult(task_id=task_id, branch=branch, head=head, up_to_date=True)
        message = message or f"Merge {self.integration_branch} into {branch}"
        out = await run_git(
            wt,
            "merge",
            "--ff",
            "--no-edit",
            "-m",
            message,
            self.integration_branch,
            check=False,
            identity=self.repo.identity,
        )
        if out.ok:
            return RefreshResult(task_id=task_id, branch=branch, head=await self._head_of(wt))
        conflicts = await unmerged_paths(wt)
        if not conflicts:
            if await merge_in_progress(wt):
                await run_git(wt, "merge", "--abort")
            raise command_error(out, f"merging {self.integration_branch} into {branch} failed")
        return RefreshResult(task_id=task_id, branch=branch, head=head, conflicts=conflicts)

    async def finish_refresh(self, task_id: str) -> RefreshResult:
        """Commit a refresh merge once its conflicts are resolved (``git add -A``).

        Raises:
            MergeConflict: Files still hold conflict markers; nothing was committed.
            RefreshAborted: No refresh merge is in progress and the task branch
                does not contain the integration head: it was never started,
                or was undone (``git merge --abort``); call :meth:`refresh`.
        """
        branch = self.task_branch(task_id)
        wt = await self.task_path(task_id)
        if not await merge_in_progress(wt):
            head = await self._head_of(wt)
            if await self.repo.is_ancestor(self.integration_branch, head):
                return RefreshResult(task_id=task_id, branch=branch, head=head, up_to_date=True)
            raise RefreshAborted(
                f"no refresh merge is in progress in {wt} and {branch} lacks "
                f"{self.integration_branch}'s head: call refresh (again)"
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
            wt, "commit", "--quiet", "--no-verify", "--no-edit", identity=self.repo.identity
        )
        return RefreshResult(task_id=task_id, branch=branch, head=await self._head_of(wt))

    async def abort_refresh(self, task_id: str) -> None:
        """Abandon a pending refresh merge, restoring the task worktree's last commit."""
        wt = await self.task_path(task_id)
        if await merge_in_progress(wt):
            await run_git(wt, "merge", "--abort")

    @contextlib.asynccontextmanager
    async def integration_checkout(self) -> AsyncIterator[Path]:
        """The integration worktree, clean at the branch's head, to run commands in.

        No merge runs meanwhile; whatever the commands leave behind is removed after.
        """
        async with self._merge_lock:
            wt = await self._ready_integration_worktree()
            try:
                yield wt
            finally:
                await run_git(wt, "reset", "--quiet", "--hard", "HEAD")
                await run_git(wt, "clean", "--quiet", "-fd")

    async def _ready_integration_worktree(self) -> Path:
        start = await self.ensure_integration_branch()
        async with self._admin_lock:
            wt, _, _ = await ensure_worktree(
                self.repo.root,
                self.integration_branch,
                self.integration_path,
                start=start,
                owned=self.run_dir,
            )
        await clear_stale_locks(wt)  # left by a git command killed with the orchestrator
        if await merge_in_progress(wt):  # left by a crash in the middle of a merge
            await run_git(wt, "merge", "--abort")
        if await status_entries(wt):
            # This worktree only ever holds the run's own merges, and every
            # finished merge is a commit: what is left is an interrupted merge,
            # which is redone from the task branch. No user work lives here.
            await run_git(wt, "reset", "--quiet", "--hard", "HEAD")
            await run_git(wt, "clean", "--quiet", "-fd")
        return wt

    async def _refuse_unfinished_task(self, task_id: str) -> None:
        try:
            wt = await self.task_path(task_id)
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
