"""A slow server is not a dead one.

On a loaded machine OpenCode can stop answering for minutes. Its turns are
not lost for that: the run waits for it, and no second session is started in
a worktree where the first may still work. Here the server is frozen with
SIGSTOP (its port still takes connections, nothing answers) for longer than
any of the client's timeouts, then thawed. Real ``opencode serve``, the
scripted model, real git.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langgraph_opencode.api import aorchestrate
from langgraph_opencode.graph.settings import RunSettings
from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    Conversation,
    Hang,
    ScriptedModelServer,
    Step,
    Text,
    ToolCall,
    ToolCalls,
    files_plan,
    git,
    reviewer_says,
    task_prompt,
)
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

FROZEN_S = 120.0
"""Longer than a request with its retries takes to fail (three 30 s read timeouts):
the orchestrator's requests really fail while the server is frozen (the issue saw 110 s)."""
TIMEOUT = 600.0
"""Bound of the whole run: a guard against hangs, not a measure of speed."""
SECOND_ENV = "LGOC_TEST_SLOW_SECOND_PASSWORD"


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def _held_worker(model: ScriptedModelServer) -> Hang:
    """Worker a's first model call waits for the returned hang; then it writes a.txt."""
    hold = Hang(then=ToolCalls(ToolCall.write("a.txt", "a\n")))
    model.script(
        Conversation(
            hold,
            Step(Text("Wrote a.txt."), after_tool="write"),
            user=task_prompt("a"),
            name="worker a: waits, then writes",
        ),
        reviewer_says(True, repeat=True),
    )
    return hold


async def _frozen(pid: int, hold: Hang) -> None:
    """Freeze the server's process group for FROZEN_S, answer the hung model call, thaw it."""
    group = os.getpgid(pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        await asyncio.sleep(FROZEN_S)
        hold.release()  # the answer waits in the socket until the server runs again
    finally:
        os.killpg(group, signal.SIGCONT)


async def _finish(run: asyncio.Task[RunReport]) -> RunReport:
    try:
        return await asyncio.wait_for(asyncio.shield(run), TIMEOUT)
    finally:
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run


async def test_a_frozen_embedded_server_is_waited_for_not_taken_as_gone(
    model: ScriptedModelServer, git_repo: Path
) -> None:
    hold = _held_worker(model)
    events: list[dict[str, Any]] = []
    run = asyncio.create_task(
        aorchestrate(
            "one file",
            repo=git_repo,
            plan=files_plan({"a": []}),
            run_id="frozen",
            isolated=True,
            opencode_config=model.provider_config(),
            on_event=events.append,
        )
    )
    try:
        assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
        runtime = git_repo / ".git/langgraph-opencode/runs/frozen/server/runtime.json"
        await _frozen(json.loads(runtime.read_text())["pid"], hold)
    finally:
        hold.release()
    report = await _finish(run)

    assert report.status == "completed", report.to_markdown()
    assert git(git_repo, "show", f"{report.integration_branch}:a.txt") == "a\n"
    (a,) = report.tasks
    assert a.moves == 0
    assert "server_lost" not in _kinds(events)
    assert "moved" not in _kinds(events)
    assert "server_silent" in _kinds(events)
    # One worker session did the work (then one reviewer): nothing was started twice.
    assert len(a.sessions) == 2


async def test_a_frozen_external_server_keeps_its_sessions_and_no_second_session_starts(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    monkeypatch: pytest.MonkeyPatch,
    git_repo: Path,
) -> None:
    hold = _held_worker(model)
    events: list[dict[str, Any]] = []
    async with make_opencode_server() as first, make_opencode_server() as second:
        monkeypatch.setenv(SECOND_ENV, second.password.get_secret_value())
        run = asyncio.create_task(
            aorchestrate(
                "one file",
                repo=git_repo,
                plan=files_plan({"a": []}),
                server_url=[first.url, second.url],
                password=first.password,
                # Past this silence the old rule moved the turn to the second
                # server, beside the first session that was still at work.
                settings=RunSettings(password_envs={second.url: SECOND_ENV}, server_lost_after=5),
                on_event=events.append,
            )
        )
        try:
            assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
            assert first.pid is not None
            await _frozen(first.pid, hold)
        finally:
            hold.release()
        report = await _finish(run)

        assert report.status == "completed", report.to_markdown()
        (a,) = report.tasks
        assert (a.moves, a.server) == (0, first.url)
        assert "server_lost" not in _kinds(events)
        # No session of the second server ever worked in the task's worktree.
        async with OpenCodeClient(second.url, password=second.password) as client:
            assert await client.list_sessions(a.worktree) == []
