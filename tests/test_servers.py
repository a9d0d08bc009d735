"""One run spread over several OpenCode servers.

Two real ``opencode serve`` processes share one scripted model and one real
git repository (the same machine, so both see the same paths). The tests look
at what a user can see: the report (which server ran each task), the sessions
each server holds, the prompts the model received, and the repository.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from _orchestrator_child import assert_no_prompt_twice
from langgraph_opencode import ConfigurationError, RunSettings, aorchestrate, aresume
from langgraph_opencode.api import checkpoint_path
from langgraph_opencode.cli.commands import _settings, resume_command
from langgraph_opencode.cli.parser import build_parser
from langgraph_opencode.core import supervisor
from langgraph_opencode.core.services import least_loaded
from langgraph_opencode.errors import (
    AuthenticationError,
    NotFoundError,
    OpenCodeConnectionError,
)
from langgraph_opencode.report import RunReport, TaskReport
from langgraph_opencode.testing import (
    Conversation,
    Hang,
    ScriptedModelServer,
    Step,
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
from langgraph_opencode.tools.opencode.events import EventHub, Subscription
from langgraph_opencode.tools.opencode.models import TokenUsage
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

FIRST_ENV = "LGOC_TEST_FIRST_PASSWORD"
SECOND_ENV = "LGOC_TEST_SECOND_PASSWORD"
TIMEOUT = 300.0
"""Bound of every wait for something the run does: a guard against hangs, not a measure of speed."""
LOST_AFTER = 5.0
"""A killed server's port is closed: five silent seconds are enough to call it gone here."""


def _plan(*task_ids: str) -> dict[str, Any]:
    return {
        "objective": "one file per task",
        "summary": "",
        "tasks": [
            {
                "id": task_id,
                "title": f"Write {task_id}",
                "instructions": f"Create {task_id}.txt",
                "depends_on": [],
                "files": [f"{task_id}.txt"],
                "checks": [f"test -f {task_id}.txt"],
            }
            for task_id in task_ids
        ],
    }


def _by_id(report: RunReport) -> dict[str, TaskReport]:
    return {task.id: task for task in report.tasks}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def second_server(
    make_opencode_server: Callable[..., OpenCodeServer],
) -> AsyncIterator[OpenCodeServer]:
    """A second server, wired to the same scripted model, for this module's runs."""
    async with make_opencode_server() as server:
        yield server


@pytest.fixture
def passwords(
    monkeypatch: pytest.MonkeyPatch, opencode_server: OpenCodeServer, second_server: OpenCodeServer
) -> RunSettings:
    """Each server's password in its own environment variable, named by the settings."""
    monkeypatch.setenv(FIRST_ENV, opencode_server.password.get_secret_value())
    monkeypatch.setenv(SECOND_ENV, second_server.password.get_secret_value())
    return RunSettings(
        server_url=opencode_server.url,
        server_urls=[second_server.url],
        password_env=FIRST_ENV,
        password_envs={second_server.url: SECOND_ENV},
    )


async def _holds(server: OpenCodeServer, repo: Path, session_ids: list[str]) -> set[str]:
    """Which of ``session_ids`` ``server`` holds."""
    held = set()
    async with OpenCodeClient(server.url, password=server.password) as client:
        for session_id in session_ids:
            with contextlib.suppress(NotFoundError):
                await client.get_session(session_id, repo)
                held.add(session_id)
    return held


# -- 0. check commands see no server's password -----------------------------------------


