"""Git for the orchestrator: the user's repository, a run's branches, worktrees and merges.

Everything runs the real ``git`` executable, from asyncio::

    repo = await Repo.open("path/to/project")
    run = repo.run("run-1")
    task = await run.create_task_worktree("t1")      # lgoc/run-1/t1 in its own worktree
    ...                                              # an agent edits task.path
    await run.commit_all("t1", "t1: add parser")
    await run.merge("t1")                            # into lgoc/run-1/integration

The user's current branch, index and working tree are never modified. The
graph's nodes see a run as :class:`GitOperations`, the protocol :class:`GitRun`
implements.
"""

from langgraph_opencode.tools.git._command import GitIdentity
from langgraph_opencode.tools.git._layout import RESERVED_TASK_IDS
from langgraph_opencode.tools.git.models import (
    BranchInfo,
    CommitResult,
    MergeResult,
    Reattached,
    RefreshResult,
    RunInventory,
    SharedChanges,
    StatusEntry,
    TaskDiff,
    TaskWorktree,
    WorkingTreeStatus,
    WorktreeInfo,
)
from langgraph_opencode.tools.git.protocol import GitOperations
from langgraph_opencode.tools.git.repo import Repo
from langgraph_opencode.tools.git.run import DEFAULT_DIFF_CHARS, GitRun

__all__ = [
    "DEFAULT_DIFF_CHARS",
    "RESERVED_TASK_IDS",
    "BranchInfo",
    "CommitResult",
    "GitIdentity",
    "GitOperations",
    "GitRun",
    "MergeResult",
    "Reattached",
    "RefreshResult",
    "Repo",
    "RunInventory",
    "SharedChanges",
    "StatusEntry",
    "TaskDiff",
    "TaskWorktree",
    "WorkingTreeStatus",
    "WorktreeInfo",
]
