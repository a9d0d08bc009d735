"""Where a worktree's git files are: its git directory, the common directory and its ``HEAD``.

Several checks before the run writes in a worktree only need these paths: whether
a merge stopped half-way (``MERGE_HEAD`` in the git directory) and which lock
files are stale. Git keeps them in small files of a documented layout
(gitrepository-layout(5)): a linked worktree's ``.git`` is a file
``gitdir: <path>``, that directory's ``commondir`` names the shared one, and
its ``HEAD`` reads ``ref: <branch ref>`` (or a commit, detached). Reading them
costs no process; a worktree laid out otherwise (a subdirectory, the reftable
ref format whose ``HEAD`` file is a placeholder, anything unreadable) is asked
of ``git rev-parse`` instead, so the answer is git's own either way.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from langgraph_opencode.tools.git._command import run_git

__all__ = ["GitDirs", "checked_out_at", "git_dirs", "merge_in_progress"]

_GITFILE_PREFIX = "gitdir: "
_SYMREF_PREFIX = "ref: "


@dataclass(frozen=True)
class GitDirs:
    """The git directories of one worktree."""

    git_dir: Path
    """The worktree's own git directory (index, ``HEAD``, ``MERGE_HEAD``), absolute."""
    common_dir: Path
    """The directory every worktree of the repository shares (refs, objects), absolute."""
    head_ref: str | None
    """The ref ``HEAD`` points at (``refs/heads/<branch>``), ``None`` when detached."""


async def git_dirs(worktree: Path) -> GitDirs:
    """The git directories of the worktree whose top directory is ``worktree``."""
    read = await asyncio.to_thread(_read, worktree)
    if read is not None:
        return read
    out = await run_git(
        worktree,
        "rev-parse",
        "--path-format=absolute",
        "--git-dir",
        "--git-common-dir",
        "--symbolic-full-name",
        "HEAD",
    )
    git_dir, common, ref = out.stdout.splitlines()[:3]
    return GitDirs(Path(git_dir), Path(common), ref if ref.startswith("refs/") else None)


async def merge_in_progress(worktree: Path) -> bool:
    """Whether a merge stopped half-way in ``worktree`` (its ``MERGE_HEAD`` exists)."""
    found = await asyncio.to_thread(_merge_head, worktree)
    if found is not None:
        return found
    out = await run_git(worktree, "rev-parse", "-q", "--verify", "MERGE_HEAD", check=False)
    return out.ok


async def checked_out_at(worktree: Path, branch_ref: str, common_dir: Path) -> bool:
    """Whether ``worktree`` is a worktree of the repository at ``common_dir`` on ``branch_ref``.

    Read from git's files only: ``False`` means "not known to be", and the
    caller asks ``git worktree list``.
    """
    return await asyncio.to_thread(_on_branch, worktree, branch_ref, common_dir)


def _on_branch(worktree: Path, branch_ref: str, common_dir: Path) -> bool:
    dirs = _read(worktree)
    return (
        dirs is not None
        and dirs.head_ref == branch_ref
        and os.path.realpath(dirs.common_dir) == os.path.realpath(common_dir)
    )


def _merge_head(worktree: Path) -> bool | None:
    dirs = _read(worktree)
    return None if dirs is None else (dirs.git_dir / "MERGE_HEAD").is_file()


def _read(worktree: Path) -> GitDirs | None:
    """The directories from git's files, ``None`` where only git itself can say."""
    dotgit = worktree / ".git"
    try:
        if dotgit.is_dir():
            git_dir = dotgit
        else:
            text = dotgit.read_text("utf-8").strip()
            if not text.startswith(_GITFILE_PREFIX):
                return None
            git_dir = worktree / text.removeprefix(_GITFILE_PREFIX)
        common = git_dir
        pointer = git_dir / "commondir"
        if pointer.is_file():
            common = git_dir / pointer.read_text("utf-8").strip()
        if (common / "reftable").exists():
            return None  # HEAD is a placeholder there: the refs live in the table
        head = (git_dir / "HEAD").read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    ref = head.removeprefix(_SYMREF_PREFIX) if head.startswith(_SYMREF_PREFIX) else None
    if ref is not None and not ref.startswith("refs/"):
        return None
    return GitDirs(Path(_absolute(git_dir)), Path(_absolute(common)), ref)


def _absolute(path: Path) -> str:
    """``path`` made absolute with ``..`` folded, as ``--path-format=absolute`` prints it."""
    return os.path.normpath(os.path.abspath(path))