async def test_check_commands_see_neither_servers_password(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    second_server: OpenCodeServer,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Names that do not look like secrets, so that only the settings can withhold them.
    first_env, second_env = "LGOC_TEST_FIRST_SERVER", "LGOC_TEST_SECOND_SERVER"
    monkeypatch.setenv(first_env, opencode_server.password.get_secret_value())
    monkeypatch.setenv(second_env, second_server.password.get_secret_value())
    seen = tmp_path / "check-env.txt"
    plan = _plan("a")
    plan["tasks"][0]["checks"] = [f"env > {seen} && test -f a.txt"]
    model.script(planner_returns(plan), worker_writes("a", {"a.txt": "a\n"}), reviewer_says(True))
    settings = RunSettings(
        server_url=opencode_server.url,
        server_urls=[second_server.url],
        password_env=first_env,
        password_envs={second_server.url: second_env},
    )

    report = await aorchestrate("one file", repo=git_repo, settings=settings)

    assert report.status == "completed", report.to_markdown()
    env = seen.read_text()
    assert "PATH=" in env
    for server in (opencode_server, second_server):
        assert server.password.get_secret_value() not in env


async def _killed_while_hanging(
    run: asyncio.Task[RunReport],
    hold: Hang,
    doomed: OpenCodeServer,
    killed: asyncio.Event | None = None,
    announced: Awaitable[None] | None = None,
) -> RunReport:
    """Kill ``doomed`` once a model call hangs on ``hold`` and ``announced`` is done
    (then set ``killed``); the report."""
    try:
        assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT), "no call hung"
        if announced is not None:
            await asyncio.wait_for(announced, TIMEOUT)
        await doomed.kill()
        if killed is not None:
            killed.set()
        return await asyncio.wait_for(run, TIMEOUT * 2)
    finally:
        hold.release()
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run


# -- 1. four tasks over two servers --------------------------------------------------


async def test_tasks_are_spread_over_both_servers_and_all_merged(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    second_server: OpenCodeServer,
    passwords: RunSettings,
    git_repo: Path,
) -> None:
    tasks = ("a", "b", "c", "d")
    model.script(
        planner_returns(_plan(*tasks)),
        *(worker_writes(t, {f"{t}.txt": f"from {t}\n"}) for t in tasks),
        reviewer_says(True, repeat=True),
    )
    events: list[dict[str, Any]] = []

    report = await aorchestrate(
        "one file per task", repo=git_repo, settings=passwords, on_event=events.append
    )

    assert report.status == "completed", report.to_markdown()
    assert {t.id: t.status for t in report.tasks} == dict.fromkeys(tasks, "merged")
    for t in tasks:
        assert git(git_repo, "show", f"{report.integration_branch}:{t}.txt") == f"from {t}\n"
    first, second = opencode_server.url, second_server.url
    # Least loaded first, ties in list order: a, c on the first server; b, d on the second.
    servers = {t.id: t.server for t in report.tasks}
    assert servers == {"a": first, "b": second, "c": first, "d": second}
    assert "| server |" in report.to_markdown()

    # Each server really holds the worker sessions the report names, and only those.
    workers = {t.id: t.sessions[0] for t in report.tasks}
    everyone = list(workers.values())
    assert await _holds(opencode_server, git_repo, everyone) == {workers["a"], workers["c"]}
    assert await _holds(second_server, git_repo, everyone) == {workers["b"], workers["d"]}
    # The planner ran on the primary server, in its checkout. Worker sessions are nobody's
    # children (OpenCode's subagent depth limit would refuse their own subagents otherwise).
    checkout = (await Repo.open(git_repo)).run(report.run_id).planner_path
    checkout.mkdir()  # removed with the run; the server lists its sessions by that path
    async with OpenCodeClient(first, password=opencode_server.password) as client:
        (planner,) = [s for s in await client.list_sessions(checkout) if s.title.startswith("plan")]
        assert await client.children(planner.id, checkout) == []
        for task in report.tasks:
            if task.server == first:
                session = await client.get_session(task.sessions[0], task.worktree)
                assert session.parent_id is None

    dispatched = [e for e in events if e["kind"] == "dispatched"]
    assert {e["task"]: e["server"] for e in dispatched} == servers
    assert_no_prompt_twice(model)

    # The passwords came from the environment and went nowhere else.
    stored = checkpoint_path(await Repo.open(git_repo)).read_bytes()
    for server in (opencode_server, second_server):
        secret = server.password.get_secret_value()
        assert secret.encode() not in stored
        assert secret not in report.model_dump_json()
        assert secret not in str(events)


# -- 2. a server dies mid-turn -----------------------------------------------------------


