"""A slow server is not a dead one, and one session at work per worktree.

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

from _orchestrator_child import until
from langgraph_opencode.api import aorchestrate
from langgraph_opencode.core.jobs import new_job, part
from langgraph_opencode.core.services import close_services, register_server, services_for
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.nodes._sessions import abort_left_behind, quiet_worktree
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
from langgraph_opencode.tools.opencode.server import OpenCodeServer, free_port

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


# -- one session at work per worktree ---------------------------------------------------


async def _busy_session(client: OpenCodeClient, directory: Path, hold: Hang) -> str:
    """A session in ``directory`` whose turn waits on ``hold`` (busy until aborted)."""
    session = await client.create_session(directory, title="an old turn")
    await client.prompt_async(session.id, directory, "an old turn", agent="build")
    assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
    return session.id


async def _idle(client: OpenCodeClient, directory: Path, session_id: str) -> bool:
    statuses = await client.status(directory)
    return session_id not in statuses or statuses[session_id].type == "idle"


async def test_no_prompt_goes_into_a_worktree_while_another_session_works_there(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    # As after a forced abort: the server still runs an old turn in the worktree.
    hold = Hang()
    model.script(Step(hold, user="an old turn", name="an old turn that never ends"))
    settings = RunSettings(server_url=opencode_server.url)
    register_server(opencode_server.url, opencode_server.password)
    try:
        services = await services_for(settings)
        old = await _busy_session(services.client, git_repo, hold)
        assert not await _idle(services.client, git_repo, old)
        job = new_job(
            "worker",
            session_id="ses_new",
            directory=str(git_repo),
            agent="build",
            model="",
            prompt=[part("worker")],
            server=opencode_server.url,
        )

        assert await quiet_worktree(services, job) is None

        assert await _idle(services.client, git_repo, old)
        (last,) = await services.client.messages(old, git_repo, limit=1)
        assert last.info.error is not None
        assert last.info.error.name == "MessageAbortedError"
    finally:
        hold.release()
        await close_services(opencode_server.url)
        register_server(opencode_server.url, None)


async def test_a_session_left_on_a_server_is_aborted_once_that_server_answers(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    git_repo: Path,
) -> None:
    hold = Hang()
    model.script(Step(hold, user="an old turn", name="an old turn that never ends"))
    gone = f"http://127.0.0.1:{free_port()}"
    settings = RunSettings(server_url=opencode_server.url, server_urls=[gone])
    register_server(opencode_server.url, opencode_server.password)
    try:
        services = await services_for(settings)
        old = await _busy_session(services.client, git_repo, hold)
        left = [
            {"server": opencode_server.url, "session_id": old, "directory": str(git_repo)},
            {"server": gone, "session_id": "ses_unreachable", "directory": str(git_repo)},
            {"server": "http://127.0.0.1:1", "session_id": "ses_dropped", "directory": "/x"},
        ]

        remaining = await abort_left_behind(settings, left)

        # Aborted where its server answers; kept where it does not (for a later try);
        # dropped for a server the run no longer lists.
        assert remaining == [left[1]]
        await until("the old turn to stop", lambda: _idle(services.client, git_repo, old))
    finally:
        hold.release()
        await close_services(opencode_server.url)
        register_server(opencode_server.url, None)
