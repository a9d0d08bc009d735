"""The repository's shared git files, which a run's agents must leave as they are.

A task worktree is a linked worktree: ``git config core.hooksPath ...`` run
there writes the repository's one ``.git/config``, and a hook written into
``.git/hooks`` runs on the user's next ``git checkout``. So the files every
checkout of the repository shares are recorded once per run, before its first
worker starts (:func:`record`), and after each worker turn whatever differs
from the record is put back (:func:`undo_changes`); the changed versions are
kept in the run's directory, so nothing is lost if it was the user who
changed them meanwhile.

Watched: ``config``, ``config.worktree``, ``info/attributes``, ``info/exclude``
and ``hooks/`` of the git directory, and the directory ``core.hooksPath``
names in the repository's config. The record lives in the run's directory
(readable by the user only): a config may hold credentials, so none of it
enters the state, the events or the report; only config key names do, with
any user and password in them masked.

:class:`SharedFiles` does this for one run; the functions below it work on
the files, in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph_opencode.errors import GitError
from langgraph_opencode.tools.git._layout import RunLayout
from langgraph_opencode.tools.git._repository import Repository
from langgraph_opencode.tools.git._run_locks import RunLocks
from langgraph_opencode.tools.git.models import SharedChanges

__all__ = ["Changed", "SharedFiles", "changed_keys", "record", "recorded", "undo_changes"]

_RECORD = "shared-git-files.json"
_FILES = ("config", "config.worktree", "info/attributes", "info/exclude")
_HOOKS = "hooks"
_HOOKS_PATH = "core.hooksPath"
_LOCK_WAIT = 10.0
"""Seconds to wait for a ``.lock`` of a file to restore (a git command writing it)."""
_USERINFO = re.compile(r"(//)[^/@]*@")


@dataclass(frozen=True)
class _Entry:
    kind: str  # "file" or "link"
    data: bytes  # a file's bytes, a link's target
    mode: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": base64.b64encode(self.data).decode(), "mode": self.mode}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> _Entry:
        return cls(kind=value["kind"], data=base64.b64decode(value["data"]), mode=value["mode"])


@dataclass(frozen=True)
class Changed:
    """What :func:`undo_changes` put back."""

    labels: tuple[str, ...]
    """The files put back, relative to the git directory (``config``,
    ``hooks/post-checkout``), or under ``core.hooksPath/`` for that directory."""
    kept: Path
    """Where the changed versions were moved, under the same names."""


class SharedFiles:
    """The record of one run of the repository's shared git files, and putting them back."""

    def __init__(self, repo: Repository, layout: RunLayout, locks: RunLocks) -> None:
        """The shared files of ``repo``, recorded in the run directory of ``layout``."""
        self._repo = repo
        self._run_dir = layout.run_dir
        self._locks = locks

    async def record_if_missing(self) -> None:
        """Record the shared files unless the run has a record; hold ``locks.admin``."""
        if not await asyncio.to_thread(recorded, self._run_dir):
            await self._record()

    async def undo(self, task_id: str) -> SharedChanges | None:
        """Put the shared files back as recorded, keeping the changed versions.

        Returns:
            What was put back, or ``None`` when nothing had changed (or the run
            had no record yet: one is made now).

        Raises:
            GitError: A file to put back stayed locked by a git command.
        """
        async with self._locks.admin:
            if not await asyncio.to_thread(recorded, self._run_dir):
                await self._record()
                return None
            kept = self._run_dir / "undone" / f"{task_id}-{time.time_ns()}"
            changed = await asyncio.to_thread(undo_changes, self._run_dir, kept)
        if changed is None:
            return None
        keys: tuple[str, ...] = ()
        if "config" in changed.labels:
            keys = changed_keys(
                await self._config_list(self._repo.common_dir / "config"),
                await self._config_list(kept / "config"),
            )
        return SharedChanges(
            task_id=task_id, files=changed.labels, config_keys=keys, kept=changed.kept
        )

    async def _record(self) -> None:
        config = str(self._repo.common_dir / "config")
        hooks_path = await self._repo.git(
            "config", "--file", config, "--type=path", "--get", _HOOKS_PATH, check=False
        )
        await asyncio.to_thread(
            record,
            self._repo.common_dir,
            self._repo.root,
            hooks_path.stdout.strip(),
            self._run_dir,
        )

    async def _config_list(self, path: Path) -> str:
        listed = await self._repo.git("config", "-z", "--list", "--file", str(path), check=False)
        return listed.stdout if listed.ok else ""