async def test_a_killed_server_has_its_task_resent_on_the_other_server(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    monkeypatch: pytest.MonkeyPatch,
    git_repo: Path,
) -> None:
    hold = Hang()  # b's first model call, on the server that will die, never answers
    model.script(
        worker_writes("a", {"a.txt": "from a\n"}),
        Step(hold, user=task_prompt("b"), name="b hangs on the doomed server"),
        # The new session on the surviving server gets the task again, and the note.
        worker_writes("b", {"b.txt": "from b\n"}, user="Task `b` was interrupted"),
        reviewer_says(True, repeat=True),
    )
    events: list[dict[str, Any]] = []
    async with make_opencode_server() as doomed:
        monkeypatch.setenv(SECOND_ENV, doomed.password.get_secret_value())
        run = asyncio.create_task(
            aorchestrate(
                "two files",
                repo=git_repo,
                plan=_plan("a", "b"),
                server_url=[opencode_server.url, doomed.url],
                password=opencode_server.password,
                settings=RunSettings(
                    password_envs={doomed.url: SECOND_ENV}, server_lost_after=LOST_AFTER
                ),
                on_event=events.append,
            )
        )
        report = await _killed_while_hanging(run, hold, doomed)

    assert report.status == "completed", report.to_markdown()
    assert {t.id: t.status for t in report.tasks} == {"a": "merged", "b": "merged"}
    assert git(git_repo, "show", f"{report.integration_branch}:b.txt") == "from b\n"
    b = _by_id(report)["b"]
    assert b.server == opencode_server.url
    assert b.moves == 1
    moved_to = b.sessions[1]
    assert await _holds(opencode_server, git_repo, [moved_to]) == {moved_to}
    kinds = [e["kind"] for e in events if e.get("task") == "b"]
    assert kinds.index("moved") < kinds.index("merged")

    # The re-send was a new prompt in a new session: the task's instructions and
    # the note to carry on; nothing reached the model twice.
    moved = [
        texts for texts in model.prompts().values() if any("was interrupted" in t for t in texts)
    ]
    assert len(moved) == 1
    assert len(moved[0]) == 1
    assert "Create b.txt" in moved[0][0]
    assert f"{doomed.url} went away" in moved[0][0]
    assert_no_prompt_twice(model)


def _hold_first_read_back(monkeypatch: pytest.MonkeyPatch, url: str, until: asyncio.Event) -> None:
    """Make the supervisor read every turn back, and its first read-back of a session on
    ``url`` wait for ``until``.

    A prompt this process posts is followed from before its post, without a read-back:
    here its subscription is dropped, as for a prompt an earlier process had posted.
    """
    real_follow = supervisor.Supervisor.follow

    def unheard(
        self: supervisor.Supervisor, owner: str, job: Any, record: Any, **kwargs: Any
    ) -> None:
        events = kwargs.pop("events", None)
        if events is not None:
            events.close()
        real_follow(self, owner, job, record, **kwargs)

    monkeypatch.setattr(supervisor.Supervisor, "follow", unheard)
    real = supervisor.descendants

    async def late(client: OpenCodeClient, *args: Any, **kwargs: Any) -> list[str]:
        if client.base_url == url.rstrip("/"):
            await until.wait()
        return await real(client, *args, **kwargs)

    monkeypatch.setattr(supervisor, "descendants", late)


LOST_TURN_TOKENS = 50_000
"""What the turn that dies with its server had used: far more than the rest of the run."""


async def _costly_step(events: Subscription) -> None:
    """Return once ``events`` carry an assistant message with the costly step's usage."""
    async for event in events:
        info = event.properties.get("info") or {}
        if TokenUsage.from_server(info.get("tokens")).total >= LOST_TURN_TOKENS:
            return


