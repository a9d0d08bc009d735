"""Worktree bookkeeping: list, create or reuse, inspect, remove.

The helpers here never delete a directory that holds files: a registered
worktree whose directory has gone is unregistered (nothing is left to lose),
and everything else is refused with an explanation.

A new worktree gets the submodules the user has initialised, checked out from
the user's own clones of them (``.git/modules/<name>``): no network, and the
same submodules as the user's checkout.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from langgraph_opencode.errors import GitError
from langgraph_opencode.tools.git._command import command_error, run_git
from langgraph_opencode.tools.git._gitdir import branch_commit, checked_out_at
from langgraph_opencode.tools.git.models import StatusEntry

__all__ = [
    "WorktreeEntry",
    "conflict_marker_paths",
    "ensure_detached_worktree",
    "ensure_worktree",
    "forget_missing_worktree",
    "init_submodules",
    "list_worktrees",
    "status_entries",
    "unmerged_paths",
]

_MARKER = re.compile(rb"^(<{7}|>{7})(?: |$)", re.MULTILINE)
_PATH_KEY = r"^submodule\..*\.path$"
_URL_KEY = r"^submodule\..*\.url$"


@dataclass(frozen=True)
class WorktreeEntry:
    """One record of ``git worktree list --porcelain``."""

    path: Path
    head: str | None
    branch: str | None
    """The short branch name, ``None`` when detached or bare."""
    missing: bool
    locked: bool


async def list_worktrees(repo: Path) -> list[WorktreeEntry]:
    """Return every worktree registered in ``repo``, the main one first."""
    out = await run_git(repo, "worktree", "list", "--porcelain", "-z")
    entries: list[WorktreeEntry] = []
    for record in out.stdout.split("\0\0"):
        fields = dict(_field(line) for line in record.split("\0") if line.strip())
        if "worktree" not in fields:
            continue
        branch = fields.get("branch")
        entries.append(
            WorktreeEntry(
                path=Path(fields["worktree"]),
                head=fields.get("HEAD"),
                branch=branch.removeprefix("refs/heads/") if branch else None,
                missing="prunable" in fields or not await _exists(Path(fields["worktree"])),
                locked="locked" in fields,
            )
        )
    return entries


async def forget_missing_worktree(repo: Path, entry: WorktreeEntry) -> None:
    """Unregister a worktree whose directory no longer exists (even if locked)."""
    if await _exists(entry.path):
        raise GitError(f"refusing to forget worktree {entry.path}: its directory still exists")
    await run_git(repo, "worktree", "remove", "--force", "--force", str(entry.path))


async def ensure_worktree(
    repo: Path, branch: str, path: Path, *, start: str, owned: Path, common_dir: Path
) -> tuple[Path, bool, bool]:
    """Check ``branch`` out in a worktree, creating what is missing.

    Args:
        repo: Any directory of the repository.
        branch: The short branch name.
        path: Where to put the worktree if the branch has none yet.
        start: The commit a new branch starts from (ignored if it exists).
        owned: The run's directory: an existing worktree of ``branch`` is
            reused only if it is ``path`` or lies under ``owned``, so that a
            checkout of the user's is never taken over.
        common_dir: The repository's shared git directory.

    Returns:
        The worktree path, whether the branch was created, and whether a
        registered worktree whose directory had gone was re-added.

    Raises:
        GitError: ``path`` holds files but is not this branch's worktree, or
            the branch is checked out somewhere the run does not own.
    """
    if await checked_out_at(path, f"refs/heads/{branch}", common_dir):
        return path, False, False  # there already (known without listing every worktree)
    repaired = False
    for entry in await list_worktrees(repo):
        if entry.branch == branch or entry.path == path:
            if not entry.missing:
                if entry.branch != branch:
                    raise GitError(
                        f"{path} is already the worktree of "
                        f"{entry.branch or 'a detached HEAD'}, not of {branch}: "
                        "choose another path, or remove that worktree first"
                    )
                if entry.path != path and not entry.path.is_relative_to(owned):
                    raise GitError(
                        f"{branch} is checked out in {entry.path}, which this run does not "
                        "own: check out another branch there, then retry"
                    )
                return entry.path, False, False
            await forget_missing_worktree(repo, entry)
            repaired = True
    if await asyncio.to_thread(_occupied, path):
        raise GitError(
            f"cannot create the worktree of {branch} at {path}: the path exists and is "
            "not empty; move it away (nothing there was deleted) or choose another path"
        )
    await asyncio.to_thread(_make_parent, path)
    exists = await branch_commit(repo, common_dir, f"refs/heads/{branch}") is not None
    if exists:
        await run_git(repo, "worktree", "add", "--quiet", str(path), branch)
    else:
        await run_git(
            repo, "worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), start
        )
    await init_submodules(path)
    return path, not exists, repaired


async def init_submodules(worktree: Path) -> tuple[str, ...]:
    """Check out, in a new worktree, the submodules the user has initialised.

    Each is cloned from the user's own clone of it (``<git dir>/modules/<name>``),
    so nothing is fetched over the network, and the repository's shared config
    is not written (the URLs are given on the command line). Submodules the
    user has not initialised stay empty, as in the user's checkout.

    Returns:
        The paths of the submodules checked out.

    Raises:
        GitError: A submodule's commit is not in the user's clone of it.
    """
    if not await asyncio.to_thread((worktree / ".gitmodules").is_file):
        return ()
    declared = await run_git(
        worktree, "config", "-z", "--file", ".gitmodules", "--get-regexp", _PATH_KEY, check=False
    )
    # The user's shared config has a URL for each submodule they initialised.
    urls = await run_git(worktree, "config", "-z", "--get-regexp", _URL_KEY, check=False)
    initialised = {_submodule_name(key) for key, _ in _config_pairs(urls.stdout)}
    common = await run_git(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir")
    modules = Path(common.stdout.strip()) / "modules"
    options: list[str] = []
    paths: list[str] = []
    for key, path in _config_pairs(declared.stdout):
        name = _submodule_name(key)
        if name in initialised and await asyncio.to_thread((modules / name).is_dir):
            options += ["-c", f"submodule.{name}.url={modules / name}"]
            paths.append(path)
    if not paths:
        return ()
    out = await run_git(
        worktree,
        "-c",
        "protocol.file.allow=always",  # the user's own clones, by path
        *options,
        "submodule",
        "update",
        "--",
        *paths,
        check=False,
    )
    if not out.ok:
        raise command_error(
            out,
            f"cannot check out the submodules {', '.join(paths)} in {worktree} from your "
            f"clones of them in {modules}: run `git submodule update` in your checkout so "
            "they hold the commits your branch records, then retry",
        )
    return tuple(paths)


def _config_pairs(listed: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of ``git config -z --get-regexp`` output."""
    pairs = []
    for item in listed.split("\0"):
        key, newline, value = item.partition("\n")
        if newline:
            pairs.append((key, value))
    return pairs


