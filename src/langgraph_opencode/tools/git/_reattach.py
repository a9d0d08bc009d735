"""Putting a task worktree back on its branch when its agent switched away.

An agent works in the task's worktree with the real ``git``: it may run
``git checkout -b x`` (or ``git switch``, ``git checkout <sha>``) and commit
there. The run finds task worktrees by branch, so such a worktree seems gone,
and its commits are not on the task branch. :meth:`Reattaching.reattach`
finds the worktree by its path instead and brings the work back: uncommitted
changes are committed where they are, then the task branch takes the commits
(fast-forward when it is behind, a merge when the two diverged) and is checked
out there again. Branches the agent made or moved are left as they are.
"""

from __future__ import annotations

from pathlib import Path

from langgraph_opencode.errors import GitError
from langgraph_opencode.tools.git._command import run_git
from langgraph_opencode.tools.git._commits import commit_everything
from langgraph_opencode.tools.git._gitdir import checked_out_at, head_of, merge_in_progress
from langgraph_opencode.tools.git._layout import RunLayout, absolute
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git._worktrees import list_worktrees
from langgraph_opencode.tools.git.models import Reattached

__all__ = ["Reattaching"]


class Reattaching:
    """Task worktrees of one run put back on their branches."""

    def __init__(self, repo: Repository, layout: RunLayout) -> None:
        """The task worktrees of the run ``layout`` names, in ``repo``."""
        self._repo = repo
        self._layout = layout

    async def reattach(self, task_id: str, path: Path) -> Reattached | None:
        """Check the task branch out again at ``path``, keeping the work (``GitRun.reattach``)."""
        branch = self._layout.task_branch(task_id)
        if await checked_out_at(absolute(path), f"refs/heads/{branch}", self._repo.common_dir):
            return None  # where it was left: the common case, known without a process
        entries = await list_worktrees(self._repo.root)
        if any(e.branch == branch and not e.missing for e in entries):
            return None
        where = absolute(path)
        entry = next((e for e in entries if e.path == where and not e.missing), None)
        if entry is None:
            raise GitError(f"task {task_id!r} has no worktree: nothing is checked out at {where}")
        left_on = entry.branch
        place = left_on or "a detached HEAD"
        if await merge_in_progress(where):
            raise GitError(
                f"the worktree of task {task_id!r} ({where}) is on {place} with a merge in "
                f"progress: finish or abort that merge, then check out {branch} there"
            )
        committed = await commit_everything(
            where, f"{task_id}: uncommitted work found on {place}", self._repo.identity
        )
        found = await head_of(where)
        tip = await self._repo.resolve(f"refs/heads/{branch}")
        if tip is not None and await self._repo.is_ancestor(found, tip):
            how = "switched"  # nothing there that the task branch lacks
            await run_git(where, "checkout", "--quiet", branch)
        elif tip is None or await self._repo.is_ancestor(tip, found):
            how = "fast_forward"
            # The old value makes the update fail if the branch moved meanwhile.
            await self._repo.git(
                "update-ref",
                "-m",
                f"langgraph-opencode: the commits made on {place}",
                f"refs/heads/{branch}",
                found,
                tip or "",
            )
            await run_git(where, "checkout", "--quiet", branch)
        else:
            how = "merged"
            await self._merge_back(where, branch, found, left_on)
        return Reattached(
            task_id=task_id,
            branch=branch,
            left_on=left_on,
            found=found,
            committed=committed.sha if committed else None,
            how=how,
            head=await head_of(where),
        )

    async def _merge_back(self, where: Path, branch: str, found: str, left_on: str | None) -> None:
        """Merge ``found`` into ``branch`` checked out at ``where``; undo all on a conflict."""
        place = left_on or "a detached HEAD"
        await run_git(where, "checkout", "--quiet", branch)
        out = await run_git(
            where,
            "merge",
            "--no-ff",
            "--no-edit",
            "-m",
            f"Merge the commits made on {place} back into {branch}",
            found,
            check=False,
            identity=self._repo.identity,
        )
        if out.ok:
            return
        if await merge_in_progress(where):
            await run_git(where, "merge", "--abort")
        back = (left_on,) if left_on else ("--detach", found)
        await run_git(where, "checkout", "--quiet", *back)
        raise GitError(
            f"the worktree {where} was found on {place}, whose commits ({found[:12]}) conflict "
            f"with {branch}'s: both are kept as they were; merge them into {branch} and check "
            f"{branch} out there",
            command=out.command,
            stderr=out.stderr.strip(),
        )