@pytest.mark.parametrize("read_back", ["none_needed", "never"])
async def test_a_turn_lost_with_its_server_keeps_the_usage_it_had(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    monkeypatch: pytest.MonkeyPatch,
    git_repo: Path,
    read_back: str,
) -> None:
    """``none_needed``: the turn is followed from before its post (the default).
    ``never``: it is read back, and the server dies before its follower could do that
    (as on a busy machine); what the event stream said before still counts."""
    killed = asyncio.Event()
    hold = Hang()  # the second model call, on the server that will die, never answers
    model.script(
        Conversation(
            ToolCalls(
                ToolCall.bash("echo working"),
                usage=Usage(prompt_tokens=LOST_TURN_TOKENS, completion_tokens=0),
            ),
            Step(hold, after_tool="bash"),
            user=task_prompt("a"),
            name="worker a on the doomed server: one costly step, then it hangs",
        ),
        worker_writes("a", {"a.txt": "from a\n"}, user="Task `a` was interrupted"),
        reviewer_says(True, repeat=True),
    )
    monkeypatch.setenv(FIRST_ENV, opencode_server.password.get_secret_value())
    async with (
        make_opencode_server() as doomed,
        OpenCodeClient(doomed.url, password=doomed.password) as client,
        EventHub(client) as hub,
    ):
        await hub.wait_connected(timeout=TIMEOUT)
        if read_back == "never":
            _hold_first_read_back(monkeypatch, doomed.url, killed)
        usage = hub.subscribe(types={"message.updated"})
        run = asyncio.create_task(
            aorchestrate(
                "one file",
                repo=git_repo,
                plan=_plan("a"),
                server_url=[doomed.url, opencode_server.url],
                password=doomed.password,
                settings=RunSettings(
                    password_envs={opencode_server.url: FIRST_ENV}, server_lost_after=LOST_AFTER
                ),
            )
        )
        # The server has told its event streams what the costly step used (it dies
        # after; what it never sent cannot be counted).
        report = await _killed_while_hanging(run, hold, doomed, killed, _costly_step(usage))

    assert report.status == "completed", report.to_markdown()
    a = _by_id(report)["a"]
    assert a.moves == 1
    # The lost turn's usage counts: in the task, and in the run's total.
    assert a.tokens > LOST_TURN_TOKENS
    assert report.tokens > LOST_TURN_TOKENS


async def test_resumed_without_a_server_its_task_moves_to_the_servers_given(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    second_server: OpenCodeServer,
    passwords: RunSettings,
    git_repo: Path,
) -> None:
    hold = Hang()  # b's first model call, on the second server, never answers
    model.script(
        Step(hold, user=task_prompt("b"), name="b hangs on the second server"),
        worker_writes("b", {"b.txt": "from b\n"}, user="Task `b` was interrupted"),
        reviewer_says(True, repeat=True),
    )
    # The second server first: b goes there.
    settings = RunSettings(
        server_url=second_server.url,
        server_urls=[opencode_server.url],
        password_env=FIRST_ENV,
        password_envs={second_server.url: SECOND_ENV},
    )
    first_run = asyncio.create_task(
        aorchestrate("one file", repo=git_repo, plan=_plan("b"), settings=settings, run_id="r1")
    )
    try:
        assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
    finally:
        first_run.cancel()  # as Ctrl-C would: the checkpoint has b's prompt out
        with contextlib.suppress(asyncio.CancelledError):
            await first_run

    # The user drops the second server from the run; b's session there is
    # stopped by hand (a run never talks to a server it does not list).
    (old_session,) = [
        key
        for key, records in model.conversations().items()
        if task_prompt("b") in records[0].request.first_user_text
    ]
    worktree = git_repo / ".git" / "langgraph-opencode" / "runs" / "r1" / "worktrees" / "b"
    async with OpenCodeClient(second_server.url, password=second_server.password) as client:
        await client.abort(old_session, worktree)
    try:
        # Resumed with the first server only.
        only_first = RunSettings(server_url=passwords.server_url, password_env=FIRST_ENV)
        report = await aresume("r1", repo=git_repo, settings=only_first)
    finally:
        hold.release()

    assert report.status == "completed", report.to_markdown()
    b = _by_id(report)["b"]
    assert (b.status, b.server, b.moves) == ("merged", opencode_server.url, 1)
    assert git(git_repo, "show", f"{report.integration_branch}:b.txt") == "from b\n"
    assert await _holds(opencode_server, git_repo, [b.sessions[1]]) == {b.sessions[1]}
    assert_no_prompt_twice(model)


async def test_with_every_server_gone_the_run_stops_with_a_clear_error(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    monkeypatch: pytest.MonkeyPatch,
    git_repo: Path,
) -> None:
    hold = Hang()
    model.script(Step(hold, user=task_prompt("a"), name="a hangs"))
    async with make_opencode_server() as first, make_opencode_server() as second:
        monkeypatch.setenv(FIRST_ENV, first.password.get_secret_value())
        monkeypatch.setenv(SECOND_ENV, second.password.get_secret_value())
        settings = RunSettings(
            server_urls=[first.url, second.url],
            password_env=FIRST_ENV,
            password_envs={second.url: SECOND_ENV},
            server_lost_after=LOST_AFTER,
        )
        run = asyncio.create_task(
            aorchestrate("one file", repo=git_repo, plan=_plan("a"), settings=settings)
        )
        try:
            assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
            await first.kill()
            await second.kill()
            with pytest.raises(OpenCodeConnectionError) as info:
                await asyncio.wait_for(run, TIMEOUT * 2)
        finally:
            hold.release()
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
    message = str(info.value)
    assert "no OpenCode server of the run can be reached" in message
    assert first.url in message
    assert second.url in message
    assert "resumed" in message


