"""The state every part of :class:`~langgraph_opencode.tools.git.run.GitRun` shares."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from weakref import WeakValueDictionary

from langgraph_opencode.errors import ConfigurationError, GitError
from langgraph_opencode.tools.git._command import command_error, run_git
from langgraph_opencode.tools.git._locks import clear_stale_locks
from langgraph_opencode.tools.git._worktrees import list_worktrees
from langgraph_opencode.tools.git.models import CommitResult

if TYPE_CHECKING:
    from langgraph_opencode.tools.git.repo import Repo

__all__ = ["BRANCH_NAMESPACE", "RESERVED_TASK_IDS", "RunBase", "split_z"]

_K = TypeVar("_K")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_INTEGRATION = "integration"
_PLANNER = "planner"
BRANCH_NAMESPACE = "lgoc"
"""Every run's branches are ``lgoc/<run_id>/...``."""
RESERVED_TASK_IDS = frozenset({_INTEGRATION})
"""Names the run gives its own branches (``lgoc/<run_id>/integration``): not task ids."""
_RUN_LOCKS: WeakValueDictionary[tuple[Path, str], asyncio.Lock] = WeakValueDictionary()
_ADMIN_LOCKS: WeakValueDictionary[Path, asyncio.Lock] = WeakValueDictionary()


def _shared_lock(registry: WeakValueDictionary[_K, asyncio.Lock], key: _K) -> asyncio.Lock:
    lock = registry.get(key)
    if lock is None:
        lock = registry[key] = asyncio.Lock()
    return lock


def _check_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value) or ".." in value or value.endswith((".", ".lock")):
        raise ConfigurationError(
            f"invalid {kind} {value!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' and not ending in '.' or '.lock'"
        )
    return value


def split_z(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split("\0") if p)


class RunBase:
    """Names, paths, locks and lookups of one run."""

    def __init__(self, repo: Repo, run_id: str, *, run_dir: Path | None = None) -> None:
        self.repo = repo
        self.run_id = _check_id("run id", run_id)
        default = repo.common_dir / "langgraph-opencode" / "runs" / run_id
        self.run_dir = _absolute(run_dir or default)
        self.integration_branch = f"{BRANCH_NAMESPACE}/{run_id}/{_INTEGRATION}"
        self.integration_path = self.run_dir / _INTEGRATION
        self.planner_path = self.run_dir / _PLANNER
        self._merge_lock = _shared_lock(_RUN_LOCKS, (repo.common_dir, run_id))
        self._admin_lock = _shared_lock(_ADMIN_LOCKS, repo.common_dir)

    def __repr__(self) -> str:
        return f"GitRun({str(self.repo.root)!r}, {self.run_id!r})"

    def task_branch(self, task_id: str) -> str:
        """Return the branch name of a task, ``lgoc/<run_id>/<task_id>``."""
        _check_id("task id", task_id)
        if task_id in RESERVED_TASK_IDS:
            raise ConfigurationError(f"{task_id!r} is reserved; choose another task id")
        return f"{BRANCH_NAMESPACE}/{self.run_id}/{task_id}"

    async def check_namespace(self) -> None:
        """Refuse to start when a branch of the user's is in the way of the run's branches.

        Git cannot hold a branch ``lgoc`` (or ``lgoc/<run_id>``) and the run's
        ``lgoc/<run_id>/...`` branches at once.

        Raises:
            ConfigurationError: Such a branch exists; the message says how to move it.
        """
        if await self.repo.resolve(f"refs/heads/{self.integration_branch}"):
            return  # the run's branches exist already
        for blocker in (BRANCH_NAMESPACE, f"{BRANCH_NAMESPACE}/{self.run_id}"):
            if await self.repo.resolve(f"refs/heads/{blocker}"):
                raise ConfigurationError(
                    f"your branch {blocker!r} is in the way of the run's branches "
                    f"({self.integration_branch}, ...): git cannot have both; rename it "
                    f"(git branch -m {blocker} {blocker}-branch) and start the run again"
                )

    async def ensure_integration_branch(self) -> str:
        """Create the integration branch at the user's HEAD unless it exists; return its head."""
        ref = f"refs/heads/{self.integration_branch}"
        if sha := await self.repo.resolve(ref):
            return sha
        head = await self.repo.head()
        # The empty old value makes the update fail if the ref exists by now.
        out = await self.repo.git(
            "update-ref", "-m", f"langgraph-opencode: run {self.run_id}", ref, head, "", check=False
        )
        if out.ok:
            return head
        if sha := await self.repo.resolve(ref):  # created concurrently: keep that one
            return sha
        raise command_error(out, f"cannot create {self.integration_branch}")

    async def is_merged(self, task_id: str) -> bool:
        """Whether every commit of the task branch is in the integration branch."""
        head = await self._branch_head(self.task_branch(task_id))
        return await self.repo.is_ancestor(head, await self.ensure_integration_branch())

    async def task_head(self, task_id: str) -> str:
        """The commit at the head of the task branch."""
        return await self._branch_head(self.task_branch(task_id))

    async def unmerged_commits(self, task_id: str) -> list[str]:
        """The task branch's commits that the integration branch lacks, oldest first."""
        head = await self._branch_head(self.task_branch(task_id))
        listed = await self.repo.git(
            "rev-list", "--reverse", head, "--not", await self.ensure_integration_branch()
        )
        return listed.stdout.split()

    async def task_path(self, task_id: str) -> Path:
        """Return the directory of a task's worktree.

        Raises:
            GitError: The task has no worktree (call :meth:`create_task_worktree`).
        """
        branch = self.task_branch(task_id)
        for entry in await list_worktrees(self.repo.root):
            if entry.branch == branch and not entry.missing:
                return entry.path
        raise GitError(f"task {task_id!r} has no worktree: call create_task_worktree first")

    async def _branch_head(self, branch: str) -> str:
        sha = await self.repo.resolve(f"refs/heads/{branch}")
        if sha is None:
            raise GitError(f"branch {branch} does not exist: create the task's worktree first")
        return sha

    async def _head_of(self, worktree: Path) -> str:
        return (await run_git(worktree, "rev-parse", "HEAD")).stdout.strip()

    async def _commit_everything(self, worktree: Path, message: str) -> CommitResult | None:
        """Commit everything in ``worktree`` (``git add -A``) as the orchestrator, if anything."""
        await clear_stale_locks(worktree)  # left by a git command killed with the orchestrator
        await run_git(worktree, "add", "-A")
        staged = split_z((await run_git(worktree, "diff", "--cached", "--name-only", "-z")).stdout)
        if not staged:
            return None
        await run_git(
            worktree, "commit", "--quiet", "--no-verify", "-m", message, identity=self.repo.identity
        )
        ignored = await run_git(
            worktree, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"
        )
        return CommitResult(
            sha=await self._head_of(worktree), files=staged, ignored=split_z(ignored.stdout)
        )


def _absolute(path: Path) -> Path:
    """``path`` made absolute; the file system is asked only for a relative one."""
    return path if path.is_absolute() else path.resolve()