def recorded(run_dir: Path) -> bool:
    """Whether the run has a record of the shared files."""
    return (run_dir / _RECORD).is_file()


def record(common_dir: Path, root: Path, hooks_path: str, run_dir: Path) -> None:
    """Record the shared files of the repository in ``run_dir``.

    Args:
        common_dir: The repository's git directory.
        root: The main worktree (a relative ``core.hooksPath`` starts there).
        hooks_path: ``core.hooksPath`` of the repository's config, or empty.
        run_dir: The run's directory.
    """
    roots = {name: str(common_dir / name) for name in (*_FILES, _HOOKS)}
    if hooks_path and hooks_path != os.devnull:
        target = (root / Path(hooks_path).expanduser()).resolve()
        if target != (common_dir / _HOOKS).resolve():
            roots[_HOOKS_PATH] = str(target)
    entries = _read(roots)
    data = {
        "roots": roots,
        "entries": {label: entry.to_json() for label, entry in entries.items()},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    temporary = run_dir / f"{_RECORD}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    os.replace(temporary, run_dir / _RECORD)


def undo_changes(run_dir: Path, kept_in: Path) -> Changed | None:
    """Put the shared files back as recorded; ``None`` when nothing had changed.

    The versions found are moved to ``kept_in`` first. Files added to a
    watched directory are moved there too.

    Raises:
        GitError: A file to restore stayed locked by a git command.
    """
    data = json.loads((run_dir / _RECORD).read_text())
    roots: dict[str, str] = data["roots"]
    before = {label: _Entry.from_json(value) for label, value in data["entries"].items()}
    now = _read(roots)
    labels = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if not labels:
        return None
    for label in labels:
        path = _path(roots, label)
        _keep(path, kept_in / label, move=label not in before)
        if label in before:
            _restore(path, before[label])
    return Changed(labels=tuple(labels), kept=kept_in)


def changed_keys(before: str, after: str) -> tuple[str, ...]:
    """The config keys whose values differ between two ``git config -z --list`` outputs.

    Only key names are returned (values may be secrets); a user and password
    in a key's subsection (``http.https://user:token@host.extraheader``) are masked.
    """

    def values(listed: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for item in listed.split("\0"):
            if item:
                key, _, value = item.partition("\n")
                found.setdefault(key, []).append(value)
        return found

    old, new = values(before), values(after)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return tuple(dict.fromkeys(_USERINFO.sub(r"\1***@", key) for key in keys))


def _path(roots: dict[str, str], label: str) -> Path:
    if label in roots:
        return Path(roots[label])
    directory, _, rest = label.partition("/")  # a file in a watched directory
    return Path(roots[directory], rest)


def _read(roots: dict[str, str]) -> dict[str, _Entry]:
    """The watched files as they are now, by label (absent files are left out)."""
    entries: dict[str, _Entry] = {}
    for name, root in roots.items():
        path = Path(root)
        if name not in (_HOOKS, _HOOKS_PATH) or path.is_symlink() or not path.is_dir():
            if (entry := _entry(path)) is not None:
                entries[name] = entry
            continue
        for directory, subdirs, files in os.walk(path):
            for item in [*files, *(d for d in subdirs if Path(directory, d).is_symlink())]:
                full = Path(directory, item)
                if (entry := _entry(full)) is not None:
                    entries[f"{name}/{full.relative_to(path)}"] = entry
    return entries


def _entry(path: Path) -> _Entry | None:
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    if path.is_symlink():
        return _Entry("link", os.fsencode(os.readlink(path)), 0)
    if not path.is_file():
        return None  # a directory: what it holds is listed on its own
    return _Entry("file", path.read_bytes(), status.st_mode & 0o7777)


def _keep(path: Path, target: Path, *, move: bool) -> None:
    """Copy what is at ``path`` to ``target``; move it unless it is a file to be replaced."""
    if not os.path.lexists(path):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if not move and path.is_file() and not path.is_symlink():
        shutil.copy2(path, target)  # then replaced in one rename by _restore
    else:
        shutil.move(path, target)  # an added file, a link, a directory where a file was


def _restore(path: Path, entry: _Entry) -> None:
    """Write ``entry`` to ``path`` the way git writes a config: ``<path>.lock``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            if entry.kind == "link":
                os.symlink(os.fsdecode(entry.data), lock)
            else:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(entry.data)
                os.chmod(lock, entry.mode)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise GitError(
                    f"cannot put {path} back: {lock} exists (a git command is writing it, "
                    "or one was killed); remove it if no git command runs, then resume"
                ) from None
            time.sleep(0.05)
    os.replace(lock, path)
