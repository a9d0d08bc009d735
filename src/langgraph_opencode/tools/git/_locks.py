"""Lock files that a killed git command left in a worktree, and clearing them.

Git takes a lock by creating ``<file>.lock`` beside the file it changes and
renames the lock over the file when done. A git command killed in between
(with the orchestrator's process group, say) leaves the lock behind, and every
later command that needs it fails (``Unable to create '.../index.lock': File
exists``). So before the run writes in one of its worktrees, the locks of that
worktree's index, its ``HEAD`` and its branch are removed, unless a process
holds one: it has the lock file open, or it is a ``git`` running in that
worktree (between closing a lock and renaming it, git holds it without an open
file). Processes are looked at in ``/proc`` (Linux), those of this user only;
without it, nothing is known to hold a lock.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from langgraph_opencode.tools._process import processes
from langgraph_opencode.tools.git._gitdir import git_dirs

__all__ = ["clear_stale_locks"]


async def clear_stale_locks(worktree: Path) -> tuple[Path, ...]:
    """Remove the locks of ``worktree``'s index, ``HEAD`` and branch that nobody holds.

    Returns:
        The lock files removed.
    """
    dirs = await git_dirs(worktree)
    candidates = [dirs.git_dir / "index.lock", dirs.git_dir / "HEAD.lock"]
    if dirs.head_ref is not None:  # not a detached HEAD
        candidates.append(dirs.common_dir / f"{dirs.head_ref}.lock")
    return await asyncio.to_thread(_clear, candidates, worktree)


def _clear(candidates: list[Path], worktree: Path) -> tuple[Path, ...]:
    locks = {Path(os.path.realpath(p)): p for p in candidates if p.exists()}
    if not locks:
        return ()
    held = _held(set(locks), Path(os.path.realpath(worktree)))
    removed = []
    for real, lock in locks.items():
        if real not in held:
            lock.unlink(missing_ok=True)
            removed.append(lock)
    return tuple(removed)


def _held(locks: set[Path], worktree: Path) -> set[Path]:
    """The ``locks`` that a process has open; all of them while a git runs in ``worktree``."""
    held: set[Path] = set()
    for process in processes():
        try:
            is_git = (process / "comm").read_text().strip() == "git"
            if is_git and Path(os.readlink(process / "cwd")).is_relative_to(worktree):
                return locks
            with os.scandir(process / "fd") as fds:
                for fd in fds:
                    target = Path(os.readlink(fd.path))
                    if target in locks:
                        held.add(target)
        except OSError:  # gone, or another user's
            continue
    return held
