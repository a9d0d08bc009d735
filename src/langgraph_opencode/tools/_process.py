"""Process groups: a child started with ``start_new_session=True`` leads its own group.

Signalling the group, not just the child, also reaches what the child started
(a hook, a filter, a test runner), which would otherwise keep running and hold
the child's output pipes open.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["signal_group"]


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every process of group ``pgid``; a group that has gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