# -- 3. bad servers are refused before anything changes ------------------------------------


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


async def test_an_unreachable_second_server_is_refused_before_the_run_starts(
    opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}"
    before = _refs(git_repo)
    try:
        with pytest.raises(OpenCodeConnectionError, match="could not reach") as info:
            await aorchestrate(
                "objective",
                repo=git_repo,
                plan=_plan("a"),
                server_url=[opencode_server.url, unreachable],
                password=opencode_server.password,
            )
    finally:
        closed.close()
    assert unreachable in str(info.value)
    assert _refs(git_repo) == before


async def test_a_wrong_password_for_the_second_server_names_it_and_its_variable(
    monkeypatch: pytest.MonkeyPatch, passwords: RunSettings, git_repo: Path
) -> None:
    monkeypatch.setenv(SECOND_ENV, "wrong-5e2f")
    second = passwords.server_urls[0]
    before = _refs(git_repo)
    with pytest.raises(AuthenticationError, match="password") as info:
        await aorchestrate("objective", repo=git_repo, plan=_plan("a"), settings=passwords)
    message = str(info.value)
    assert second in message
    assert SECOND_ENV in message
    assert "wrong-5e2f" not in message
    assert _refs(git_repo) == before


# -- settings and placement ------------------------------------------------------------------


def test_servers_are_the_primary_then_the_others_without_repeats() -> None:
    settings = RunSettings(
        server_url="http://a:1/",
        server_urls=["http://b:2", "http://a:1", "http://c:3/"],
        password_envs={"http://c:3": "C_PASSWORD"},
    )
    assert settings.servers() == ["http://a:1", "http://b:2", "http://c:3"]
    assert settings.password_env_for("http://c:3/") == "C_PASSWORD"
    assert settings.password_env_for("http://b:2") == "OPENCODE_SERVER_PASSWORD"
    assert RunSettings(server_urls=["http://b:2"]).servers() == ["http://b:2"]


def test_every_bad_server_setting_is_named_and_no_credential_is_echoed() -> None:
    with pytest.raises(ConfigurationError) as info:
        RunSettings(
            server_url="ftp://a:1",
            server_urls=["", "http://user:hunter2@b:2", "not a url"],
            password_envs={"http://elsewhere:9": ""},
            password_env="",
        )
    message = str(info.value)
    for problem in (
        "server URLs look like 'http://host:port', got 'ftp://a:1'",
        "server_urls entries must not be empty",
        "got 'not a url'",
        "the server URL for host 'b' holds credentials",
        "password_envs['http://elsewhere:9'] must name an environment variable, got ''",
        "password_env must name an environment variable",
    ):
        assert problem in message
    assert "hunter2" not in message


def test_the_cli_takes_several_servers_and_gives_them_back_to_resume() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "x",
            "--server",
            "http://a:1",
            "--server",
            "http://b:2",
            "--server-password-env",
            "http://b:2=B_PASSWORD",
        ]
    )
    settings = _settings(args)
    assert settings.servers() == ["http://a:1", "http://b:2"]
    assert settings.password_env_for("http://b:2") == "B_PASSWORD"
    assert settings.password_env_for("http://a:1") == "OPENCODE_SERVER_PASSWORD"
    command = resume_command(args, "run-1", str(Path.cwd()))
    assert command == [
        "langgraph-opencode",
        "resume",
        "run-1",
        "--server",
        "http://a:1",
        "--server",
        "http://b:2",
        "--server-password-env",
        "http://b:2=B_PASSWORD",
    ]


def test_least_loaded_first_ties_in_list_order() -> None:
    servers = ["http://a", "http://b", "http://c"]
    assert least_loaded(servers, {}) == servers
    assert least_loaded(servers, {"http://a": 2, "http://b": 1}) == [
        "http://c",
        "http://b",
        "http://a",
    ]
    assert least_loaded(servers, {"http://a": 1, "http://b": 1, "http://c": 1}) == servers
