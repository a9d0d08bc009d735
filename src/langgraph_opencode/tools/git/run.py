"""One run's branches and worktrees: create, commit, diff, merge, refresh, clean up.

:class:`GitRun` is a facade: each concept lives in a collaborator of its own,
which holds what it needs (the repository, the run's names and paths, locks)::

    RunLayout      (_layout.py)         names and paths: branches, worktrees, run_dir
    RunLocks       (_run_locks.py)      the merge lock of the run, the admin lock of the repo
    RunBranches    (_branches.py)       integration and task branches, what they hold, diffs
    SharedFiles    (_shared.py)         the shared git files' record, and putting them back
    RunWorktrees   (_run_worktrees.py)  task worktrees, the planner's checkout, removal
    Merging        (_merging.py)        task into integration, integration into a task
    Reattaching    (_reattach.py)       a task worktree put back on its branch
    inventory      (_inventory.py)      what the run left in the repository

See :mod:`~langgraph_opencode.tools.git._layout` for where a run puts things.
The user's branch, index and working tree are never touched.

Every method may be called again after a crash at any point and picks up what
is there: branches are reused (never reset), a registered worktree whose
directory vanished is re-added, a merge interrupted in the integration worktree
is aborted before the next one, and a task merged already is reported as such.

Concurrency: one process drives a run. Within it, merges are serialised by an
``asyncio.Lock`` shared by every :class:`GitRun` of the same repository and run
id, and worktree creation and removal by a lock per repository. Operations on
different tasks may run concurrently; operations on one task must not.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from langgraph_opencode.tools.git._branches import DEFAULT_DIFF_CHARS, RunBranches
from langgraph_opencode.tools.git._inventory import inventory
from langgraph_opencode.tools.git._layout import RunLayout
from langgraph_opencode.tools.git._merging import Merging
from langgraph_opencode.tools.git._reattach import Reattaching
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git._run_locks import RunLocks
from langgraph_opencode.tools.git._run_worktrees import RunWorktrees
from langgraph_opencode.tools.git._shared import SharedFiles
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

__all__ = ["DEFAULT_DIFF_CHARS", "GitRun"]


class GitRun:
    """The branches and worktrees of one run; get one from :meth:`Repo.run`.

    It implements :class:`~langgraph_opencode.tools.git.protocol.GitOperations`.

    Attributes:
        repo: The user's repository.
        run_id: The run's id, part of every branch name.
        run_dir: The directory holding the run's worktrees.
        integration_branch: ``lgoc/<run_id>/integration``.
        integration_path: The integration branch's worktree.
        planner_path: The planner's checkout of the run's start.
    """

    def __init__(self, repo: Repository, run_id: str, *, run_dir: Path | None = None) -> None:
        """The run ``run_id`` of ``repo``, its worktrees under ``run_dir`` (see :meth:`Repo.run`).

        Raises:
            ConfigurationError: ``run_id`` is not a usable id.
        """
        self.repo = repo
        self._layout = layout = RunLayout(repo.common_dir, run_id, run_dir=run_dir)
        self.run_id = layout.run_id
        self.run_dir = layout.run_dir
        self.integration_branch = layout.integration_branch
        self.integration_path = layout.integration_path
        self.planner_path = layout.planner_path
        locks = RunLocks(repo.common_dir, run_id)
        self._branches = RunBranches(repo, layout)
        self._shared = SharedFiles(repo, layout, locks)
        self._worktrees = RunWorktrees(repo, layout, locks, self._branches, self._shared)
        self._merging = Merging(repo, layout, locks, self._branches, self._worktrees)
        self._reattaching = Reattaching(repo, layout)

    def __repr__(self) -> str:
        return f"GitRun({str(self.repo.root)!r}, {self.run_id!r})"

    @property
    def repo_root(self) -> Path:
        """The top directory of the user's working tree."""
        return self.repo.root

    async def repo_status(self) -> WorkingTreeStatus:
        """Report the user's branch, HEAD and uncommitted files, changing nothing.

        The run works from the HEAD commit, so uncommitted changes are not part
        of it: tell the user.
        """
        return await self.repo.status()

    # Branches.

    def task_branch(self, task_id: str) -> str:
        """Return the branch name of a task, ``lgoc/<run_id>/<task_id>``.

        Raises:
            ConfigurationError: ``task_id`` is not a usable id, or is reserved.
        """
        return self._layout.task_branch(task_id)

    async def check_namespace(self) -> None:
        """Refuse to start when a branch of the user's is in the way of the run's branches.

        Git cannot hold a branch ``lgoc`` (or ``lgoc/<run_id>``) and the run's
        ``lgoc/<run_id>/...`` branches at once.

        Raises:
            ConfigurationError: Such a branch exists; the message says how to move it.
        """
        await self._branches.check_namespace()

    async def ensure_integration_branch(self) -> str:
        """Create the integration branch at the user's HEAD unless it exists; return its head."""
        return await self._branches.ensure_integration()

    async def integration_head(self) -> str | None:
        """The integration branch's head, ``None`` before the branch exists."""
        return await self._branches.integration_head()

    async def is_merged(self, task_id: str) -> bool:
        """Whether every commit of the task branch is in the integration branch."""
        return await self._branches.is_merged(task_id)

    async def task_head(self, task_id: str) -> str:
        """The commit at the head of the task branch."""
        return await self._branches.head(self.task_branch(task_id))

    async def unmerged_commits(self, task_id: str) -> list[str]:
        """The task branch's commits that the integration branch lacks, oldest first."""
        return await self._branches.unmerged_commits(task_id)

    async def diff(self, task_id: str, *, max_chars: int = DEFAULT_DIFF_CHARS) -> TaskDiff:
        """Return what a task branch changes since its merge base with integration.

        Only committed work is included: call :meth:`commit_all` first.

        Args:
            task_id: The task.
            max_chars: Cut the diff text at the last line break before this many
                characters and set ``truncated``.
        """
        return await self._branches.diff(task_id, max_chars=max_chars)

    async def tracked_files(self, commit: str) -> list[str]:
        """The paths of the files ``commit`` holds (``git ls-tree -r``), as git sorts them."""
        return await self._branches.tracked_files(commit)

    # Worktrees.

    async def create_task_worktree(self, task_id: str, *, path: Path | None = None) -> TaskWorktree:
        """Give a task its branch and worktree, reusing whatever exists.

        A new branch starts at the integration head. An existing branch is
        checked out as it is, never reset, so no commit is lost after a crash.

        Args:
            task_id: The task's id (letters, digits, ``.``, ``_``, ``-``).
            path: Where the worktree goes (default ``<run_dir>/worktrees/<task_id>``).

        The run's first task worktree also records the repository's shared git
        files, for :meth:`undo_shared_changes`.

        Raises:
            GitError: ``path`` exists with other content, or the branch is
                checked out somewhere this run does not own.
        """
        return await self._worktrees.create_task_worktree(task_id, path=path)

    async def task_path(self, task_id: str) -> Path:
        """Return the directory of a task's worktree.

        Raises:
            GitError: The task has no worktree (call :meth:`create_task_worktree`).
        """
        return await self._worktrees.task_path(task_id)

    async def commit_all(self, task_id: str, message: str) -> CommitResult | None:
        """Commit everything in a task's worktree (``git add -A``) as the orchestrator.

        Files excluded by ``.gitignore`` are not committed; they are listed in
        :attr:`CommitResult.ignored` so nothing is left out silently.

        Returns:
            The commit, or ``None`` when nothing had changed.

        Raises:
            ConfigurationError: ``message`` is empty.
            GitError: A refresh merge is waiting for :meth:`finish_refresh`.
        """
        return await self._worktrees.commit_all(task_id, message)

    async def discard_uncommitted(self, task_id: str, *, to: str = "HEAD") -> None:
        """Put a task's worktree back to a commit (tracked and untracked files).

        For what acceptance checks leave behind (caches, build output) once the
        task's work is committed; ignored files are kept. Never call it before
        ``commit_all``: it deletes uncommitted work.

        Args:
            task_id: The task.
            to: The commit the task branch is reset to: the one checked, which
                also undoes commits a check made.
        """
        await self._worktrees.discard_uncommitted(task_id, to=to)

    async def reattach(self, task_id: str, path: Path) -> Reattached | None:
        """Check the task branch out again in its worktree at ``path``, keeping the work there.

        For an agent that switched its worktree to another branch or a
        detached HEAD (see :mod:`~langgraph_opencode.tools.git._reattach`).

        Args:
            task_id: The task.
            path: The task's worktree, as recorded when it was made.

        Returns:
            What was done, or ``None`` when the task branch is checked out (at
            ``path`` or elsewhere): nothing to do.

        Raises:
            GitError: Nothing is registered at ``path``; a merge of the
                agent's own is in progress there; or the commits found there
                conflict with the task branch's (the merge was undone and the
                worktree left as it was found, so nothing is lost).
        """
        return await self._reattaching.reattach(task_id, path)

    async def remove_task_worktree(
        self, task_id: str, *, force: bool = False, delete_branch: bool = False
    ) -> bool:
        """Remove a task's worktree, refusing whenever work could be lost.

        Args:
            task_id: The task.
            force: Remove the worktree even though its branch is not merged
                (the branch and its commits are kept).
            delete_branch: Also delete the branch; only ever done when it is
                fully merged into integration.

        Returns:
            Whether anything was removed.

        Raises:
            GitError: The branch is not merged (and not ``force``), the
                worktree has uncommitted changes or untracked files, or
                ``delete_branch`` was asked for an unmerged branch.
        """
        return await self._worktrees.remove_task_worktree(
            task_id, force=force, delete_branch=delete_branch
        )

    async def planner_checkout(self, commit: str) -> Path:
        """A clean checkout of ``commit`` (detached) for the planner to read, made if missing.

        The planner sees what the tasks start from, not the user's working
        tree with its uncommitted and untracked files.
        """
        return await self._worktrees.planner_checkout(commit)

    async def remove_planner_checkout(self) -> bool:
        """Remove the planner's checkout; whether there was one.

        A read-only agent read it and no branch holds anything of it, so
        whatever is in it goes (``--force``).
        """
        return await self._worktrees.remove_planner_checkout()

    # Merges.

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
        return await self._merging.merge(task_id, message=message)

    async def refresh(self, task_id: str, *, message: str | None = None) -> RefreshResult:
        """Merge the integration head into a task branch, in its worktree.

        On conflict the merge is left in progress with conflict markers in the
        files, for the task's agent to resolve; then call :meth:`finish_refresh`.
        Calling ``refresh`` again while the merge is pending reports the paths
        that still conflict, or finishes the merge when none do.

        Raises:
            GitError: The worktree has uncommitted changes (commit them first).
        """
        return await self._merging.refresh(task_id, message=message)

    async def finish_refresh(self, task_id: str) -> RefreshResult:
        """Commit a refresh merge once its conflicts are resolved (``git add -A``).

        Raises:
            MergeConflict: Files still hold conflict markers; nothing was committed.
            RefreshAborted: No refresh merge is in progress and the task branch
                does not contain the integration head: it was never started,
                or was undone (``git merge --abort``); call :meth:`refresh`.
        """
        return await self._merging.finish_refresh(task_id)

    async def abort_refresh(self, task_id: str) -> None:
        """Abandon a pending refresh merge, restoring the task worktree's last commit."""
        await self._merging.abort_refresh(task_id)

    def integration_checkout(self) -> AbstractAsyncContextManager[Path]:
        """The integration worktree, clean at the branch's head, to run commands in.

        Use it as ``async with run.integration_checkout() as worktree:``. No
        merge runs meanwhile; whatever the commands leave behind is removed after.
        """
        return self._merging.integration_checkout()

    async def remove_integration_worktree(self) -> bool:
        """Remove the integration worktree (the branch stays); refused if it is not clean."""
        return await self._merging.remove_integration_worktree()

    # The repository's shared files, and what is left.

    async def undo_shared_changes(self, task_id: str) -> SharedChanges | None:
        """Put the repository's shared git files back as the run recorded them.

        Call it after each turn of an agent working in a task's worktree: a
        ``git config`` there writes the repository's shared ``.git/config``, and
        a hook written into ``.git/hooks`` would run on the user's next
        checkout. The changed versions are kept in the run's directory.

        Returns:
            What was put back, or ``None`` when nothing had changed (or the run
            had no record yet: one is made now).

        Raises:
            GitError: A file to put back stayed locked by a git command.
        """
        return await self._shared.undo(task_id)

    async def inventory(self) -> RunInventory:
        """List the run's branches and worktrees: what is left behind."""
        return await inventory(self.repo, self._layout, self._branches)
