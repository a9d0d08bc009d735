"""The client against a real `opencode serve` driven by the scripted model.

OpenCode really runs the tools the script asks for: files are written in real
git repositories and commands really run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from langgraph_opencode.errors import (
    AuthenticationError,
    DirectoryNotFoundError,
    EventStreamError,
)
from langgraph_opencode.testing import (
    Conversation,
    ErrorResponse,
    Hang,
    ScriptedModelServer,
    Step,
    StructuredOutput,
    Text,
    ToolCall,
    git,
)
from langgraph_opencode.tools.opencode import (
    RECONNECTED,
    EventHub,
    Message,
    OpenCodeClient,
    judge_turn,
    reconcile,
    send_and_wait,
    wait_for_outcome,
)
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

BUILD = "build"
TIMEOUT = 300.0
"""Bound of every wait for the server: a guard against hangs, not a measure of speed."""
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "feedback": {"type": "string"}},
    "required": ["approved", "feedback"],
}


async def test_prompt_makes_opencode_write_a_file(
    model: ScriptedModelServer, opencode: OpenCodeClient, git_repo: Path
) -> None:
    model.script(
        Conversation(
            ToolCall.write("hello.txt", "hello from opencode\n"),
            Step(Text("Created hello.txt."), after_tool="write"),
            user="create hello.txt",
        )
    )
    session = await opencode.create_session(git_repo, title="write a file")
    assert session.directory == str(git_repo)

    answer = await opencode.prompt(session.id, git_repo, "Please create hello.txt", agent=BUILD)

    assert answer.info.finish == "stop"
    assert answer.text == "Created hello.txt."
    assert (git_repo / "hello.txt").read_text() == "hello from opencode\n"
    assert git(git_repo, "status", "--porcelain").strip() == "?? hello.txt"
    model.assert_complete()


async def test_prompt_async_is_followed_to_its_end_through_events(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(
        Conversation(
            ToolCall.bash("echo built > build.log", description="build"),
            Step(Text("Build done."), after_tool="bash"),
            user="run the build",
        )
    )
    session = await opencode.create_session(git_repo, title="async")
    seen: list[str] = []

    outcome = await send_and_wait(
        opencode,
        opencode_events,
        session.id,
        git_repo,
        "Please run the build",
        agent=BUILD,
        timeout=TIMEOUT,
        on_event=lambda e: seen.append(
            f"status:{e.properties['status']['type']}" if e.type == "session.status" else e.type
        ),
    )

    assert outcome.kind == "ok", outcome
    assert outcome.text == "Build done."
    assert outcome.tokens.input > 0
    assert (git_repo / "build.log").read_text() == "built\n"
    # The wait followed the session from busy to idle.
    statuses = [s for s in seen if s.startswith("status:")]
    assert statuses[0] == "status:busy"
    assert statuses[-1] == "status:idle"
    model.assert_complete()


async def test_a_turn_followed_from_its_sending_is_judged_from_its_events_alone(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At its end a busy server answers reads slowest: the events already told the turn."""
    model.script(
        Conversation(
            ToolCall.write("notes.txt", "notes\n"),
            Step(Text("Wrote the notes."), after_tool="write"),
            user="write the notes",
        ),
        Step(StructuredOutput({"approved": True, "feedback": "fine"}), tool="StructuredOutput"),
    )
    session = await opencode.create_session(git_repo, title="events alone")
    read = opencode.messages
    reads: list[str] = []

    async def counted(*args: object, **kwargs: object) -> list[Message]:
        reads.append(str(args[0]))
        return await read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(opencode, "messages", counted)
    outcomes = [
        await send_and_wait(
            opencode,
            opencode_events,
            session.id,
            git_repo,
            text,
            agent=BUILD,
            timeout=TIMEOUT,
            **options,
        )
        for text, options in [
            ("Please write the notes", {}),
            ("Judge it", {"schema": VERDICT_SCHEMA}),
        ]
    ]
    monkeypatch.undo()

    assert reads == []
    # The same outcome as judged from the messages read back afterwards.
    messages = await opencode.messages(session.id, git_repo, structured=True)
    users = [m.info.id for m in messages if m.info.role == "user"]
    assert [judge_turn(session.id, messages, u, idle=True) for u in users] == outcomes
    assert outcomes[0].text == "Wrote the notes."
    assert outcomes[0].tokens.input > 0
    assert outcomes[1].structured == {"approved": True, "feedback": "fine"}
    model.assert_complete()


