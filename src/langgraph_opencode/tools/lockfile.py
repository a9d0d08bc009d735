"""A lock file held by one process at a time, that says who holds it.

```python
lock = LockFile(run_dir / "lock")
lock.acquire({"command": "langgraph-opencode run ..."})   # LockHeld names the holder
...
lock.release()
```

The lock is an ``flock`` on the file, so the kernel drops it when its process
dies however it dies (SIGKILL included): a lock left by a killed process is
free again at once, with nothing to clean up. The holder writes who it is
(pid, host, start time and whatever the caller adds) into the file, so
another process can name it. [`holder`][] tells without taking the lock for
longer than a moment; [`acquire`][] retries for a short while, so such a
look does not make it fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["LockFile", "LockHeld", "describe", "holder"]

_RETRY_INTERVAL = 0.05


class LockHeld(Exception):
    """Another process holds the lock.

    Attributes:
        holder: What the holder wrote about itself (``pid``, ``host``,
            ``since`` and the caller's fields); empty if it wrote nothing yet.
    """

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is held by {describe(holder)}")


def describe(info: dict[str, Any]) -> str:
    """A holder as a person reads it: ``pid 123 on host, since 10:02:03``."""
    if not info:
        return "another process"
    since = info.get("since")
    when = time.strftime(", since %Y-%m-%d %H:%M:%S", time.localtime(since)) if since else ""
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}{when}"


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 65_536, 0)
        value = json.loads(data.decode() or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock at ``path`` (what it wrote about itself), or ``None`` if nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class LockFile:
    """An exclusive ``flock`` on one file, with the holder's description in it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, info: dict[str, Any] | None = None, *, wait: float = 2.0) -> None:
        """Take the lock, or raise [`LockHeld`][] if another process keeps it for ``wait`` s.

        Args:
            info: What to write about the holder, beside its pid, host and start.
            wait: How long to retry while the lock is held (a look by
                [`holder`][] holds it for a moment).

        Raises:
            LockHeld: Another process holds it.
            OSError: The file cannot be created or opened.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockHeld(self.path, _read(fd)) from None
                    time.sleep(_RETRY_INTERVAL)
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": round(time.time(), 3),
                **(info or {}),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (the file stays, empty). Calling it when not held does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock
