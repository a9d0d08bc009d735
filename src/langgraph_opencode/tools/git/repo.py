"""The user's repository, and the runs made in it: the entry point of the git layer.

:class:`Repo` is a :class:`~langgraph_opencode.tools.git._repository.Repository`
(validated once, then only read) that also hands out the
:class:`~langgraph_opencode.tools.git.run.GitRun` of a run. It sits above
both, so neither of them imports this module.
"""

from __future__ import annotations

from pathlib import Path

from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git.run import GitRun

__all__ = ["Repo"]


class Repo(Repository):
    """A git repository the orchestrator works on; create it with :meth:`open`.

    Attributes:
        root: The top directory of the user's working tree.
        common_dir: The repository's shared git directory (``.git`` of the
            main worktree), where run directories live by default.
        identity: The author and committer of the orchestrator's commits.
    """

    def run(self, run_id: str, *, run_dir: Path | None = None) -> GitRun:
        """Return the branches and worktrees of one orchestrator run.

        Args:
            run_id: Names the run's branches (``lgoc/<run_id>/...``); letters,
                digits, ``.``, ``_`` and ``-``.
            run_dir: Where the run's worktrees go (default
                ``<common_dir>/langgraph-opencode/runs/<run_id>``).
        """
        return GitRun(self, run_id, run_dir=run_dir)
