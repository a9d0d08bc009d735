"""Knowing when a prompt's run has ended, and how.

The server's signals are racy (see the server notes): the first ``busy`` can
come more than a second after ``prompt_async`` returned, the final
``message.updated`` can arrive just after ``session.idle``, errors can produce
two idle events, and events missed while the stream was down are never
replayed. So a turn has ended when the session is idle *and* its last
assistant message is final. That message is read from the events when they
tell the whole turn (a ``Transcript`` fed from a subscription opened before the
prompt was sent, or seeded by a read-back made after it was opened), and from
the session's messages otherwise; after a reconnect or a silence the state is
always read back.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.events import RECONNECTED, EventHub, Subscription
from langgraph_opencode.tools.opencode.models import (
    Event,
    Message,
    MessageError,
    OutcomeKind,
    PermissionRequest,
    PromptOutcome,
    QuestionRequest,
    SessionStatus,
    TokenUsage,
)
from langgraph_opencode.tools.opencode.transcript import Transcript

__all__ = [
    "SessionState",
    "descendants",
    "judge_turn",
    "prompt_arrived",
    "reconcile",
    "send_and_wait",
    "turn_usage",
    "wait_for_outcome",
]

_ERROR_KINDS: Mapping[str, OutcomeKind] = {
    "APIError": "api_error",
    "MessageAbortedError": "aborted",
    "StructuredOutputError": "structured_output_missing",
    "ContextOverflowError": "context_overflow",
    "ProviderAuthError": "auth",
}

_WAKE_TYPES = frozenset({"session.idle", "session.error", "message.updated", "session.status"})
_INPUT_TYPES = frozenset({"permission.asked", "question.asked"})


def _turn(messages: Sequence[Message], user_message_id: str | None) -> tuple[bool, list[Message]]:
    """Return whether the user message is present and its assistant messages."""
    if user_message_id is None:
        users = [m for m in messages if m.info.role == "user"]
        if not users:
            return False, []
        user_message_id = users[-1].info.id
    present = any(m.info.id == user_message_id for m in messages)
    answers = [
        m for m in messages if m.info.role == "assistant" and m.info.parent_id == user_message_id
    ]
    return present, answers


def _usage(answers: Sequence[Message]) -> tuple[TokenUsage, float]:
    tokens = TokenUsage()
    for message in answers:
        tokens = tokens + message.info.tokens
    return tokens, sum(m.info.cost for m in answers)


def turn_usage(messages: Sequence[Message], user_message_id: str) -> tuple[TokenUsage, float]:
    """The tokens and cost of the turn the prompt ``user_message_id`` started, so far."""
    return _usage(_turn(messages, user_message_id)[1])


def _outcome(
    kind: OutcomeKind,
    session_id: str,
    answers: Sequence[Message],
    *,
    error: MessageError | None = None,
    note: str | None = None,
) -> PromptOutcome:
    last = answers[-1] if answers else None
    tokens, cost = _usage(answers)
    data: dict[str, Any] = error.data if error is not None else {}
    status = data.get("statusCode")
    return PromptOutcome(
        kind=kind,
        session_id=session_id,
        message_id=last.info.id if last else None,
        text=last.text if last else "",
        structured=last.info.structured if last else None,
        tokens=tokens,
        cost=cost,
        finish=last.info.finish if last else None,
        error_name=error.name if error is not None else None,
        error_message=error.message if error is not None else note,
        status_code=status if isinstance(status, int) else None,
        retryable=bool(data.get("isRetryable", False)),
    )


def _needs_input(
    session_id: str,
    permissions: Sequence[PermissionRequest],
    questions: Sequence[QuestionRequest],
) -> PromptOutcome:
    asks = [f"permission {p.id} ({p.permission}: {', '.join(p.patterns)})" for p in permissions]
    asks += [f"question {q.id}" for q in questions]
    return PromptOutcome(
        kind="needs_input",
        session_id=session_id,
        error_message="the run waits for an answer to " + "; ".join(asks),
        pending=[p.id for p in permissions] + [q.id for q in questions],
    )


def judge_turn(
    session_id: str,
    messages: Sequence[Message],
    user_message_id: str | None,
    *,
    idle: bool,
) -> PromptOutcome | None:
    """Decide how a turn ended, or ``None`` while it may still be running.

    Args:
        session_id: The session.
        messages: Its recent messages, oldest first (they must include the user message).
        user_message_id: The prompt's message id; ``None`` means the last user message.
        idle: Whether the session is known to be idle now. Without it, only a
            turn whose last assistant message is unmistakably final is judged.
    """
    present, answers = _turn(messages, user_message_id)
    if not answers:
        if not idle:
            return None
        note = "the prompt never reached the session" if not present else "no answer was started"
        return _outcome("incomplete", session_id, answers, note=note)
    last = answers[-1].info
    if last.error is not None:
        return _outcome(
            _ERROR_KINDS.get(last.error.name, "unknown"), session_id, answers, error=last.error
        )
    if last.completed and (last.structured is not None or last.finish == "stop"):
        # A structured answer ends with the StructuredOutput tool call.
        return _outcome("ok", session_id, answers)
    if last.completed and last.finish not in (None, "tool-calls"):
        # "length", "content-filter", "error", "other": the model stopped short.
        note = f"the model stopped early (finish reason {last.finish!r})"
        return _outcome("unknown", session_id, answers, note=note)
    if not idle:
        return None
    if last.completed and last.finish is None:
        # Observed when a run is aborted while it waits to retry the model.
        return _outcome("aborted", session_id, answers, note="aborted while waiting to retry")
    return _outcome("incomplete", session_id, answers, note="the run stopped before finishing")


class SessionState(BaseModel):
    """What a tracked session is doing, read back from the server.

    Attributes:
        session_id: The session.
        status: ``busy`` and ``retry`` mean keep waiting.
        retry: The retry details when ``status == "retry"``.
        prompt_received: Whether the tracked prompt is in the session.
        outcome: How the tracked turn ended, when the session is idle.
        permissions: Permission requests the session is waiting on.
        questions: Questions the session is waiting on.
        answers: The tracked turn's assistant messages so far, oldest first.
    """

    model_config = ConfigDict(frozen=True)

    session_id: str
    status: Literal["idle", "busy", "retry"]
    retry: SessionStatus | None = None
    prompt_received: bool
    outcome: PromptOutcome | None = None
    permissions: list[PermissionRequest] = []
    questions: list[QuestionRequest] = []
    answers: list[Message] = []

    @property
    def needs_prompt(self) -> bool:
        """Idle, and the tracked prompt never arrived or its run died: send it again."""
        return self.status == "idle" and (
            not self.prompt_received
            or (self.outcome is not None and self.outcome.kind == "incomplete")
        )


async def _recent_messages(
    client: OpenCodeClient,
    session_id: str,
    directory: str | os.PathLike[str],
    user_message_id: str | None,
    *,
    structured: bool = False,
) -> list[Message]:
    messages = await client.messages(session_id, directory, limit=100, structured=structured)
    if (
        user_message_id is not None
        and len(messages) == 100
        and not any(m.info.id == user_message_id for m in messages)
    ):
        messages = await client.messages(session_id, directory, limit=10_000)
    return messages


async def prompt_arrived(
    client: OpenCodeClient,
    session_id: str,
    directory: str | os.PathLike[str],
    message_id: str,
) -> bool:
    """Whether the session has a message with this id (so the prompt must not be sent again)."""
    messages = await _recent_messages(client, session_id, directory, message_id)
    return any(m.info.id == message_id for m in messages)


async def descendants(
    client: OpenCodeClient, session_id: str, directory: str | os.PathLike[str]
) -> list[str]:
    """The sessions started under ``session_id`` (subagents', and theirs), nearest first."""
    found: list[str] = []
    level = [session_id]
    while level:
        children = await asyncio.gather(*(client.children(s, directory) for s in level))
        level = [c.id for group in children for c in group if c.id not in found]
        found += level
    return found


async def reconcile(
    client: OpenCodeClient,
    session_id: str,
    directory: str | os.PathLike[str],
    user_message_id: str | None = None,
    *,
    family: Collection[str] = (),
) -> SessionState:
    """Work out a tracked session's state after a reconnect or a restart.

    Reads the directory's status, the pending permission requests and the
    session's recent messages; never sends anything.

    Args:
        client: The client of the session's server.
        session_id: The session.
        directory: Its directory.
        user_message_id: The prompt being tracked; ``None``: the last one.
        family: Its descendants (subagents' sessions): their permission
            requests and questions hold up the tracked turn too.
    """
    # A read-back is on the path of every monitor step: the three reads of
    # the directory go at once. The messages are read after the status, so
    # a session idle by then has its final messages in them.
    statuses, all_permissions, all_questions = await asyncio.gather(
        client.status(directory), client.permissions(directory), client.questions(directory)
    )
    messages = await _recent_messages(client, session_id, directory, user_message_id)
    status = statuses.get(session_id)
    asking = {session_id, *family}
    permissions = [p for p in all_permissions if p.session_id in asking]
    questions = [q for q in all_questions if q.session_id in asking]
    present, answers = _turn(messages, user_message_id)
    idle = status is None or status.type == "idle"
    return SessionState(
        session_id=session_id,
        status="idle" if idle or status is None else status.type,
        retry=status if status is not None and status.type == "retry" else None,
        prompt_received=present,
        outcome=judge_turn(session_id, messages, user_message_id, idle=idle),
        permissions=permissions,
        questions=questions,
        answers=answers,
    )


async def wait_for_outcome(
    client: OpenCodeClient,
    subscription: Subscription,
    session_id: str,
    directory: str | os.PathLike[str],
    user_message_id: str,
    *,
    timeout: float | None = None,
    watchdog: float = 30.0,
    settle: float = 2.0,
    boot_grace: float = 30.0,
    on_event: Callable[[Event], None] | None = None,
    idle: bool = False,
    structured: bool = False,
    transcript: Transcript | None = None,
) -> PromptOutcome:
    """Wait until the turn started by ``user_message_id`` has ended.

    Subscribe *before* sending the prompt, so that no event is missed.

    Args:
        client: The client of the session's server.
        subscription: A subscription that receives this session's events.
        session_id: The session.
        directory: Its directory.
        user_message_id: The id of the prompt's user message.
        timeout: Give up after this many seconds (``None``: no limit).
        watchdog: With no event for this long, read the state from the server
            anyway, so a lost event cannot make the wait hang.
        settle: After ``session.idle``, how long to wait for the final
            ``message.updated`` before reading the state.
        boot_grace: For this long after the start, "idle and no answer yet"
            read back from the server is not taken as the end (the server may
            still be starting the directory).
        on_event: Called with each of the session's events (progress display),
            and with those of its descendants the subscription follows.
        idle: The session was just read back idle with its answer not yet
            final (see :func:`reconcile`): the final ``message.updated`` that
            follows ends the wait, as after a ``session.idle`` event.
        structured: The prompt asked for a structured answer (a JSON
            schema): its messages are read as the server allows after one
            (see :meth:`OpenCodeClient.messages`).
        transcript: The turn's answers as known when the wait begins: empty
            if ``subscription`` was opened before the prompt was sent, or
            seeded from a read-back made after it was opened. It is kept up
            to date from the events, and an idle session whose final answer
            it shows is judged from it, without reading the messages back.
            ``None``: the messages are always read back at the end.

    A subscription that follows the session's descendants (subagents, see
    ``EventHub.subscribe``) makes their permission requests and questions
    end the wait with ``needs_input`` too; their other events only reach
    ``on_event``.

    Returns:
        The outcome. ``incomplete``: the run died and the prompt should be
        sent again. ``needs_input``: the run is paused on the permission
        requests or questions listed in ``pending``; answer them and call
        this again to go on waiting.

    Raises:
        TimeoutError: ``timeout`` passed first. The run is left running.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    busy_seen = idle_seen = idle
    unfinished_reads = 0
    final: PromptOutcome | None = None
    next_wait = watchdog
    while True:
        wait = settle if idle_seen else next_wait
        next_wait = watchdog
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"session {session_id} did not finish its turn within {timeout:g} s"
                )
            wait = min(wait, remaining)
        event = await subscription.get(timeout=wait)
        if event is not None and event.type != RECONNECTED:
            if transcript is not None:
                transcript.observe(event)
            if on_event is not None:
                on_event(event)
        if event is not None and event.type == RECONNECTED and subscription.descendants:
            # Subagents started while the stream was down announced themselves unheard.
            subscription.add_sessions(await descendants(client, session_id, directory))
        family = (subscription.session_ids or set()) - {session_id}
        if event is None or event.type == RECONNECTED:
            state = await reconcile(client, session_id, directory, user_message_id, family=family)
            if transcript is not None:
                transcript.seed(state.answers)
            if state.permissions or state.questions:
                return _needs_input(session_id, state.permissions, state.questions)
            outcome = state.outcome
            idle_seen = False
            if state.status != "idle" or (outcome is not None and outcome.message_id):
                busy_seen = True
            if outcome is None or state.status != "idle":
                continue
            if outcome.kind != "incomplete":
                return outcome
            if outcome.message_id is None and time.monotonic() - started < boot_grace:
                # The server can take a while to start a directory's first run:
                # "idle with no answer yet" is not an end so soon after sending.
                next_wait = min(1.0, watchdog)
                continue
            # "Idle but unfinished" is believed only when a second look agrees:
            # the final message.updated can come late after session.idle.
            unfinished_reads += 1
            if unfinished_reads >= 2:
                return outcome
            next_wait = settle
            continue
        if event.session_id != session_id and event.type not in _INPUT_TYPES:
            continue  # a descendant's: life, not the end of this turn
        unfinished_reads = 0
        if event.type in _INPUT_TYPES:
            state = await reconcile(client, session_id, directory, user_message_id, family=family)
            if state.permissions or state.questions:
                return _needs_input(session_id, state.permissions, state.questions)
            continue
        if event.type == "session.status":
            kind = (event.properties.get("status") or {}).get("type")
            if kind != "idle":
                busy_seen, idle_seen = True, False
                continue
        elif event.type == "message.updated":
            info = event.properties.get("info") or {}
            if info.get("role") != "assistant" or info.get("parentID") != user_message_id:
                continue
            busy_seen = True
            if not (info.get("error") or (info.get("time") or {}).get("completed")):
                continue
        elif event.type not in _WAKE_TYPES:
            continue
        idle_event = event.type in ("session.idle", "session.status")
        if idle_event and busy_seen:
            idle_seen = True
        if idle_event or idle_seen:
            # Judge only once the session is idle (or its final message.updated
            # after the idle): from the events when they show a final answer,
            # else from the messages read back (the steps before need neither).
            final = (
                None
                if transcript is None
                else judge_turn(session_id, transcript.answers, user_message_id, idle=False)
            )
            if final is None:
                messages = await _recent_messages(
                    client, session_id, directory, user_message_id, structured=structured
                )
                final = judge_turn(session_id, messages, user_message_id, idle=False)
        if final is not None and (idle_seen or idle_event):
            # A final answer to this prompt exists, so its turn did start: this
            # idle is its end, even if the wait began after the busy status.
            return final


async def send_and_wait(
    client: OpenCodeClient,
    hub: EventHub,
    session_id: str,
    directory: str | os.PathLike[str],
    text: str,
    *,
    agent: str,
    timeout: float | None = None,
    on_event: Callable[[Event], None] | None = None,
    **prompt_options: Any,
) -> PromptOutcome:
    """Send a prompt with ``prompt_async`` and wait for its outcome through events.

    Args:
        client: The client of the session's server.
        hub: The event hub following that server.
        session_id: The session (it must be idle).
        directory: Its directory.
        text: The prompt.
        agent: The agent to run it.
        timeout: Give up waiting after this many seconds (``None``: no limit).
        on_event: Called with each of the session's events.
        **prompt_options: ``model``, ``schema``, ``system``, ``tools``,
            ``message_id``, as for :meth:`OpenCodeClient.prompt_async`.
    """
    await hub.wait_connected()
    with hub.subscribe(session_ids={session_id}) as sub:
        message_id = await client.prompt_async(
            session_id, directory, text, agent=agent, **prompt_options
        )
        # Subscribed before sending: the events tell the whole turn.
        return await wait_for_outcome(
            client,
            sub,
            session_id,
            directory,
            message_id,
            timeout=timeout,
            on_event=on_event,
            structured=prompt_options.get("schema") is not None,
            transcript=Transcript(session_id, message_id),
        )
