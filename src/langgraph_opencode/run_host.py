"""What one orchestrator process holds while it drives a run: the run's lock and its server.

Both live in the run's own directory, ``<git dir>/langgraph-opencode/runs/<run>/``::

    lock                  held (flock) by the orchestrator driving the run; says who
    server/runtime.json   the embedded server's URL, pid and password (mode 0600)
    server/opencode-serve.log
    server/xdg/...        an isolated embedded server's OpenCode data (its sessions)

**One driver at a time.** [`hold_run`][] takes the lock, or raises
``RunHeldError`` naming the process that has it. The kernel drops the lock when
its process dies, so a run whose orchestrator was killed is free at once.

**The embedded server belongs to the run, not to one process.** [`embedded_server`][]
adopts the run's server if it still runs (a resume after a crash, Ctrl-C or a
pause finds the turns that went on meanwhile), else starts one on the same
OpenCode data, so the run's sessions continue in place. It runs under a keeper
that stops it once nobody has held the run's lock for ``embedded_linger``
seconds; a run that ends stops it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph_opencode.errors import ConfigurationError, RunHeldError
from langgraph_opencode.tools._env import seconds_from_env
from langgraph_opencode.tools.lockfile import LockFile, LockHeld, describe, holder
from langgraph_opencode.tools.opencode.server import OpenCodeServer

__all__ = [
    "STARTUP_TIMEOUT_ENV",
    "EmbeddedServer",
    "embedded_server",
    "held_error",
    "hold_run",
    "run_holder",
    "unrecorded",
]

_LOCK = "lock"
_SERVER = "server"
_LOCK_WAIT = 2.0
"""How long a run's lock is tried (a look at it by a keeper holds it for a moment)."""
STARTUP_TIMEOUT_ENV = "LANGGRAPH_OPENCODE_STARTUP_TIMEOUT"
"""Seconds the embedded server may take to become healthy (default 120: a hang guard; it
takes about 2 s on a quiet machine, much longer on a loaded one)."""


def unrecorded(run_id: str, root: Path, *, existed: bool) -> ConfigurationError:
    """The error for a run id with no checkpoint: never started, or stopped before its first.

    Args:
        run_id: The run.
        root: Its repository.
        existed: Whether the run's directory was there (a run stopped that early).
    """
    if existed:
        return ConfigurationError(
            f"run {run_id!r} was stopped before its first checkpoint, so nothing of it is "
            f"recorded; start it again with `langgraph-opencode run ... --run-id {run_id}`"
        )
    return ConfigurationError(
        f"no run {run_id!r} is recorded for {root}; "
        "`langgraph-opencode runs` lists the runs of a repository"
    )


def run_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who drives the run now (pid, host, since), or ``None`` if no orchestrator does."""
    return holder(run_dir / _LOCK)


def held_error(run_id: str, holder: dict[str, Any]) -> RunHeldError:
    """The error for a run that another orchestrator process drives now."""
    return RunHeldError(
        f"run {run_id!r} is being driven by another orchestrator ({describe(holder)}); "
        "wait for it to finish or stop that process, then resume the run",
        holder,
    )


@contextlib.asynccontextmanager
async def hold_run(run_dir: Path, run_id: str) -> AsyncIterator[None]:
    """Hold the run's lock while the block runs.

    Raises:
        RunHeldError: Another orchestrator process drives the run.
    """
    lock = LockFile(run_dir / _LOCK)
    info = {"program": Path(sys.argv[0]).name if sys.argv else ""}
    deadline = time.monotonic() + _LOCK_WAIT
    try:
        while True:
            # Non-blocking tries in this task: a cancellation cannot leave the lock taken.
            try:
                lock.acquire(info, wait=0)
                break
            except LockHeld:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.05)
    except LockHeld as exc:
        raise held_error(run_id, exc.holder) from None
    try:
        yield
    finally:
        lock.release()


@dataclass
class EmbeddedServer:
    """The run's embedded server, as one orchestrator process sees it.

    Attributes:
        server: The server (``server.adopted``: it was running already).
        keep: Leave it running when the block ends (its keeper stops it after
            the linger time unless a resume adopts it); otherwise it stops.
    """

    server: OpenCodeServer
    keep: bool = False


@contextlib.asynccontextmanager
async def embedded_server(
    run_dir: Path,
    *,
    config: Mapping[str, Any] | None,
    isolated: bool,
    linger: float,
) -> AsyncIterator[EmbeddedServer]:
    """The run's embedded server for the block: adopted if it runs, else started.

    The caller must hold the run's lock ([`hold_run`][]): the server is kept
    for as long as somebody holds it, plus ``linger`` seconds.

    Raises:
        ServerStartError: A new server did not start.
        BinaryNotFoundError: No ``opencode`` executable was found.
    """
    home, lock = run_dir / _SERVER, run_dir / _LOCK
    server = await OpenCodeServer.adopt(home, keep_while=lock, linger=linger)
    if server is None:
        server = OpenCodeServer(
            config=config,
            isolated=isolated,
            home=home,
            keep_while=lock,
            linger=linger,
            startup_timeout=seconds_from_env(STARTUP_TIMEOUT_ENV, 120.0),
        )
        await server.start()
    # An adopted server may run turns of the run: it is left running unless the
    # run ends; a new one stops unless the run gets under way.
    embedded = EmbeddedServer(server=server, keep=server.adopted)
    try:
        yield embedded
    finally:
        if embedded.keep:
            server.detach()
        else:
            await server.close()
