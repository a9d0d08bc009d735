"""Process groups, and the processes of this machine as ``/proc`` shows them.

A child started with ``start_new_session=True`` leads its own group.
Signalling the group, not just the child, also reaches what the child started
(a hook, a filter, a test runner), which would otherwise keep running and hold
the child's output pipes open.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

__all__ = ["processes", "signal_group"]


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every process of group ``pgid``; a group that has gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def processes() -> Iterator[Path]:
    """The ``/proc/<pid>`` directory of every process (none without ``/proc``: not Linux).

    A process may end while its directory is read: callers treat ``OSError`` as gone.
    """
    if not os.path.isdir("/proc"):
        return
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                yield Path(entry.path)
