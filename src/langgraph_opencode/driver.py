"""Which process drives a run: an advisory lock held while a run is driven.

:func:`~langgraph_opencode.api.aorchestrate` and
:func:`~langgraph_opencode.api.aresume` hold an exclusive ``flock`` on
``<git dir>/langgraph-opencode/drivers/<run id>.lock`` while they drive the
run. The kernel drops it when that process ends, however it ends (SIGKILL
included), so a reader can tell a run that is being driven (``running``) from
one whose process stopped (``stopped``), and a second process cannot drive
the same run at the same time. The lock file holds the driver's process id,
for messages only; lock files are never removed (removing one could let two
processes hold "the" lock).

The lock is local to the machine that has the repository, which is where a
run is driven (its worktrees live in that repository).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.tools.git import Repo

__all__ = ["driver_pid", "driving"]


def _lock_path(repo: Repo, run_id: str) -> Path:
    repo.run(run_id)  # refuses run ids that are no file name
    return repo.common_dir / "langgraph-opencode" / "drivers" / f"{run_id}.lock"


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[bool]:
    """``True`` with ``flock(mode | LOCK_NB)`` held on ``path``, ``False`` if it is taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def driving(repo: Repo, run_id: str) -> AsyncIterator[None]:
    """Hold the run's driver lock for the block.

    Raises:
        ConfigurationError: Another process drives the run.
    """
    path = _lock_path(repo, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path, fcntl.LOCK_EX) as held:
        if not held:
            pid = _read_pid(path)
            raise ConfigurationError(
                f"run {run_id!r} is being driven by another process"
                + (f" (pid {pid})" if pid else "")
                + ": wait for it to end, or stop it, before resuming the run"
            )
        path.write_text(f"{os.getpid()}\n")
        yield


def driver_pid(repo: Repo, run_id: str) -> int | None:
    """The id of the process driving the run now (0 if unknown), or ``None`` if none does."""
    path = _lock_path(repo, run_id)
    if not path.exists():
        return None
    with _locked(path, fcntl.LOCK_SH) as free:
        if free:
            return None
    return _read_pid(path)


def _read_pid(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip() or 0)
    return 0
