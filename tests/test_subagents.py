"""A worker that starts a subagent (OpenCode's ``task`` tool): its requests and its stalls.

The subagent runs in a child session whose events and permission requests
carry the child's session id. The run's policy, the person and the stall
watchdog must reach it as they reach the worker itself. Real ``opencode
serve``, the scripted model calling the real ``task`` tool, real git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langgraph_opencode.api import aorchestrate
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    Conversation,
    Hang,
    ScriptedModelServer,
    Step,
    Text,
    ToolCall,
    git,
    planner_returns,
    reviewer_says,
    task_prompt,
    worker_writes,
)
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

OBJECTIVE = "Write sub.txt through a subagent"
COMMAND = "echo sub > sub.txt"
SUBAGENT_PROMPT = "SUBAGENT-WORK: run the command that writes sub.txt"
TURN_TIMEOUT = 240.0
"""Without the fix a request nobody sees holds the turn until this limit: the test then fails."""


def _plan() -> dict[str, Any]:
    return {
        "objective": OBJECTIVE,
        "summary": "",
        "tasks": [
            {
                "id": "sub",
                "title": "Write sub.txt",
                "instructions": f"Have a subagent run `{COMMAND}`",
                "depends_on": [],
                "files": ["sub.txt"],
                "checks": ["grep -qx sub sub.txt"],
            }
        ],
    }


def _worker_delegates() -> Conversation:
    """The worker hands the command to a ``general`` subagent, then reports."""
    return Conversation(
        ToolCall.task(SUBAGENT_PROMPT, description="write sub.txt"),
        Step(Text("The subagent wrote sub.txt."), after_tool="task"),
        user=task_prompt("sub"),
        name="worker sub: delegates to a subagent",
    )


def _script_delegation(model: ScriptedModelServer) -> None:
    """The plan, the worker delegating, its subagent running the command, the reviewer."""
    model.script(
        planner_returns(_plan()),
        _worker_delegates(),
        Conversation(
            ToolCall.bash(COMMAND, description="write sub.txt"),
            Step(Text("Wrote sub.txt."), after_tool="bash"),
            user=SUBAGENT_PROMPT,
            name="subagent: bash",
        ),
        reviewer_says(repeat=True),
    )


async def _orchestrate(
    server: OpenCodeServer,
    repo: Path,
    settings: RunSettings,
    events: list[dict[str, Any]],
    **kw: Any,
) -> RunReport:
    return await aorchestrate(
        OBJECTIVE,
        repo=repo,
        server_url=server.url,
        password=server.password,
        settings=settings,
        on_event=events.append,
        **kw,
    )


def _messages(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["message"] for e in events if e["kind"] == kind]


async def _subagent_sessions(server: OpenCodeServer, report: RunReport) -> list[str]:
    """The child sessions the task's worker started (read from the server)."""
    (task,) = report.tasks
    worker = task.sessions[0]  # then the reviewer's
    async with OpenCodeClient(server.url, password=server.password) as client:
        return [s.id for s in await client.children(worker, task.worktree)]


async def test_a_subagents_permission_request_is_decided_by_the_runs_policy(
    model: ScriptedModelServer, asking_server: OpenCodeServer, git_repo: Path
) -> None:
    _script_delegation(model)
    events: list[dict[str, Any]] = []

    def on_interrupt(value: dict[str, Any]) -> str:
        raise AssertionError(f"the policy answers this, nobody should be asked: {value}")

    report = await _orchestrate(
        asking_server,
        git_repo,
        RunSettings(
            allow_permissions=["bash:echo *"],
            unmatched_permissions="ask",
            turn_timeout=TURN_TIMEOUT,
        ),
        events,
        on_interrupt=on_interrupt,
    )

    assert report.status == "completed", report.to_markdown()
    assert git(git_repo, "show", f"{report.integration_branch}:sub.txt") == "sub\n"
    (decided,) = _messages(events, "permission")
    assert COMMAND in decided
    assert decided.endswith("allow by policy (a subagent asked)")
    assert _messages(events, "aborted") == []
    assert len(await _subagent_sessions(asking_server, report)) == 1


async def test_a_subagents_request_is_put_to_a_person_saying_a_subagent_asks(
    model: ScriptedModelServer, asking_server: OpenCodeServer, git_repo: Path
) -> None:
    _script_delegation(model)
    asked: list[dict[str, Any]] = []

    def on_interrupt(value: dict[str, Any]) -> str:
        asked.append(value)
        return "once"

    events: list[dict[str, Any]] = []
    report = await _orchestrate(
        asking_server,
        git_repo,
        RunSettings(unmatched_permissions="ask", turn_timeout=TURN_TIMEOUT),
        events,
        on_interrupt=on_interrupt,
    )

    assert report.status == "completed", report.to_markdown()
    assert git(git_repo, "show", f"{report.integration_branch}:sub.txt") == "sub\n"
    (pause,) = asked
    (request,) = pause["requests"]
    assert request["task"] == "sub"
    assert request["subagent"] is True
    assert request["permission"] == "bash"
    assert COMMAND in request["patterns"]
    (worker,) = [t for t in report.tasks if t.id == "sub"]
    assert request["session_id"] not in worker.sessions
    assert request["session_id"] in await _subagent_sessions(asking_server, report)
    (answered,) = _messages(events, "permission")
    assert answered.endswith("once by a person (a subagent asked)")


async def test_a_subagent_that_stalls_is_aborted_and_the_task_is_prompted_again(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    hang = Hang()
    model.script(
        planner_returns(_plan()),
        Conversation(
            ToolCall.task(SUBAGENT_PROMPT, description="write sub.txt"),
            user=task_prompt("sub"),
            name="worker sub: delegates to a subagent that hangs",
        ),
        Step(hang, user=SUBAGENT_PROMPT, name="subagent: hangs"),
        worker_writes("sub", {"sub.txt": "sub\n"}, user="was interrupted"),
        reviewer_says(repeat=True),
    )
    events: list[dict[str, Any]] = []
    try:
        report = await _orchestrate(
            opencode_server,
            git_repo,
            RunSettings(stall_timeout=15.0, max_stall_retries=1, turn_timeout=TURN_TIMEOUT),
            events,
        )
    finally:
        hang.release()

    assert report.status == "completed", report.to_markdown()
    assert git(git_repo, "show", f"{report.integration_branch}:sub.txt") == "sub\n"
    (aborted,) = _messages(events, "aborted")
    assert "stalled" in aborted
