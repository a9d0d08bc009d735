"""What a run has left in the repository: its branches and worktrees."""

from __future__ import annotations

from langgraph_opencode.tools.git._branches import RunBranches
from langgraph_opencode.tools.git._layout import RunLayout
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git._worktrees import list_worktrees, status_entries
from langgraph_opencode.tools.git.models import BranchInfo, RunInventory, WorktreeInfo

__all__ = ["inventory"]


async def inventory(repo: Repository, layout: RunLayout, branches: RunBranches) -> RunInventory:
    """List the run's branches (integration first) and worktrees, changing nothing."""
    refs = await repo.git(
        "for-each-ref",
        "--format=%(refname:short) %(objectname)",
        f"refs/heads/{layout.branch_prefix}",
    )
    pairs = [line.split(" ", 1) for line in refs.stdout.splitlines() if line]
    pairs.sort(key=lambda p: (p[0] != layout.integration_branch, p[0]))
    found = []
    for name, sha in pairs:
        count = 0 if name == layout.integration_branch else await branches.count_unmerged(sha)
        found.append(BranchInfo(name=name, sha=sha, merged=count == 0, unmerged_commits=count))
    worktrees = []
    for entry in await list_worktrees(repo.root):
        in_run_dir = entry.path.is_relative_to(layout.run_dir)
        if (entry.branch or "").startswith(layout.branch_prefix) or in_run_dir:
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
    return RunInventory(run_id=layout.run_id, branches=tuple(found), worktrees=tuple(worktrees))