async def test_structured_output_is_returned(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(
        Step(StructuredOutput({"approved": True, "feedback": "fine"}), tool="StructuredOutput")
    )
    session = await opencode.create_session(git_repo, title="verdict")

    outcome = await send_and_wait(
        opencode,
        opencode_events,
        session.id,
        git_repo,
        "Judge it",
        agent=BUILD,
        schema=VERDICT_SCHEMA,
        timeout=TIMEOUT,
    )

    assert outcome.kind == "ok", outcome
    assert outcome.structured == {"approved": True, "feedback": "fine"}
    # The server refuses some listings after a structured prompt (#26929); the client copes.
    messages = await opencode.messages(session.id, git_repo)
    assert [m.info.role for m in messages] == ["user", "assistant"]
    model.assert_complete()


async def test_missing_structured_output_is_reported(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(Step(Text("I think it is fine."), tool="StructuredOutput"))
    session = await opencode.create_session(git_repo, title="no verdict")

    outcome = await send_and_wait(
        opencode,
        opencode_events,
        session.id,
        git_repo,
        "Judge it",
        agent=BUILD,
        schema=VERDICT_SCHEMA,
        timeout=TIMEOUT,
    )

    assert outcome.kind == "structured_output_missing", outcome
    assert outcome.structured is None
    assert outcome.error_name == "StructuredOutputError"
    model.assert_complete()


async def test_permission_ask_answered_once_lets_the_run_go_on(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(
        Conversation(
            ToolCall.bash("touch allowed.txt", description="touch"),
            Step(Text("Touched."), after_tool="bash"),
            user="touch allowed",
        )
    )
    session = await opencode.create_session(
        git_repo,
        title="ask",
        permission=[{"permission": "bash", "pattern": "*", "action": "ask"}],
    )
    with opencode_events.subscribe(session_ids={session.id}) as sub:
        message_id = await opencode.prompt_async(
            session.id, git_repo, "Please touch allowed.txt", agent=BUILD
        )
        paused = await wait_for_outcome(
            opencode, sub, session.id, git_repo, message_id, timeout=TIMEOUT
        )
        assert paused.kind == "needs_input", paused
        pending = await opencode.permissions(git_repo)
        assert [p.id for p in pending] == paused.pending
        assert pending[0].permission == "bash"
        assert "touch allowed.txt" in pending[0].patterns
        assert not (git_repo / "allowed.txt").exists()

        await opencode.reply_permission(pending[0].id, git_repo, "once")
        outcome = await wait_for_outcome(
            opencode, sub, session.id, git_repo, message_id, timeout=TIMEOUT
        )

    assert outcome.kind == "ok", outcome
    assert (git_repo / "allowed.txt").exists()
    assert await opencode.permissions(git_repo) == []
    model.assert_complete()


async def test_permission_rejected_with_feedback_reaches_the_model(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(
        Conversation(
            ToolCall.bash("rm -rf data", description="delete"),
            Step(Text("Understood, I left data alone."), tool_result="keep the data"),
            user="clean up",
        )
    )
    (git_repo / "data").mkdir()
    session = await opencode.create_session(
        git_repo,
        title="reject",
        permission=[{"permission": "bash", "pattern": "*", "action": "ask"}],
    )
    message_id = opencode.new_message_id()
    paused = await send_and_wait(
        opencode,
        opencode_events,
        session.id,
        git_repo,
        "Please clean up",
        agent=BUILD,
        timeout=TIMEOUT,
        message_id=message_id,
    )
    assert paused.kind == "needs_input", paused
    assert paused.error_message is not None
    assert "rm -rf data" in paused.error_message
    with opencode_events.subscribe(session_ids={session.id}) as sub:
        await opencode.reply_permission(
            paused.pending[0], git_repo, "reject", message="No: keep the data directory."
        )
        outcome = await wait_for_outcome(
            opencode, sub, session.id, git_repo, message_id, timeout=TIMEOUT
        )

    assert outcome.kind == "ok", outcome
    assert outcome.text == "Understood, I left data alone."
    assert (git_repo / "data").is_dir()
    model.assert_complete()


async def test_abort_stops_a_running_session(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    hang = Hang()
    model.script(Step(hang, user="think forever"))
    session = await opencode.create_session(git_repo, title="abort")
    try:
        with opencode_events.subscribe(session_ids={session.id}) as sub:
            message_id = await opencode.prompt_async(
                session.id, git_repo, "Please think forever", agent=BUILD
            )
            assert await asyncio.to_thread(hang.wait_until_hanging, TIMEOUT)
            assert (await opencode.status(git_repo))[session.id].type == "busy"

            assert await opencode.abort(session.id, git_repo)
            outcome = await wait_for_outcome(
                opencode, sub, session.id, git_repo, message_id, timeout=TIMEOUT
            )
    finally:
        hang.release()

    assert outcome.kind == "aborted", outcome
    assert session.id not in await opencode.status(git_repo)
    model.assert_complete()


async def test_model_http_500_is_a_retryable_api_error(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(
        Step(
            ErrorResponse(500, "upstream exploded", retry_after=0),
            user="fail please",
            repeat=True,
        )
    )
    session = await opencode.create_session(git_repo, title="500")

    outcome = await send_and_wait(
        opencode,
        opencode_events,
        session.id,
        git_repo,
        "Please fail please",
        agent=BUILD,
        timeout=TIMEOUT,
    )

    assert outcome.kind == "api_error", outcome
    assert outcome.status_code == 500
    assert outcome.retryable is True
    tries = [r for r in model.chat_requests() if "fail please" in r.request.last_user_text]
    assert len(tries) == 6  # the first try and OpenCode's five retries


async def test_server_killed_and_restarted_while_listening(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    git_repo: Path,
) -> None:
    hang = Hang()
    model.script(
        Step(hang, user="slow work"),
        Conversation(
            ToolCall.write("after.txt", "written after the restart\n"),
            Step(Text("Done after restart."), after_tool="write"),
            user="slow work",
        ),
    )
    async with (
        make_opencode_server() as server,
        OpenCodeClient(server.url, password=server.password) as oc,
        EventHub(oc, max_backoff=0.5) as hub,
    ):
        await hub.wait_connected(timeout=TIMEOUT)
        session = await oc.create_session(git_repo, title="survivor")
        with hub.subscribe(session_ids={session.id}) as sub:
            message_id = await oc.prompt_async(
                session.id, git_repo, "Do the slow work", agent=BUILD
            )
            assert await asyncio.to_thread(hang.wait_until_hanging, TIMEOUT)

            await server.kill()
            await server.start()
            hang.release()

            reconnect = await sub.get(timeout=TIMEOUT)
            while reconnect is not None and reconnect.type != RECONNECTED:
                reconnect = await sub.get(timeout=TIMEOUT)
            assert reconnect is not None, "the hub did not signal the reconnect"
            assert hub.connections == 2

            state = await reconcile(oc, session.id, git_repo, message_id)
            assert state.status == "idle"
            assert state.prompt_received
            assert state.outcome is not None
            assert state.outcome.kind == "incomplete"
            assert state.needs_prompt

        outcome = await send_and_wait(
            oc, hub, session.id, git_repo, "Do the slow work again", agent=BUILD, timeout=TIMEOUT
        )
    assert outcome.kind == "ok", outcome
    assert (git_repo / "after.txt").exists()
    model.assert_complete()


async def test_wrong_password_is_a_clear_auth_error(opencode_server: OpenCodeServer) -> None:
    wrong = "not-the-password-8f3a"
    async with OpenCodeClient(opencode_server.url, password=wrong) as oc:
        with pytest.raises(AuthenticationError) as info:
            await oc.health()
        async with EventHub(oc) as hub:
            # Refused at once ("was refused"), not retried until the timeout ("did not open").
            with pytest.raises(EventStreamError, match=r"was refused.*password"):
                await hub.wait_connected(timeout=TIMEOUT)
    assert "password" in str(info.value)
    assert wrong not in str(info.value)
    assert opencode_server.password.get_secret_value() not in str(info.value)


async def test_nonexistent_directory_is_refused(opencode: OpenCodeClient, tmp_path: Path) -> None:
    with pytest.raises(DirectoryNotFoundError, match="does not exist"):
        await opencode.create_session(tmp_path / "missing", title="nowhere")
    # Nothing reached the server: no session was made for that directory.
    sessions = await opencode.list_sessions(tmp_path)
    assert all(s.directory != str(tmp_path / "missing") for s in sessions)