def _submodule_name(key: str) -> str:
    """``foo.bar`` of ``submodule.foo.bar.path`` (a name may hold dots)."""
    return key.split(".", 1)[1].rsplit(".", 1)[0]


async def ensure_detached_worktree(repo: Path, path: Path, commit: str) -> Path:
    """A worktree at ``path`` with ``commit`` checked out on a detached HEAD (made if missing).

    One registered at ``path`` already is reused as it is.

    Raises:
        GitError: ``path`` holds files but is no worktree, or is a branch's worktree.
    """
    for entry in await list_worktrees(repo):
        if entry.path != path:
            continue
        if entry.missing:
            await forget_missing_worktree(repo, entry)
            break
        if entry.branch is not None:
            raise GitError(
                f"{path} is the worktree of {entry.branch}, not a detached checkout: "
                "remove that worktree first"
            )
        return path
    if await asyncio.to_thread(_occupied, path):
        raise GitError(
            f"cannot check {commit[:12]} out at {path}: the path exists and is not empty; "
            "move it away (nothing there was deleted)"
        )
    await asyncio.to_thread(_make_parent, path)
    await run_git(repo, "worktree", "add", "--quiet", "--detach", str(path), commit)
    return path


async def status_entries(worktree: Path) -> tuple[StatusEntry, ...]:
    """Return the uncommitted changes and untracked files of a worktree."""
    out = await run_git(worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries: list[StatusEntry] = []
    parts = iter(out.stdout.split("\0"))
    for part in parts:
        if len(part) < 4:
            continue
        code = part[:2]
        entries.append(StatusEntry(code=code, path=part[3:]))
        if "R" in code or "C" in code:
            next(parts, None)  # the rename's source path
    return tuple(entries)


async def unmerged_paths(worktree: Path) -> tuple[str, ...]:
    """Return the paths the index still records as conflicting."""
    out = await run_git(worktree, "diff", "--name-only", "--diff-filter=U", "-z")
    return tuple(sorted({p for p in out.stdout.split("\0") if p}))


async def conflict_marker_paths(worktree: Path) -> tuple[str, ...]:
    """Return unmerged or changed files that still contain conflict markers.

    A path the index still records as unmerged counts as resolved once its
    file holds no markers: an agent resolves by editing, not by ``git add``.
    """
    changed = await run_git(worktree, "diff", "--name-only", "-z", "HEAD")
    untracked = await run_git(worktree, "ls-files", "--others", "--exclude-standard", "-z")
    candidates = {p for p in (changed.stdout + "\0" + untracked.stdout).split("\0") if p}
    candidates.update(await unmerged_paths(worktree))
    return await asyncio.to_thread(
        lambda: tuple(sorted(rel for rel in candidates if _has_markers(worktree / rel)))
    )


# Small file-system look-ups, run in a worker thread: the event loop never waits on a
# disk (LangGraph Server's development runtime refuses blocking calls in it).


def _field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(" ")
    return key, value


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


def _occupied(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def _make_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


def _has_markers(file: Path) -> bool:
    return file.is_file() and _MARKER.search(file.read_bytes()) is not None
