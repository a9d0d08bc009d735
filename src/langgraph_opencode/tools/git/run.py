"""One run's branches and worktrees: create, commit, diff, merge, refresh, clean up.

Layout of a run ``R`` in the user's repository::

    lgoc/R/integration            branch: starts at the user's HEAD, collects merges
    lgoc/R/<task_id>              branch: one per task, from the integration head
    <run_dir>/integration         worktree of the integration branch (merges happen here)
    <run_dir>/worktrees/<task_id> worktree of a task branch (the agent works here)
    <run_dir>/planner             detached checkout of the run's start (the planner reads it)

``run_dir`` defaults to ``<repo>/.git/langgraph-opencode/runs/R``, inside the
git directory, so the user's ``git status`` never sees it. The user's branch,
index and working tree are never touched.

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

import asyncio
import time
from pathlib import Path

from langgraph_opencode.errors import ConfigurationError, GitError
from langgraph_opencode.tools.git._base import _absolute, split_z
from langgraph_opencode.tools.git._command import run_git
from langgraph_opencode.tools.git._locks import clear_stale_locks
from langgraph_opencode.tools.git._merging import MergingRun
from langgraph_opencode.tools.git._reattach import ReattachingRun
from langgraph_opencode.tools.git._shared import changed_keys, record, recorded, undo_changes
from langgraph_opencode.tools.git._worktrees import (
    ensure_detached_worktree,
    ensure_worktree,
    forget_missing_worktree,
    list_worktrees,
    merge_in_progress,
    status_entries,
)
from langgraph_opencode.tools.git.models import (
    BranchInfo,
    CommitResult,
    RunInventory,
    SharedChanges,
    TaskDiff,
    TaskWorktree,
    WorktreeInfo,
)

__all__ = ["DEFAULT_DIFF_CHARS", "GitRun"]

DEFAULT_DIFF_CHARS = 200_000
"""Default cap on the diff text handed to a reviewer."""


class GitRun(MergingRun, ReattachingRun):
    """The branches and worktrees of one run; get one from :meth:`Repo.run`.

    Attributes:
        repo: The user's repository.
        run_id: The run's id, part of every branch name.
        run_dir: The directory holding the run's worktrees.
        integration_branch: ``lgoc/<run_id>/integration``.
        integration_path: The integration branch's worktree.
        planner_path: The planner's checkout of the run's start.
    """

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
        branch = self.task_branch(task_id)
        start = await self.ensure_integration_branch()
        where = _absolute(path or self.run_dir / "worktrees" / task_id)
        async with self._admin_lock:
            if not await asyncio.to_thread(recorded, self.run_dir):
                await self._record_shared_files()
            where, created, repaired = await ensure_worktree(
                self.repo.root, branch, where, start=start, owned=self.run_dir
            )
        head = await self._branch_head(branch)
        return TaskWorktree(
            run_id=self.run_id,
            task_id=task_id,
            branch=branch,
            path=where,
            head=head,
            created=created,
            repaired=repaired,
        )

    async def commit_all(self, task_id: str, message: str) -> CommitResult | None:
        """Commit everything in a task's worktree (``git add -A``) as the orchestrator.

        Files excluded by ``.gitignore`` are not committed; they are listed in
        :attr:`CommitResult.ignored` so nothing is left out silently.

        Returns:
            The commit, or ``None`` when nothing had changed.

        Raises:
            GitError: A refresh merge is waiting for :meth:`finish_refresh`.
        """
        if not message.strip():
            raise ConfigurationError("a commit message must not be empty")
        wt = await self.task_path(task_id)
        if await merge_in_progress(wt):
            raise GitError(
                f"a refresh merge is in progress in {wt}: resolve the conflicts, then call "
                "finish_refresh (or abort_refresh) instead of commit_all"
            )
        return await self._commit_everything(wt, message)

    async def diff(self, task_id: str, *, max_chars: int = DEFAULT_DIFF_CHARS) -> TaskDiff:
        """Return what a task branch changes since its merge base with integration.

        Only committed work is included: call :meth:`commit_all` first.

        Args:
            task_id: The task.
            max_chars: Cut the diff text at the last line break before this many
                characters and set ``truncated``.
        """
        branch = self.task_branch(task_id)
        head = await self._branch_head(branch)
        await self.ensure_integration_branch()
        base = (await self.repo.git("merge-base", self.integration_branch, head)).stdout.strip()
        opts = ("--no-color", "--no-ext-diff", "--no-textconv", "-M", "--src-prefix=a/")
        rng = (base, head, "--")
        text = (await self.repo.git("diff", *opts, "--dst-prefix=b/", *rng)).stdout
        stat = (await self.repo.git("diff", "--stat=100", "--no-color", "-M", *rng)).stdout
        files = (await self.repo.git("diff", "--name-only", "-z", "-M", *rng)).stdout
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
        wt = await self.task_path(task_id)
        await clear_stale_locks(wt)
        await run_git(wt, "reset", "--quiet", "--hard", to)
        await run_git(wt, "clean", "--quiet", "-fd")

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
        branch = self.task_branch(task_id)
        exists = await self.repo.resolve(f"refs/heads/{branch}") is not None
        merged = not exists or await self.is_merged(task_id)
        if not merged and (delete_branch or not force):
            count = (
                await self.repo.git("rev-list", "--count", f"{self.integration_branch}..{branch}")
            ).stdout.strip()
            raise GitError(
                f"{branch} has {count} commit(s) not merged into {self.integration_branch}: "
                "merge it first, or pass force=True to remove only its worktree "
                "(the branch is never deleted unmerged)"
            )
        removed = await self._remove_worktree_of(branch)
        if delete_branch and await self.repo.resolve(f"refs/heads/{branch}"):
            await self.repo.git("branch", "-D", branch)
            removed = True
        return removed

    async def planner_checkout(self, commit: str) -> Path:
        """A clean checkout of ``commit`` (detached) for the planner to read, made if missing.

        The planner sees what the tasks start from, not the user's working
        tree with its uncommitted and untracked files.
        """
        async with self._admin_lock:
            return await ensure_detached_worktree(self.repo.root, self.planner_path, commit)

    async def remove_planner_checkout(self) -> bool:
        """Remove the planner's checkout; whether there was one.

        A read-only agent read it and no branch holds anything of it, so
        whatever is in it goes (``--force``).
        """
        async with self._admin_lock:
            for entry in await list_worktrees(self.repo.root):
                if entry.path == self.planner_path and entry.branch is None:
                    if entry.missing:
                        await forget_missing_worktree(self.repo.root, entry)
                    else:
                        await run_git(
                            self.repo.root, "worktree", "remove", "--force", str(entry.path)
                        )
                    return True
        return False

    async def remove_integration_worktree(self) -> bool:
        """Remove the integration worktree (the branch stays); refused if it is not clean."""
        async with self._merge_lock:
            return await self._remove_worktree_of(self.integration_branch)

    async def inventory(self) -> RunInventory:
        """List the run's branches and worktrees: what is left behind."""
        refs = await self.repo.git(
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            f"refs/heads/lgoc/{self.run_id}/",
        )
        pairs = [line.split(" ", 1) for line in refs.stdout.splitlines() if line]
        pairs.sort(key=lambda p: (p[0] != self.integration_branch, p[0]))
        branches = []
        for name, sha in pairs:
            count = 0
            if name != self.integration_branch:
                rng = f"{self.integration_branch}..{sha}"
                count = int((await self.repo.git("rev-list", "--count", rng)).stdout)
            branches.append(
                BranchInfo(name=name, sha=sha, merged=count == 0, unmerged_commits=count)
            )
        worktrees = []
        prefix = f"lgoc/{self.run_id}/"
        for entry in await list_worktrees(self.repo.root):
            in_run_dir = entry.path.is_relative_to(self.run_dir)
            if (entry.branch or "").startswith(prefix) or in_run_dir:
                dirty = None if entry.missing else bool(await status_entries(entry.path))
                worktrees.append(
                    WorktreeInfo(
                        path=entry.path,
                        branch=entry.branch,
                        head=entry.head,
                        missing=entry.missing,
                        dirty=dirty,
                    )
                )
        return RunInventory(
            run_id=self.run_id, branches=tuple(branches), worktrees=tuple(worktrees)
        )

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
        async with self._admin_lock:
            if not await asyncio.to_thread(recorded, self.run_dir):
                await self._record_shared_files()
                return None
            kept = self.run_dir / "undone" / f"{task_id}-{time.time_ns()}"
            changed = await asyncio.to_thread(undo_changes, self.run_dir, kept)
        if changed is None:
            return None
        keys: tuple[str, ...] = ()
        if "config" in changed.labels:
            keys = changed_keys(
                await self._config_list(self.repo.common_dir / "config"),
                await self._config_list(kept / "config"),
            )
        return SharedChanges(
            task_id=task_id, files=changed.labels, config_keys=keys, kept=changed.kept
        )

    async def _record_shared_files(self) -> None:
        config = str(self.repo.common_dir / "config")
        hooks_path = await self.repo.git(
            "config", "--file", config, "--type=path", "--get", "core.hooksPath", check=False
        )
        await asyncio.to_thread(
            record,
            self.repo.common_dir,
            self.repo.root,
            hooks_path.stdout.strip(),
            self.run_dir,
        )

    async def _config_list(self, path: Path) -> str:
        listed = await self.repo.git("config", "-z", "--list", "--file", str(path), check=False)
        return listed.stdout if listed.ok else ""

    async def _remove_worktree_of(self, branch: str) -> bool:
        async with self._admin_lock:
            for entry in await list_worktrees(self.repo.root):
                if entry.branch != branch:
                    continue
                if entry.missing:
                    await forget_missing_worktree(self.repo.root, entry)
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
                await run_git(self.repo.root, "worktree", "remove", *force, str(entry.path))
                return True
        return False


async def _has_submodules(worktree: Path) -> bool:
    return await asyncio.to_thread((worktree / ".gitmodules").is_file)
