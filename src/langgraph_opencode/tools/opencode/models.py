"""Typed views of what the OpenCode server sends.

Only the fields the orchestrator relies on are declared; everything else is
kept (``extra="allow"``) because the server's schema moves quickly. Field names
follow Python conventions and accept the server's camelCase by alias.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Event",
    "Message",
    "MessageError",
    "MessageInfo",
    "OutcomeKind",
    "Part",
    "PermissionReply",
    "PermissionRequest",
    "PromptOutcome",
    "QuestionRequest",
    "Session",
    "SessionStatus",
    "Todo",
    "TokenUsage",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class TokenUsage(_Model):
    """Tokens reported for one assistant message or step."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @classmethod
    def from_server(cls, raw: dict[str, Any] | None) -> TokenUsage:
        """Build from the server's ``{input, output, reasoning, cache: {read, write}}``."""
        if not raw:
            return cls()
        cache = raw.get("cache") or {}
        return cls(
            input=int(raw.get("input") or 0),
            output=int(raw.get("output") or 0),
            reasoning=int(raw.get("reasoning") or 0),
            cache_read=int(cache.get("read") or 0),
            cache_write=int(cache.get("write") or 0),
        )

    @property
    def total(self) -> int:
        """All tokens, cache included."""
        return self.input + self.output + self.reasoning + self.cache_read + self.cache_write

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input=self.input + other.input,
            output=self.output + other.output,
            reasoning=self.reasoning + other.reasoning,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
        )


class Session(_Model):
    """An OpenCode session."""

    id: str
    title: str = ""
    directory: str = ""
    parent_id: str | None = Field(default=None, alias="parentID")
    project_id: str | None = Field(default=None, alias="projectID")


class MessageError(_Model):
    """The ``error`` of an assistant message or a ``session.error`` event."""

    name: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def message(self) -> str:
        """The server's human-readable message, if any."""
        return str(self.data.get("message") or self.name)


class MessageInfo(_Model):
    """The ``info`` of a user or assistant message."""

    id: str
    session_id: str = Field(alias="sessionID")
    role: Literal["user", "assistant"]
    agent: str | None = None
    parent_id: str | None = Field(default=None, alias="parentID")
    time: dict[str, int] = Field(default_factory=dict)
    finish: str | None = None
    error: MessageError | None = None
    cost: float = 0.0
    tokens_raw: dict[str, Any] | None = Field(default=None, alias="tokens")
    structured: Any = None

    @property
    def completed(self) -> bool:
        """Whether the server marked this message as finished."""
        return "completed" in self.time

    @property
    def tokens(self) -> TokenUsage:
        """Token usage of this message."""
        return TokenUsage.from_server(self.tokens_raw)


class Part(_Model):
    """One part of a message: text, a tool call, a step boundary, a patch."""

    id: str
    type: str
    message_id: str | None = Field(default=None, alias="messageID")
    session_id: str | None = Field(default=None, alias="sessionID")
    text: str | None = None
    tool: str | None = None
    state: dict[str, Any] | None = None
    time: dict[str, Any] | None = None
    """A text part's ``start`` and, once its text is whole, ``end`` (milliseconds)."""


class Message(_Model):
    """A message with its parts, as ``GET /session/{id}/message`` returns it."""

    info: MessageInfo
    parts: list[Part] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        return "".join(p.text or "" for p in self.parts if p.type == "text")


class SessionStatus(_Model):
    """``idle``, ``busy``, or ``retry`` (with the attempt and next try time)."""

    type: Literal["idle", "busy", "retry"]
    attempt: int | None = None
    message: str | None = None
    next: int | None = None


class PermissionRequest(_Model):
    """A pending ``ask`` permission: the run waits until it is answered."""

    id: str
    session_id: str = Field(alias="sessionID")
    permission: str
    patterns: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


PermissionReply = Literal["once", "always", "reject"]


class QuestionRequest(_Model):
    """A pending question from the ``question`` tool."""

    id: str
    session_id: str = Field(alias="sessionID")
    questions: list[dict[str, Any]] = Field(default_factory=list)


class Todo(_Model):
    """One item of a session's todo list."""

    content: str
    status: str
    priority: str = "medium"


class Event(_Model):
    """One frame of the server's event stream.

    Attributes:
        type: The event type, e.g. ``session.idle``.
        properties: The event's payload.
        directory: The directory the event belongs to (``None`` for global events).
    """

    type: str
    properties: dict[str, Any] = Field(default_factory=dict)
    directory: str | None = None
    id: str | None = None

    @property
    def session_id(self) -> str | None:
        """The session the event is about, when it is about one."""
        sid = self.properties.get("sessionID")
        if sid is None and isinstance(self.properties.get("info"), dict):
            sid = self.properties["info"].get("sessionID")
        return sid if isinstance(sid, str) else None


OutcomeKind = Literal[
    "ok",
    "api_error",
    "aborted",
    "structured_output_missing",
    "context_overflow",
    "auth",
    "incomplete",
    "needs_input",
    "unknown",
]
"""How one prompt ended. ``incomplete``: the run stopped without an answer
(e.g. the server died mid-run); prompting again is the remedy. ``needs_input``:
the run is paused on a permission request or a question (``pending`` ids);
answer it, then wait again."""


class PromptOutcome(_Model):
    """How one prompt ended, judged from the last assistant message.

    Model failures are reported here as values, not raised, because the
    orchestrator reacts to them (retry, rework, fail the task).
    """

    kind: OutcomeKind
    session_id: str
    message_id: str | None = None
    text: str = ""
    structured: Any = None
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost: float = 0.0
    finish: str | None = None
    error_name: str | None = None
    error_message: str | None = None
    status_code: int | None = None
    retryable: bool = False
    pending: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the prompt finished normally."""
        return self.kind == "ok"
