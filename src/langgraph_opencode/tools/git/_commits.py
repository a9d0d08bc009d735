"""Committing in a worktree as the orchestrator, and putting a worktree back to a commit."""

from __future__ import annotations

from pathlib import Path

from langgraph_opencode.tools.git._command import GitIdentity, run_git, split_z
from langgraph_opencode.tools.git._gitdir import head_of
from langgraph_opencode.tools.git._locks import clear_stale_locks
from langgraph_opencode.tools.git.models import CommitResult

__all__ = ["commit_everything", "reset_worktree"]


async def commit_everything(
    worktree: Path, message: str, identity: GitIdentity
) -> CommitResult | None:
    """Commit everything in ``worktree`` (``git add -A``) as ``identity``, if anything.

    Returns:
        The commit, with the ignored files it left out, or ``None`` when
        nothing had changed.
    """
    await clear_stale_locks(worktree)  # left by a git command killed with the orchestrator
    await run_git(worktree, "add", "-A")
    staged = split_z((await run_git(worktree, "diff", "--cached", "--name-only", "-z")).stdout)
    if not staged:
        return None
    await run_git(worktree, "commit", "--quiet", "--no-verify", "-m", message, identity=identity)
    ignored = await run_git(
        worktree, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"
    )
    return CommitResult(sha=await head_of(worktree), files=staged, ignored=split_z(ignored.stdout))


async def reset_worktree(worktree: Path, to: str = "HEAD") -> None:
    """Put ``worktree`` back to commit ``to``: tracked and untracked files; ignored ones stay."""
    await run_git(worktree, "reset", "--quiet", "--hard", to)
    await run_git(worktree, "clean", "--quiet", "-fd")
