"""The asyncio locks that serialise a run's merges and a repository's worktree changes.

One process drives a run. Within it, merges are serialised by a lock shared by
every :class:`~langgraph_opencode.tools.git.run.GitRun` of the same repository
and run id, and worktree creation and removal (and the shared git files'
record) by a lock per repository. A lock lives as long as something holds it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar
from weakref import WeakValueDictionary

__all__ = ["RunLocks"]

_K = TypeVar("_K")
_RUN_LOCKS: WeakValueDictionary[tuple[Path, str], asyncio.Lock] = WeakValueDictionary()
_ADMIN_LOCKS: WeakValueDictionary[Path, asyncio.Lock] = WeakValueDictionary()


class RunLocks:
    """The locks of one run of one repository.

    Attributes:
        merge: Held by every merge into the run's integration branch, and
            while its worktree is lent out or removed.
        admin: Held while any worktree of the repository is made or removed,
            and while its shared git files are recorded or put back.
    """

    def __init__(self, common_dir: Path, run_id: str) -> None:
        """Take the locks of run ``run_id`` of the repository at ``common_dir``."""
        self.merge = _shared_lock(_RUN_LOCKS, (common_dir, run_id))
        self.admin = _shared_lock(_ADMIN_LOCKS, common_dir)


def _shared_lock(registry: WeakValueDictionary[_K, asyncio.Lock], key: _K) -> asyncio.Lock:
    lock = registry.get(key)
    if lock is None:
        lock = registry[key] = asyncio.Lock()
    return lock
