"""Run ids: how a new one is made, and what a given one may look like.

A run id names the run's checkpoint thread, its branches (``lgoc/<run_id>/...``)
and its directory under ``.git/langgraph-opencode/runs/``, so it is checked
before anything is written.
"""

from __future__ import annotations

import re
import time
import uuid

from langgraph_opencode.errors import ConfigurationError

__all__ = ["MAX_RUN_ID_LENGTH", "check_run_id", "new_run_id"]

MAX_RUN_ID_LENGTH = 64

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""As the git layer checks ids (``tools/git``), at most 64 long."""


def new_run_id() -> str:
    """A fresh run id: the local time and a random suffix (``20250101-120000-1a2b3c``)."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it can name a run's branches and directory.

    Allowed: 1 to 64 letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit, and valid as a git ref component (no ``..``, not ending in
    ``.`` or ``.lock``).

    Raises:
        ConfigurationError: It cannot; the message says what is allowed.
    """
    if (
        not isinstance(run_id, str)
        or len(run_id) > MAX_RUN_ID_LENGTH
        or not _RUN_ID.fullmatch(run_id)
        or ".." in run_id
        or run_id.endswith((".", ".lock"))
    ):
        shown = run_id if isinstance(run_id, str) else type(run_id).__name__
        raise ConfigurationError(
            f"invalid run id {shown!r}: use 1 to {MAX_RUN_ID_LENGTH} letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, without '..' and not ending in '.' or '.lock'"
        )
    return run_id
