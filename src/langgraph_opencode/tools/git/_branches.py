"""A run's branches: its integration branch, its task branches, and what they hold.

Only refs are read or written here (at the repository's root); no worktree
is touched.
"""

from __future__ import annotations

import asyncio

from langgraph_opencode.errors import ConfigurationError, GitError
from langgraph_opencode.tools.git._command import command_error, split_z
from langgraph_opencode.tools.git._layout import BRANCH_NAMESPACE, RunLayout
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git.models import TaskDiff

__all__ = ["DEFAULT_DIFF_CHARS", "RunBranches"]

DEFAULT_DIFF_CHARS = 200_000
"""Default cap on the diff text handed to a reviewer."""


class RunBranches:
    """The branches of one run in the user's repository."""

    def __init__(self, repo: Repository, layout: RunLayout) -> None:
        """The branches ``layout`` names, in ``repo``."""
        self._repo = repo
        self._layout = layout

    async def check_namespace(self) -> None:
        """Refuse to start when a branch of the user's is in the way of the run's branches.

        Raises:
            ConfigurationError: Such a branch exists; the message says how to move it.
        """
        integration = self._layout.integration_branch
        if await self._repo.resolve(f"refs/heads/{integration}"):
            return  # the run's branches exist already
        for blocker in (BRANCH_NAMESPACE, f"{BRANCH_NAMESPACE}/{self._layout.run_id}"):
            if await self._repo.resolve(f"refs/heads/{blocker}"):
                raise ConfigurationError(
                    f"your branch {blocker!r} is in the way of the run's branches "
                    f"({integration}, ...): git cannot have both; rename it "
                    f"(git branch -m {blocker} {blocker}-branch) and start the run again"
                )

    async def ensure_integration(self) -> str:
        """Create the integration branch at the user's HEAD unless it exists; return its head."""
        branch = self._layout.integration_branch
        ref = f"refs/heads/{branch}"
        if sha := await self._repo.resolve(ref):
            return sha
        head = await self._repo.head()
        # The empty old value makes the update fail if the ref exists by now.
        out = await self._repo.git(
            "update-ref",
            "-m",
            f"langgraph-opencode: run {self._layout.run_id}",
            ref,
            head,
            "",
            check=False,
        )
        if out.ok:
            return head
        if sha := await self._repo.resolve(ref):  # created concurrently: keep that one
            return sha
        raise command_error(out, f"cannot create {branch}")

    async def integration_head(self) -> str | None:
        """The integration branch's head, ``None`` before the branch exists."""
        return await self._repo.resolve(f"refs/heads/{self._layout.integration_branch}")

    async def head(self, branch: str) -> str:
        """The head of ``branch`` (a short name).

        Raises:
            GitError: The branch does not exist.
        """
        sha = await self._repo.resolve(f"refs/heads/{branch}")
        if sha is None:
            raise GitError(f"branch {branch} does not exist: create the task's worktree first")
        return sha

    async def exists(self, branch: str) -> bool:
        """Whether ``branch`` (a short name) exists."""
        return await self._repo.resolve(f"refs/heads/{branch}") is not None

    async def is_merged(self, task_id: str) -> bool:
        """Whether every commit of the task branch is in the integration branch."""
        head = await self.head(self._layout.task_branch(task_id))
        return await self._repo.is_ancestor(head, await self.ensure_integration())

    async def unmerged_commits(self, task_id: str) -> list[str]:
        """The task branch's commits that the integration branch lacks, oldest first."""
        head = await self.head(self._layout.task_branch(task_id))
        listed = await self._repo.git(
            "rev-list", "--reverse", head, "--not", await self.ensure_integration()
        )
        return listed.stdout.split()

    async def count_unmerged(self, rev: str) -> int:
        """How many commits of ``rev`` the integration branch lacks."""
        rng = f"{self._layout.integration_branch}..{rev}"
        return int((await self._repo.git("rev-list", "--count", rng)).stdout)

    async def delete(self, branch: str) -> None:
        """Delete ``branch``; callers make sure it is merged."""
        await self._repo.git("branch", "-D", branch)

    async def diff(self, task_id: str, *, max_chars: int = DEFAULT_DIFF_CHARS) -> TaskDiff:
        """What a task branch changes since its merge base with integration (cut)."""
        branch = self._layout.task_branch(task_id)
        head, integration = await asyncio.gather(self.head(branch), self.ensure_integration())
        base = (await self._repo.git("merge-base", integration, head)).stdout.strip()
        opts = ("--no-color", "--no-ext-diff", "--no-textconv", "-M", "--src-prefix=a/")
        rng = (base, head, "--")
        # Three reads of the same two commits: at once.
        text, stat, files = (
            out.stdout
            for out in await asyncio.gather(
                self._repo.git("diff", *opts, "--dst-prefix=b/", *rng),
                self._repo.git("diff", "--stat=100", "--no-color", "-M", *rng),
                self._repo.git("diff", "--name-only", "-z", "-M", *rng),
            )
        )
        cut = text
        if len(text) > max_chars:
            cut = text[:max_chars]
            cut = cut[: cut.rfind("\n") + 1] or cut
        return TaskDiff(
            branch=branch,
            base=base,
            head=head,
            text=cut,
            truncated=len(cut) < len(text),
            total_chars=len(text),
            stat=stat,
            files=split_z(files),
        )

    async def tracked_files(self, commit: str) -> list[str]:
        """The paths of the files ``commit`` holds, sorted as git lists them."""
        listed = await self._repo.git("ls-tree", "-r", "--name-only", commit)
        return listed.stdout.splitlines()
