"""Async client for the OpenCode server's HTTP API.

One :class:`OpenCodeClient` owns one ``httpx.AsyncClient`` for one server.
Every call that belongs to a project directory takes ``directory`` and sends it
on the request, because the server scopes sessions, permissions and status by
directory (and silently accepts directories that do not exist, so the client
checks them first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from langgraph_opencode.errors import (
    BadRequestError,
    OpenCodeError,
)
from langgraph_opencode.tools.opencode._ids import ascending_id
from langgraph_opencode.tools.opencode._transport import DEFAULT_TIMEOUT, ClientTransport
from langgraph_opencode.tools.opencode.config import split_model
from langgraph_opencode.tools.opencode.models import (
    Message,
    PermissionReply,
    PermissionRequest,
    QuestionRequest,
    Session,
    SessionStatus,
    Todo,
)

__all__ = ["DEFAULT_TIMEOUT", "OpenCodeClient", "PermissionRule"]

PermissionRule = Mapping[str, str]
"""``{"permission": "bash", "pattern": "git *", "action": "allow" | "ask" | "deny"}``."""


def _unreadable_prompt(session_id: str, message_id: str) -> Message:
    info = {"id": message_id, "sessionID": session_id, "role": "user", "unreadable": True}
    return Message.model_validate({"info": info, "parts": []})


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, OpenCodeError) and exc.retryable


class OpenCodeClient(ClientTransport):
    """Client for one OpenCode server.

    Use it as an async context manager so its connections are closed::

        async with OpenCodeClient("http://127.0.0.1:4096", password=pw) as oc:
            session = await oc.create_session(repo, title="hello")

    Args:
        base_url: The server's URL, e.g. ``http://127.0.0.1:4096``.
        password: The server password (HTTP Basic auth). ``None`` reads
            ``OPENCODE_SERVER_PASSWORD``; when neither is set no auth is sent.
        username: The Basic-auth user; ``None`` reads ``OPENCODE_SERVER_USERNAME``,
            then defaults to ``opencode``.
        timeout: Timeouts for ordinary calls.
        retry_attempts: How many times a call that is safe to repeat is tried
            on connection errors and 5xx answers (1 disables retries).
        check_directories: Refuse directories that do not exist locally before
            sending anything. Turn off only for a server on another machine.
        trust_env: Use proxy settings from the environment. Off by default:
            a proxy would see the password, and httpx does not bypass proxies
            for loopback addresses.
        transport: An httpx transport, for tests.
    """

    # -- server ---------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """``GET /global/health``: ``{"healthy": true, "version": "..."}``."""
        result: dict[str, Any] = await self.request("GET", "/global/health", idempotent=True)
        return result

    async def models(self, directory: str | os.PathLike[str]) -> set[str]:
        """Return the ``provider/model`` references the server can use for ``directory``."""
        raw = await self.request("GET", "/config/providers", directory=directory, idempotent=True)
        return {
            f"{provider['id']}/{model_id}"
            for provider in (raw or {}).get("providers", [])
            for model_id in provider.get("models") or {}
        }

    # -- sessions -------------------------------------------------------------------

    async def create_session(
        self,
        directory: str | os.PathLike[str],
        *,
        title: str | None = None,
        parent_id: str | None = None,
        permission: Sequence[PermissionRule] | None = None,
    ) -> Session:
        """Create a session working in ``directory``.

        Args:
            directory: The project directory (a git worktree is fine).
            title: A title; without one the server asks the model for one.
            parent_id: Make it a child of this session.
            permission: Permission rules for this session; the last match wins.
        """
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if parent_id is not None:
            body["parentID"] = parent_id
        if permission is not None:
            body["permission"] = [dict(rule) for rule in permission]
        raw = await self.request("POST", "/session", directory=directory, json=body)
        return Session.model_validate(raw)

    async def get_session(self, session_id: str, directory: str | os.PathLike[str]) -> Session:
        """Return one session."""
        raw = await self.request(
            "GET", f"/session/{session_id}", directory=directory, idempotent=True
        )
        return Session.model_validate(raw)

    async def list_sessions(self, directory: str | os.PathLike[str]) -> list[Session]:
        """Return the sessions of ``directory``'s project."""
        raw = await self.request("GET", "/session", directory=directory, idempotent=True)
        return [Session.model_validate(item) for item in raw]

    async def delete_session(self, session_id: str, directory: str | os.PathLike[str]) -> bool:
        """Delete a session and its messages (not the files it wrote)."""
        return bool(
            await self.request(
                "DELETE", f"/session/{session_id}", directory=directory, idempotent=True
            )
        )

    async def children(self, session_id: str, directory: str | os.PathLike[str]) -> list[Session]:
        """Return the child sessions of a session."""
        raw = await self.request(
            "GET", f"/session/{session_id}/children", directory=directory, idempotent=True
        )
        return [Session.model_validate(item) for item in raw]

    async def todo(self, session_id: str, directory: str | os.PathLike[str]) -> list[Todo]:
        """Return a session's todo list."""
        raw = await self.request(
            "GET", f"/session/{session_id}/todo", directory=directory, idempotent=True
        )
        return [Todo.model_validate(item) for item in raw]

    async def status(self, directory: str | os.PathLike[str]) -> dict[str, SessionStatus]:
        """Return the busy and retrying sessions of ``directory``; idle ones are absent."""
        raw = await self.request("GET", "/session/status", directory=directory, idempotent=True)
        return {sid: SessionStatus.model_validate(value) for sid, value in (raw or {}).items()}

    async def abort(self, session_id: str, directory: str | os.PathLike[str]) -> bool:
        """Stop a session's running turn; safe to repeat."""
        return bool(
            await self.request(
                "POST", f"/session/{session_id}/abort", directory=directory, idempotent=True
            )
        )

    # -- prompts ----------------------------------------------------------------------

    @staticmethod
    def new_message_id() -> str:
        """Return a fresh message id in the server's format (see ``prompt_async``)."""
        return ascending_id("msg")

    @staticmethod
    def prompt_body(
        text: str,
        *,
        agent: str,
        model: str | None = None,
        schema: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Mapping[str, bool] | None = None,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """Build the body of a prompt.

        Args:
            text: The prompt.
            agent: The agent to run it; pass it on every prompt, because the
                agent given at session creation is not the default for prompts.
            model: ``provider/model``; the agent's or server's default otherwise.
            schema: A JSON schema: the answer comes back as ``structured``.
            system: Extra system prompt.
            tools: Enable or disable tools by name for this prompt.
            message_id: The user message id (``new_message_id()``).
        """
        body: dict[str, Any] = {"parts": [{"type": "text", "text": text}], "agent": agent}
        if model is not None:
            provider_id, model_id = split_model(model)
            body["model"] = {"providerID": provider_id, "modelID": model_id}
        if schema is not None:
            body["format"] = {"type": "json_schema", "schema": dict(schema)}
        if system is not None:
            body["system"] = system
        if tools is not None:
            body["tools"] = dict(tools)
        if message_id is not None:
            body["messageID"] = message_id
        return body

    async def prompt(
        self,
        session_id: str,
        directory: str | os.PathLike[str],
        text: str,
        *,
        agent: str,
        model: str | None = None,
        schema: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Mapping[str, bool] | None = None,
        message_id: str | None = None,
        timeout: float | None = None,
    ) -> Message:
        """Send a prompt and wait for the run to end; returns the last assistant message.

        Closing this call does not stop the run on the server. For long runs
        prefer ``prompt_async`` with :func:`wait_for_outcome`.
        Arguments are those of :meth:`prompt_body`; ``timeout`` bounds the wait
        (``None``: no limit).
        """
        body = self.prompt_body(
            text,
            agent=agent,
            model=model,
            schema=schema,
            system=system,
            tools=tools,
            message_id=message_id,
        )
        raw = await self.request(
            "POST",
            f"/session/{session_id}/message",
            directory=directory,
            json=body,
            timeout=httpx.Timeout(timeout, connect=5.0),
        )
        return Message.model_validate(raw)

    async def prompt_async(
        self,
        session_id: str,
        directory: str | os.PathLike[str],
        text: str,
        *,
        agent: str,
        model: str | None = None,
        schema: Mapping[str, Any] | None = None,
        system: str | None = None,
        tools: Mapping[str, bool] | None = None,
        message_id: str | None = None,
    ) -> str:
        """Send a prompt without waiting; returns the user message id.

        Keep one prompt outstanding per session: one sent while the session is
        busy may be merged into the running turn. Arguments are those of
        :meth:`prompt_body`; a message id is made when none is given.
        """
        message_id = message_id or self.new_message_id()
        body = self.prompt_body(
            text,
            agent=agent,
            model=model,
            schema=schema,
            system=system,
            tools=tools,
            message_id=message_id,
        )
        await self.request(
            "POST", f"/session/{session_id}/prompt_async", directory=directory, json=body
        )
        return message_id

    async def messages(
        self,
        session_id: str,
        directory: str | os.PathLike[str],
        *,
        limit: int = 50,
        structured: bool = False,
    ) -> list[Message]:
        """Return the last ``limit`` messages of a session, oldest first.

        After a structured-output prompt the server may refuse to list the
        messages (400, upstream #26929); then they are read one at a time,
        back to the newest structured-output prompt, which appears as a
        placeholder with its id and role only (older messages are left out).
        ``structured``: the session is known to have had such a prompt, so
        the walk starts at once (no listing refused first).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if structured:
            return await self._messages_one_by_one(session_id, directory, limit)
        path = f"/session/{session_id}/message"
        try:
            raw = await self.request(
                "GET", path, directory=directory, params={"limit": limit}, idempotent=True
            )
        except BadRequestError:
            return await self._messages_one_by_one(session_id, directory, limit)
        return [Message.model_validate(item) for item in raw]

    async def _messages_one_by_one(
        self, session_id: str, directory: str | os.PathLike[str], limit: int
    ) -> list[Message]:
        # Walk back one message at a time. The message the server cannot list
        # is a structured-output prompt, which it cannot return on its own
        # either; its answer names its id, so it stands in the list as a
        # placeholder (id and role only). Older messages are out of reach.
        found: list[Message] = []
        params: dict[str, Any] = {"limit": 1}
        while len(found) < limit:
            try:
                response = await self.send(
                    "GET",
                    f"/session/{session_id}/message",
                    directory=directory,
                    params=params,
                    idempotent=True,
                )
            except BadRequestError:
                parent = found[-1].info.parent_id if found else None
                if parent is not None:
                    found.append(_unreadable_prompt(session_id, parent))
                break
            page = [Message.model_validate(item) for item in response.json() or []]
            found.extend(page)
            cursor = response.headers.get("x-next-cursor")
            if not page or not cursor:
                break
            params = {"limit": 1, "before": cursor}
        found.reverse()
        return found

    async def message(
        self, session_id: str, message_id: str, directory: str | os.PathLike[str]
    ) -> Message:
        """Return one message with its parts."""
        raw = await self.request(
            "GET",
            f"/session/{session_id}/message/{message_id}",
            directory=directory,
            idempotent=True,
        )
        return Message.model_validate(raw)

    async def shell(
        self,
        session_id: str,
        directory: str | os.PathLike[str],
        command: str,
        *,
        agent: str,
        timeout: float | None = 300.0,
    ) -> Message:
        """Run a shell command in the session (409 ``ConflictError`` if it is busy)."""
        raw = await self.request(
            "POST",
            f"/session/{session_id}/shell",
            directory=directory,
            json={"command": command, "agent": agent},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )
        return Message.model_validate(raw)

    # -- permissions and questions -----------------------------------------------------

    async def permissions(self, directory: str | os.PathLike[str]) -> list[PermissionRequest]:
        """Return the pending permission requests of ``directory``."""
        raw = await self.request("GET", "/permission", directory=directory, idempotent=True)
        return [PermissionRequest.model_validate(item) for item in raw or []]

    async def reply_permission(
        self,
        request_id: str,
        directory: str | os.PathLike[str],
        reply: PermissionReply,
        *,
        message: str | None = None,
    ) -> bool:
        """Answer a permission request.

        Args:
            request_id: The ``per_...`` id.
            directory: The directory of the session that asked (else 404).
            reply: ``once``, ``always`` or ``reject``.
            message: With ``reject``: feedback; the run goes on with it.
        """
        if reply not in ("once", "always", "reject"):
            raise ValueError(f"reply must be 'once', 'always' or 'reject', got {reply!r}")
        body: dict[str, Any] = {"reply": reply}
        if message is not None:
            body["message"] = message
        return bool(
            await self.request(
                "POST", f"/permission/{request_id}/reply", directory=directory, json=body
            )
        )

    async def questions(self, directory: str | os.PathLike[str]) -> list[QuestionRequest]:
        """Return the pending questions of ``directory``."""
        raw = await self.request("GET", "/question", directory=directory, idempotent=True)
        return [QuestionRequest.model_validate(item) for item in raw or []]

    async def reply_question(
        self,
        request_id: str,
        directory: str | os.PathLike[str],
        answers: Sequence[Sequence[str]],
    ) -> bool:
        """Answer a question: one list of chosen labels per question, in order."""
        return bool(
            await self.request(
                "POST",
                f"/question/{request_id}/reply",
                directory=directory,
                json={"answers": [list(a) for a in answers]},
            )
        )

    async def reject_question(self, request_id: str, directory: str | os.PathLike[str]) -> bool:
        """Decline a question."""
        return bool(
            await self.request("POST", f"/question/{request_id}/reject", directory=directory)
        )
