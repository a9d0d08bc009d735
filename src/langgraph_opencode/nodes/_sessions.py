"""One session at work in a task's worktree at a time.

A turn can outlive the orchestrator's knowledge of it: a turn aborted by a
watchdog that the server still reports busy, or a turn left on a server that
went away (the task moved to another server) and that the server carries on
with if it comes back. Before a prompt goes into a task's worktree, the
sessions still at work there are aborted and waited for; sessions a task left
behind on a server are aborted as soon as that server answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from langgraph_opencode.core.services import UNREACHABLE, Services, services_for
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import PromptJob
from langgraph_opencode.errors import OpenCodeHTTPError
from langgraph_opencode.tools.opencode import SessionStatus

__all__ = ["BUSY_WAIT", "abort_left_behind", "quiet_worktree"]

BUSY_WAIT = 60.0
"""How long sessions aborted in a worktree may take to stop before its prompt is refused."""


async def quiet_worktree(
    services: Services, job: PromptJob, statuses: Mapping[str, SessionStatus] | None = None
) -> str | None:
    """Abort every session still at work in the job's worktree and wait until they stop.

    ``statuses``: the worktree's statuses if just read (else they are read first).

    Returns:
        ``None`` once no session works there; else why the prompt must not go
        (sessions that stay busy for :data:`BUSY_WAIT` seconds after their abort).
    """
    client, directory = services.client, job["directory"]
    deadline = time.monotonic() + BUSY_WAIT
    aborted: set[str] = set()
    while True:
        if statuses is None:
            statuses = await client.status(directory)
        busy = sorted(sid for sid, status in statuses.items() if status.type != "idle")
        if not busy:
            return None
        if time.monotonic() >= deadline:
            return (
                f"session(s) {', '.join(busy)} still work in {directory} {BUSY_WAIT:g} s after "
                "their abort; no second session is prompted in the same worktree"
            )
        for session_id in busy:
            if session_id not in aborted:
                await client.abort(session_id, directory)
                aborted.add(session_id)
        await asyncio.sleep(0.5)
        statuses = None


async def abort_left_behind(
    settings: RunSettings, left: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Abort the sessions a task left on servers that went away; those still out of reach.

    Each entry is ``{"server", "session_id", "directory"}``. A server that is
    no longer one of the run's is dropped (nothing can reach it).
    """
    remaining: list[dict[str, Any]] = []
    for entry in left:
        if entry["server"] not in settings.servers():
            continue
        try:
            # A server still silent is tried again on the next prompt.
            services = await asyncio.wait_for(services_for(settings, entry["server"]), 10.0)
            with contextlib.suppress(OpenCodeHTTPError):  # deleted since: nothing runs
                await services.client.abort(entry["session_id"], entry["directory"])
        except (*UNREACHABLE, TimeoutError):
            remaining.append(entry)
    return remaining
