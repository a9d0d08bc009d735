"""What the benchmarks share: a warmed-up server per run, child runs, tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from langgraph_opencode.testing import ScriptedModelServer, Step, Text
from langgraph_opencode.tools.opencode import (
    WORKER_AGENT,
    EventHub,
    OpenCodeClient,
    OpenCodeServer,
    build_config,
    send_and_wait,
)

_ROOT = Path(__file__).resolve().parent.parent
"""Where ``bench`` is importable from, for the child processes."""


def machine() -> str:
    """Date, platform, CPU count and load, for the tables' headers."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a markdown table."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


async def warm_up(
    client: OpenCodeClient, hub: EventHub, model: ScriptedModelServer, directory: Path
) -> None:
    """One prompt in ``directory``, so the server's first-run start-up is not measured."""
    await hub.wait_connected()
    session = await client.create_session(directory, title="warm-up")
    model.add(Step(Text("ready"), user="warm up"))
    outcome = await send_and_wait(client, hub, session.id, directory, "warm up", agent=WORKER_AGENT)
    assert outcome.ok, outcome


@contextlib.asynccontextmanager
async def fresh_server(model: ScriptedModelServer, repo: Path) -> AsyncIterator[OpenCodeServer]:
    """A new isolated ``opencode serve`` on the scripted model, warmed up in ``repo``."""
    config = build_config(extra=model.provider_config())
    async with OpenCodeServer(isolated=True, config=config) as server:
        async with (
            OpenCodeClient(server.url, password=server.password) as client,
            EventHub(client) as hub,
        ):
            await warm_up(client, hub, model, repo)
        yield server


def peak_rss_kib(pid: int | None) -> int:
    """A live process's peak resident set (VmHWM), 0 if unknown."""
    with contextlib.suppress(OSError, TypeError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def run_child(
    mode: str,
    *,
    server: OpenCodeServer,
    repo: Path,
    plan: Mapping[str, Any],
    parallel: int,
    review: bool = False,
    planner: bool = False,
) -> dict[str, Any]:
    """Run one orchestrator in a child process (``bench._child``); return its figures."""
    args = {
        "mode": mode,
        "server_url": server.url,
        "repo": str(repo),
        "plan": dict(plan),
        "parallel": parallel,
        "review": review,
        "planner": planner,
    }
    env = {**os.environ, "OPENCODE_SERVER_PASSWORD": server.password.get_secret_value()}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._child",
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=_ROOT,
    )
    out, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"bench child {mode} failed ({child.returncode}):\n{err.decode()}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["opencode_rss_kib"] = peak_rss_kib(server.pid)
    result["stderr"] = err.decode()[-4000:]
    return result
