"""Where a worktree's git files are, and what its ``HEAD`` and the branches point at.

Several checks before the run writes in a worktree only need these paths: whether
a merge stopped half-way (``MERGE_HEAD`` in the git directory) and which lock
files are stale. Git keeps them in small files of a documented layout
(gitrepository-layout(5)): a linked worktree's ``.git`` is a file
``gitdir: <path>``, that directory's ``commondir`` names the shared one, and
its ``HEAD`` reads ``ref: <branch ref>`` (or a commit, detached).

A branch's commit is in the common directory too: in the loose file
``refs/heads/<branch>``, else on its line of ``packed-refs``. Git replaces both
files by renaming a finished one over them, and writes ``packed-refs`` before it
deletes the loose files it packed, so reading the loose file first and then
``packed-refs`` sees either the old or the new value, never a half-written one.

Reading them costs no process; what these files cannot say (a subdirectory, the
reftable ref format whose ``HEAD`` file is a placeholder, a content of another
shape, anything unreadable) is asked of ``git rev-parse`` instead, so the answer
is git's own either way.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from langgraph_opencode.tools.git._command import run_git

__all__ = [
    "GitDirs",
    "branch_commit",
    "checked_out_at",
    "git_dirs",
    "head_of",
    "merge_in_progress",
]

_GITFILE_PREFIX = "gitdir: "
_SYMREF_PREFIX = "ref: "
_PACKED_REFS = "packed-refs"
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256
# A branch whose loose file is plainly ``<common dir>/<name>`` (per-worktree refs
# live elsewhere): no component that git-check-ref-format(1) forbids or that
# could leave the directory.
_COMPONENT = r"[A-Za-z0-9_+=@%,-][A-Za-z0-9_+=@%,.-]*"
_PLAIN_REF = re.compile(rf"refs/heads/(?:{_COMPONENT}/)*{_COMPONENT}")
_SYMREF_DEPTH = 5  # git's SYMREF_MAXDEPTH


class _AskGit(enum.Enum):
    """The answer of a read whose files could not say."""

    ASK_GIT = "ask git"


_ASK_GIT = _AskGit.ASK_GIT


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


async def branch_commit(repo: Path, common_dir: Path, ref: str) -> str | None:
    """The commit branch ``ref`` (``refs/heads/<name>``) points at; ``None`` if there is none.

    Read from the ref files in ``common_dir`` where they can say, else asked of
    ``git rev-parse`` in ``repo`` (any directory of the repository). A branch
    names a commit: ``git branch`` and ``git commit`` make no other.
    """
    found = await asyncio.to_thread(_ref, common_dir, ref)
    if found is not _ASK_GIT:
        return found
    out = await run_git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return out.stdout.strip() if out.ok else None


async def head_of(worktree: Path) -> str:
    """The commit checked out in ``worktree``: from its git files, else ``git rev-parse HEAD``.

    Raises:
        GitError: git cannot say either (an unborn branch, not a worktree).
    """
    found = await asyncio.to_thread(_head_commit, worktree)
    if found is not _ASK_GIT:
        return found
    return (await run_git(worktree, "rev-parse", "HEAD")).stdout.strip()


def _head_commit(worktree: Path) -> str | _AskGit:
    read = _read_head(worktree)
    if read is None:
        return _ASK_GIT
    dirs, head = read
    if dirs.head_ref is None:
        return head if _OBJECT_ID.fullmatch(head) else _ASK_GIT
    found = _ref(dirs.common_dir, dirs.head_ref)
    return _ASK_GIT if found is None else found  # an unborn branch: git says what is wrong


def _ref(common_dir: Path, ref: str, depth: int = 0) -> str | _AskGit | None:
    if (
        depth > _SYMREF_DEPTH
        or not _PLAIN_REF.fullmatch(ref)
        or ".." in ref
        or ref.endswith((".", ".lock"))
        or "/." in ref
    ):
        return _ASK_GIT
    try:
        if (common_dir / "reftable").exists():
            return _ASK_GIT
        try:
            text = (common_dir / ref).read_text("ascii").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return _packed(common_dir, ref)
    except (OSError, UnicodeDecodeError):
        return _ASK_GIT
    if text.startswith(_SYMREF_PREFIX):
        return _ref(common_dir, text.removeprefix(_SYMREF_PREFIX), depth + 1)
    return text if _OBJECT_ID.fullmatch(text) else _ASK_GIT


def _packed(common_dir: Path, ref: str) -> str | _AskGit | None:
    """``ref``'s line of ``packed-refs``: ``<object id> <ref>``; ``None`` if it has none."""
    try:
        data = (common_dir / _PACKED_REFS).read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return _ASK_GIT
    end = data.find(b" " + ref.encode("ascii") + b"\n")
    if end < 0:
        return None
    start = data.rfind(b"\n", 0, end) + 1
    line = data[start:end].decode("ascii", errors="replace")
    return line if _OBJECT_ID.fullmatch(line) else _ASK_GIT


def _read(worktree: Path) -> GitDirs | None:
    """The directories from git's files, ``None`` where only git itself can say."""
    read = _read_head(worktree)
    return None if read is None else read[0]


def _read_head(worktree: Path) -> tuple[GitDirs, str] | None:
    """The directories and the content of ``HEAD``, ``None`` where only git can say."""
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
    return GitDirs(Path(_absolute(git_dir)), Path(_absolute(common)), ref), head


def _absolute(path: Path) -> str:
    """``path`` made absolute with ``..`` folded, as ``--path-format=absolute`` prints it."""
    return os.path.normpath(os.path.abspath(path))
