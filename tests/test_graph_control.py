"""Steering a run: plan repair, plan approval, permission requests, budgets, stalls.

Every test runs the whole graph against a real ``opencode serve`` driven by
the scripted model, in a real git repository, with real SQLite checkpoints.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from langgraph_opencode.api import aorchestrate, aresume, checkpoint_path
from langgraph_opencode.core.services import close_services, register_server
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.graph.builder import compile_graph
from langgraph_opencode.report import RunReport, TaskReport
from langgraph_opencode.testing import (
    Conversation,
    ErrorResponse,
    Hang,
    RecordedRequest,
    ScriptedModelServer,
    Step,
    Text,
    ToolCall,
    ToolCalls,
    Usage,
    git,
    planner_returns,
    reviewer_says,
    task_prompt,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import (
    PLANNER_PROMPT_HEADER,
    REVIEWER_PROMPT_HEADER,
)
from langgraph_opencode.tools.opencode.server import OpenCodeServer

# The graph must never block the event loop (LangGraph Server refuses runs that do).
pytestmark = [pytest.mark.opencode, pytest.mark.usefixtures("no_blocking_calls")]

OBJECTIVE = "Write the greeting files"


def _task(task_id: str, *, depends_on: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": f"Write {task_id}",
        "instructions": f"Create {task_id}.txt",
        "depends_on": list(depends_on),
        "files": [f"{task_id}.txt"],
        "checks": [f"test -f {task_id}.txt"],
    }


def _plan(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"objective": OBJECTIVE, "summary": "", "tasks": list(tasks)}


def _is_worker(record: RecordedRequest) -> bool:
    system = record.request.system
    return PLANNER_PROMPT_HEADER not in system and REVIEWER_PROMPT_HEADER not in system


def _worker_requests(model: ScriptedModelServer) -> list[RecordedRequest]:
    return [r for r in model.chat_requests() if _is_worker(r)]


def _planner_requests(model: ScriptedModelServer) -> list[RecordedRequest]:
    return [r for r in model.chat_requests() if PLANNER_PROMPT_HEADER in r.request.system]


def _on_branch(repo: Path, report: RunReport, path: str) -> str:
    """A file's content at the head of the run's integration branch."""
    return git(repo, "show", f"{report.integration_branch}:{path}")


def _task_report(report: RunReport, task_id: str) -> TaskReport:
    (task,) = [t for t in report.tasks if t.id == task_id]
    return task


def _kinds(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [e["message"] for e in events if e["kind"] == kind]


async def _orchestrate(
    server: OpenCodeServer,
    repo: Path,
    settings: RunSettings,
    events: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> RunReport:
    return await aorchestrate(
        OBJECTIVE,
        repo=repo,
        server_url=server.url,
        password=server.password,
        settings=settings,
        on_event=events.append if events is not None else None,
        **kwargs,
    )


# -- 5. a plan with a dependency cycle is repaired by the planner ------------------------------


async def test_cyclic_plan_is_sent_back_to_the_planner_and_the_repaired_plan_runs(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    cyclic = _plan(_task("a", depends_on=("b",)), _task("b", depends_on=("a",)))
    repaired = _plan(_task("a"), _task("b", depends_on=("a",)))
    model.script(
        planner_returns(cyclic),
        planner_returns(repaired, user="dependency cycle a -> b -> a"),
        worker_writes("a", {"a.txt": "alpha\n"}),
        worker_writes("b", {"b.txt": "beta\n"}),
        reviewer_says(repeat=True),
    )
    events: list[dict[str, Any]] = []

    report = await _orchestrate(opencode_server, git_repo, RunSettings(), events)

    assert report.status == "completed", report.to_markdown()
    assert [(t.id, t.status) for t in report.tasks] == [("a", "merged"), ("b", "merged")]
    assert _on_branch(git_repo, report, "a.txt") == "alpha\n"
    assert _on_branch(git_repo, report, "b.txt") == "beta\n"
    # The second planner prompt names the cycle, in the planner's own session.
    prompts = [r.request.last_user_text for r in _planner_requests(model)]
    assert len(prompts) == 2
    assert "a -> b -> a" not in prompts[0]
    assert "dependency cycle a -> b -> a" in prompts[1]
    assert "Your plan is not valid" in prompts[1]
    assert len({r.request.conversation_key for r in _planner_requests(model)}) == 1
    assert any("a -> b -> a" in message for message in _kinds(events, "plan"))


# -- 6. plan approval by interrupt ---------------------------------------------------------


FEEDBACK = "Split the work: one task per file, please"


def _approval_script(model: ScriptedModelServer) -> tuple[dict[str, Any], dict[str, Any]]:
    first = _plan(_task("a"))
    second = _plan(_task("a"), _task("b"))
    model.script(
        planner_returns(first),
        planner_returns(second, user=FEEDBACK),
        worker_writes("a", {"a.txt": "alpha\n"}),
        worker_writes("b", {"b.txt": "beta\n"}),
        reviewer_says(repeat=True),
    )
    return first, second


def _assert_nothing_dispatched(model: ScriptedModelServer, repo: Path) -> None:
    assert _worker_requests(model) == []
    task_branches = [
        b for b in git(repo, "branch", "--format=%(refname:short)").split() if b != "main"
    ]
    assert all(b.endswith("/integration") for b in task_branches), task_branches


def _assert_approval_request(value: Any, run_id: str, plan: dict[str, Any]) -> None:
    assert value["type"] == "plan_approval"
    assert value["run_id"] == run_id
    assert [t["id"] for t in value["plan"]["tasks"]] == [t["id"] for t in plan["tasks"]]


async def test_plan_approval_pauses_before_any_work_and_approve_runs_it(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    plan = _plan(_task("a"))
    model.script(
        planner_returns(plan),
        worker_writes("a", {"a.txt": "alpha\n"}),
        reviewer_says(repeat=True),
    )
    asked: list[dict[str, Any]] = []

    def on_interrupt(value: dict[str, Any]) -> str:
        _assert_nothing_dispatched(model, git_repo)
        asked.append(value)
        return "approve"

    report = await _orchestrate(
        opencode_server,
        git_repo,
        RunSettings(approve_plan=True),
        run_id="approve-by-handler",
        on_interrupt=on_interrupt,
    )

    assert len(asked) == 1
    _assert_approval_request(asked[0], "approve-by-handler", plan)
    assert report.status == "completed", report.to_markdown()
    assert _on_branch(git_repo, report, "a.txt") == "alpha\n"
    assert len(_planner_requests(model)) == 1


async def test_plan_rejected_with_feedback_through_aresume_then_approved(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    first, second = _approval_script(model)
    settings = RunSettings(approve_plan=True)
    connection: dict[str, Any] = {
        "server_url": opencode_server.url,
        "password": opencode_server.password,
    }

    paused = await _orchestrate(opencode_server, git_repo, settings, run_id="reject-by-api")

    assert paused.status == "interrupted"
    assert paused.interrupt is not None
    _assert_approval_request(paused.interrupt, "reject-by-api", first)
    _assert_nothing_dispatched(model, git_repo)

    # Rejected with feedback: the planner plans again; the new plan pauses again.
    again = await aresume(
        "reject-by-api",
        repo=git_repo,
        answer={"action": "reject", "feedback": FEEDBACK},
        settings=settings,
        **connection,
    )

    assert again.status == "interrupted"
    _assert_approval_request(again.interrupt, "reject-by-api", second)
    _assert_nothing_dispatched(model, git_repo)
    prompts = [r.request.last_user_text for r in _planner_requests(model)]
    assert FEEDBACK not in prompts[0]
    assert FEEDBACK in prompts[-1]

    # Approved through the handler this time.
    asked: list[dict[str, Any]] = []

    def on_interrupt(value: dict[str, Any]) -> str:
        asked.append(value)
        return "approve"

    done = await aresume(
        "reject-by-api",
        repo=git_repo,
        answer="approve",
        settings=settings,
        on_interrupt=on_interrupt,
        **connection,
    )

    assert asked == []  # the answer given to aresume was enough
    assert done.status == "completed", done.to_markdown()
    assert [t.id for t in done.tasks] == ["a", "b"]
    assert _on_branch(git_repo, done, "b.txt") == "beta\n"


async def test_plan_rejected_and_approved_with_command_resume_on_the_sqlite_checkpoints(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    first, second = _approval_script(model)
    run_id = "reject-by-command"
    paused = await _orchestrate(
        opencode_server, git_repo, RunSettings(approve_plan=True), run_id=run_id
    )
    assert paused.status == "interrupted"
    _assert_approval_request(paused.interrupt, run_id, first)

    # The same run, continued by a LangGraph user on the same SQLite file.
    register_server(opencode_server.url, opencode_server.password)
    settings = RunSettings(approve_plan=True, server_url=opencode_server.url)
    config: RunnableConfig = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}
    path = checkpoint_path(await Repo.open(git_repo))
    try:
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            graph = compile_graph(saver)
            before = await graph.aget_state(config)
            (pending,) = [i for task in before.tasks for i in task.interrupts]
            _assert_approval_request(pending.value, run_id, first)

            await graph.ainvoke(
                Command(resume={"action": "reject", "feedback": FEEDBACK}),
                config,
                context=settings,
            )

            again = await graph.aget_state(config)
            (pending,) = [i for task in again.tasks for i in task.interrupts]
            _assert_approval_request(pending.value, run_id, second)
            _assert_nothing_dispatched(model, git_repo)
            assert FEEDBACK in _planner_requests(model)[-1].request.last_user_text

            result = await graph.ainvoke(Command(resume="approve"), config, context=settings)
    finally:
        await close_services(opencode_server.url)

    report = RunReport.model_validate(result["report"])
    assert report.status == "completed", report.to_markdown()
    assert [(t.id, t.status) for t in report.tasks] == [("a", "merged"), ("b", "merged")]
    assert _on_branch(git_repo, report, "a.txt") == "alpha\n"
    assert _on_branch(git_repo, report, "b.txt") == "beta\n"


# -- 7. permission requests -----------------------------------------------------------------


COMMAND = "echo asked > asked.txt"


def _bash_worker() -> Conversation:
    return Conversation(
        ToolCall.bash(COMMAND, description="write asked.txt"),
        Step(Text("Wrote asked.txt."), after_tool="bash"),
        user=task_prompt("asked"),
        name="worker asked: bash",
    )


def _bash_plan() -> dict[str, Any]:
    return _plan(
        {
            "id": "asked",
            "title": "Write asked.txt with a command",
            "instructions": f"Run `{COMMAND}`",
            "depends_on": [],
            "files": ["asked.txt"],
            "checks": ["grep -qx asked asked.txt"],
        }
    )


def _assert_permission_request(value: Any, run_id: str) -> Path:
    """Check the pause shows the bash request; return the worktree it waits in."""
    assert value["type"] == "permission"
    assert value["run_id"] == run_id
    (request,) = value["requests"]
    assert request["task"] == "asked"
    assert request["permission"] == "bash"
    assert COMMAND in request["patterns"]
    worktree = Path(request["directory"])
    assert not (worktree / "asked.txt").exists()  # the command waits for the answer
    return worktree


@pytest.mark.parametrize("answered_by", ["aresume", "on_interrupt"])
async def test_permission_ask_pauses_the_run_and_the_answer_once_runs_the_command(
    model: ScriptedModelServer, asking_server: OpenCodeServer, git_repo: Path, answered_by: str
) -> None:
    model.script(planner_returns(_bash_plan()), _bash_worker(), reviewer_says(repeat=True))
    settings = RunSettings(unmatched_permissions="ask")
    run_id = f"ask-once-{answered_by}"

    if answered_by == "aresume":
        paused = await _orchestrate(asking_server, git_repo, settings, run_id=run_id)
        assert paused.status == "interrupted"
        _assert_permission_request(paused.interrupt, run_id)
        done = await aresume(
            run_id,
            repo=git_repo,
            answer="once",
            settings=settings,
            server_url=asking_server.url,
            password=asking_server.password,
        )
    else:
        asked: list[dict[str, Any]] = []

        def on_interrupt(value: dict[str, Any]) -> str:
            _assert_permission_request(value, run_id)
            asked.append(value)
            return "once"

        done = await _orchestrate(
            asking_server, git_repo, settings, run_id=run_id, on_interrupt=on_interrupt
        )
        assert len(asked) == 1

    assert done.status == "completed", done.to_markdown()
    assert _on_branch(git_repo, done, "asked.txt") == "asked\n"
    assert _task_report(done, "asked").checks[0]["passed"]
    # The model saw the command's own result, not a rejection.
    (after,) = [r for r in _worker_requests(model) if r.request.tool_results]
    assert "rejected" not in after.request.tool_results[0].content.lower()


async def test_permission_allowed_by_policy_needs_no_person(
    model: ScriptedModelServer, asking_server: OpenCodeServer, git_repo: Path
) -> None:
    model.script(planner_returns(_bash_plan()), _bash_worker(), reviewer_says(repeat=True))
    events: list[dict[str, Any]] = []

    def on_interrupt(value: dict[str, Any]) -> str:
        raise AssertionError(f"nobody should be asked: {value}")

    report = await _orchestrate(
        asking_server,
        git_repo,
        RunSettings(allow_permissions=["bash:echo *"], unmatched_permissions="ask"),
        events,
        on_interrupt=on_interrupt,
    )

    assert report.status == "completed", report.to_markdown()
    assert _on_branch(git_repo, report, "asked.txt") == "asked\n"
    decided = _kinds(events, "permission")
    assert len(decided) == 1
    assert COMMAND in decided[0]
    assert decided[0].endswith("allow by policy")
    assert _kinds(events, "waiting") == []


# -- 9. a task over its token budget ------------------------------------------------------------


async def test_task_over_its_token_budget_is_aborted_and_fails(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    opencode: OpenCodeClient,
    git_repo: Path,
) -> None:
    # The worker never stops on its own: every answer is another expensive tool call.
    model.script(
        planner_returns(_plan(_task("a"))),
        Step(
            ToolCalls(
                ToolCall.bash("echo working >> work.log"),
                usage=Usage(prompt_tokens=4_000, completion_tokens=500),
            ),
            user=task_prompt("a"),
            repeat=True,
            name="worker a: works on and on",
        ),
    )
    events: list[dict[str, Any]] = []

    report = await _orchestrate(
        opencode_server, git_repo, RunSettings(task_token_budget=10_000), events
    )

    assert report.status == "failed", report.to_markdown()
    task = _task_report(report, "a")
    assert task.status == "failed"
    assert re.search(r"token budget exceeded \(\d+ > 10000\)", task.reason), task.reason
    assert task.tokens > 10_000
    assert "token budget exceeded" in report.to_markdown()
    aborted = _kinds(events, "aborted")
    assert len(aborted) == 1
    assert "budget" in aborted[0]
    # The session was really stopped, and the work was neither reviewed, prompted again
    # nor merged (its branch is kept for inspection).
    (session,) = task.sessions
    assert session not in await opencode.status(task.worktree)
    (last,) = await opencode.messages(session, task.worktree, limit=1)
    assert last.info.error is not None
    assert last.info.error.name == "MessageAbortedError"
    assert _worker_requests(model)
    assert all(
        r.request.first_user_text == r.request.last_user_text for r in _worker_requests(model)
    )
    assert not [r for r in model.chat_requests() if REVIEWER_PROMPT_HEADER in r.request.system]
    assert report.head_commit == report.base_commit
    assert any(task.branch in item for item in report.left_behind)


async def test_turn_that_ends_over_the_token_budget_fails_its_task(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    # The expensive answer ends the turn at once: the budget must hold even when
    # no watchdog tick falls inside the turn.
    model.script(
        planner_returns(_plan(_task("a"))),
        Conversation(
            ToolCall.write("a.txt", "alpha\n"),
            Step(
                Text("Done.", usage=Usage(prompt_tokens=40_000, completion_tokens=2_000)),
                after_tool="write",
            ),
            user=task_prompt("a"),
            name="worker a: expensive answer",
        ),
    )

    report = await _orchestrate(opencode_server, git_repo, RunSettings(task_token_budget=10_000))

    assert report.status == "failed", report.to_markdown()
    task = _task_report(report, "a")
    assert task.status == "failed"
    assert "token budget exceeded" in task.reason
    assert task.tokens > 10_000
    assert not [r for r in model.chat_requests() if REVIEWER_PROMPT_HEADER in r.request.system]
    assert report.head_commit == report.base_commit


# -- 10. stalls ---------------------------------------------------------------------------------

STALL_TIMEOUT = 15.0
"""Short, yet longer than a healthy session is ever silent on a loaded machine (a
directory booting, a model call starting): a smaller one aborts sessions that are fine."""


async def test_stalled_session_is_aborted_prompted_again_and_finishes(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    hang = Hang()
    model.script(
        planner_returns(_plan(_task("a"))),
        Step(hang, user=task_prompt("a"), name="worker a: hangs"),
        worker_writes("a", {"a.txt": "alpha\n"}, user="was interrupted"),
        reviewer_says(repeat=True),
    )
    events: list[dict[str, Any]] = []
    try:
        report = await _orchestrate(
            opencode_server,
            git_repo,
            RunSettings(stall_timeout=STALL_TIMEOUT, max_stall_retries=1),
            events,
        )
    finally:
        hang.release()

    assert report.status == "completed", report.to_markdown()
    assert _on_branch(git_repo, report, "a.txt") == "alpha\n"
    aborted = _kinds(events, "aborted")
    assert len(aborted) == 1
    assert "stalled" in aborted[0]
    # The retry went to the same session, saying why.
    workers = _worker_requests(model)
    assert len({r.request.conversation_key for r in workers}) == 1
    resumed = [
        r.request.last_user_text for r in workers if "was interrupted" in r.request.last_user_text
    ]
    assert resumed
    assert "stalled" in resumed[0]


async def test_long_silent_tool_is_not_a_stall(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    # The tool runs silently for longer than the stall timeout (and a tick of the monitor).
    command = f"sleep {STALL_TIMEOUT + 5:g} && echo slept > slept.txt"
    model.script(
        planner_returns(_plan(_task("slept"))),
        Conversation(
            ToolCall.bash(command, description="slow build"),
            Step(Text("Done after a long build."), after_tool="bash"),
            user=task_prompt("slept"),
        ),
        reviewer_says(repeat=True),
    )
    events: list[dict[str, Any]] = []

    report = await _orchestrate(
        opencode_server,
        git_repo,
        RunSettings(stall_timeout=STALL_TIMEOUT, max_stall_retries=0),
        events,
    )

    assert report.status == "completed", report.to_markdown()
    assert _on_branch(git_repo, report, "slept.txt") == "slept\n"
    assert _kinds(events, "aborted") == []
    assert len(_worker_requests(model)) == 2  # the tool call, then the final text


async def test_a_model_call_waiting_to_be_retried_is_not_a_stall(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    # The provider says "retry in 20 s"; OpenCode waits that long in silence
    # (one retry status event), longer than the stall timeout.
    model.script(
        planner_returns(_plan(_task("a"))),
        Conversation(
            ErrorResponse(429, "slow down", retry_after=STALL_TIMEOUT + 5),
            ToolCalls(ToolCall.write("a.txt", "alpha\n")),
            Step(Text("a done"), after_tool="write"),
            user=task_prompt("a"),
        ),
        reviewer_says(repeat=True),
    )
    events: list[dict[str, Any]] = []

    report = await _orchestrate(
        opencode_server,
        git_repo,
        RunSettings(stall_timeout=STALL_TIMEOUT, max_stall_retries=0),
        events,
    )

    assert report.status == "completed", report.to_markdown()
    assert _on_branch(git_repo, report, "a.txt") == "alpha\n"
    assert _kinds(events, "aborted") == []
    assert len(_worker_requests(model)) == 3  # refused once, then the tool call and the answer
