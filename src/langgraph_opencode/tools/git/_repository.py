"""The user's repository: validated once, then only read.

Nothing here changes the user's current branch, index or working tree; the
work of a run happens on its own branches and worktrees (see
:class:`~langgraph_opencode.tools.git.run.GitRun`). :class:`Repository` is all
a run needs of the repository; :class:`~langgraph_opencode.tools.git.repo.Repo`
adds the way to start one, so this module knows nothing of runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Self

from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.tools.git._command import (
    GitIdentity,
    GitOutput,
    check_git_version,
    command_error,
    run_git,
)
from langgraph_opencode.tools.git._gitdir import branch_commit
from langgraph_opencode.tools.git._worktrees import status_entries
from langgraph_opencode.tools.git.models import WorkingTreeStatus

__all__ = ["Repository"]

_BRANCHES = "refs/heads/"


class Repository:
    """A git repository the orchestrator works on; create it with :meth:`open`.

    Attributes:
        root: The top directory of the user's working tree.
        common_dir: The repository's shared git directory (``.git`` of the
            main worktree), where run directories live by default.
        identity: The author and committer of the orchestrator's commits.
    """

    def __init__(self, root: Path, common_dir: Path, *, identity: GitIdentity) -> None:
        self.root = root
        self.common_dir = common_dir
        self.identity = identity

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, identity: GitIdentity | None = None
    ) -> Self:
        """Validate ``path`` as a git working tree with at least one commit.

        Any directory inside the working tree is accepted; :attr:`root` is its
        top. Uncommitted changes are allowed, but a run starts from the HEAD
        commit, so they are not part of it: report :meth:`status` to the user.

        Args:
            path: A directory of the repository.
            identity: Who the orchestrator's commits are by (default
                ``langgraph-opencode <langgraph-opencode@localhost>``).

        Raises:
            ConfigurationError: git is missing or older than 2.36, or the path
                does not exist, is not in a git working tree, or the repository
                has no commit yet.
        """
        await check_git_version()
        where = await asyncio.to_thread(_directory, path)
        if where is None:
            raise ConfigurationError(f"{path} does not exist or is not a directory")
        inside = await run_git(where, "rev-parse", "--is-inside-work-tree", check=False)
        if not inside.ok:
            raise ConfigurationError(
                f"{where} is not a git repository: run `git init` there and commit "
                "your files, or pass the path of an existing repository"
            )
        if inside.stdout.strip() != "true":
            raise ConfigurationError(
                f"{where} is a bare repository or a .git directory, not a working tree: "
                "pass the path of a checkout"
            )
        out = await run_git(
            where, "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"
        )
        root, common = out.stdout.splitlines()[:2]
        head = await run_git(
            where, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False
        )
        if not head.ok:
            raise ConfigurationError(
                f"the repository at {root} has no commits yet: commit your files first "
                "(e.g. `git add -A && git commit -m 'initial commit'`), since a run starts "
                "from the HEAD commit"
            )
        return cls(Path(root), Path(common), identity=identity or GitIdentity())

    async def git(self, *args: str, check: bool = True) -> GitOutput:
        """Run a read-only or ref-only git command at the repository root."""
        return await run_git(self.root, *args, check=check)

    async def head(self) -> str:
        """Return the commit HEAD points at."""
        return (await self.git("rev-parse", "--verify", "HEAD^{commit}")).stdout.strip()

    async def resolve(self, rev: str) -> str | None:
        """Return the commit ``rev`` names, or ``None`` if there is none.

        A branch (``refs/heads/<name>``) is read from git's ref files where
        they can say; anything else is asked of ``git rev-parse``.
        """
        if rev.startswith(_BRANCHES):
            return await branch_commit(self.root, self.common_dir, rev)
        out = await self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return out.stdout.strip() if out.ok else None

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether every commit of ``ancestor`` is in ``descendant``."""
        out = await self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if out.returncode not in (0, 1):
            raise command_error(out, f"cannot compare {ancestor} with {descendant}")
        return out.ok

    async def status(self) -> WorkingTreeStatus:
        """Report the user's branch, HEAD and uncommitted files, changing nothing.

        Ignored files are not listed. The index is not even refreshed
        (``GIT_OPTIONAL_LOCKS=0``), so its bytes stay as they were.
        """
        branch = await self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return WorkingTreeStatus(
            branch=branch.stdout.strip() if branch.ok else None,
            head=await self.head(),
            entries=await status_entries(self.root),
        )


def _directory(path: str | os.PathLike[str]) -> Path | None:
    where = Path(path).expanduser().resolve()
    return where if where.is_dir() else None
