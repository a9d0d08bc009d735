"""What OpenCode sent: a parsed chat-completions request, and its record.

OpenCode 1.18 sends every model call of a session with an ``x-session-id``
header carrying the OpenCode session id (``ses_...``), auxiliary calls such as
title generation included. That header is the conversation key; requests
without it fall back to a digest of the system prompt and first user message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeAlias

AuxiliaryKind: TypeAlias = Literal["title", "summary", "compaction"]
"""Model calls OpenCode makes on its own, besides the agent's turns."""

AUXILIARY_KINDS: tuple[AuxiliaryKind, ...] = ("title", "summary", "compaction")

# The first words of the system prompts of OpenCode's hidden agents (1.18.33).
_AUXILIARY_MARKERS: Mapping[AuxiliaryKind, str] = {
    "title": "You are a title generator",
    "summary": "Summarize what was done in this conversation",
    "compaction": "You are a context summarization agent",
}

SESSION_HEADER = "x-session-id"


def _text_of(content: Any) -> str:
    """Return the text of a message ``content`` (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "\n".join(texts)
    return str(content)


@dataclass(frozen=True)
class ToolResult:
    """A ``role: "tool"`` message: what a tool call returned.

    Attributes:
        name: Name of the tool, resolved through the assistant message that
            made the call (empty if OpenCode sent an unknown call id).
        call_id: The ``tool_call_id`` the result answers.
        content: The tool's output as text.
    """

    name: str
    call_id: str
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """One ``POST /v1/chat/completions`` request, parsed.

    Matchers and predicates receive this object.

    Attributes:
        body: The JSON body as sent.
        headers: Request headers, names lower-cased.
    """

    body: Mapping[str, Any]
    headers: Mapping[str, str]

    @property
    def messages(self) -> Sequence[Mapping[str, Any]]:
        """The ``messages`` list of the body."""
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed (SSE) answer."""
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        """Whether a streamed answer must end with a usage chunk."""
        options = self.body.get("stream_options")
        return isinstance(options, dict) and bool(options.get("include_usage"))

    @property
    def session_id(self) -> str | None:
        """The OpenCode session id from the ``x-session-id`` header, if any."""
        return self.headers.get(SESSION_HEADER) or None

    @cached_property
    def system(self) -> str:
        """All system messages' text, joined by blank lines."""
        return "\n\n".join(
            _text_of(m.get("content")) for m in self.messages if m.get("role") == "system"
        )

    @cached_property
    def user_texts(self) -> tuple[str, ...]:
        """Text of every user message, oldest first."""
        return tuple(_text_of(m.get("content")) for m in self.messages if m.get("role") == "user")

    @property
    def last_user_text(self) -> str:
        """Text of the last user message (empty if there is none)."""
        return self.user_texts[-1] if self.user_texts else ""

    @property
    def first_user_text(self) -> str:
        """Text of the first user message (empty if there is none)."""
        return self.user_texts[0] if self.user_texts else ""

    @cached_property
    def tools(self) -> tuple[str, ...]:
        """Names of the tools offered to the model."""
        names: list[str] = []
        for tool in self.body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
        return tuple(names)

    @property
    def wants_structured_output(self) -> bool:
        """Whether OpenCode offered the ``StructuredOutput`` tool (a json_schema prompt)."""
        return "StructuredOutput" in self.tools

    @cached_property
    def tool_results(self) -> tuple[ToolResult, ...]:
        """The tool results that end the conversation (empty if the last message is not one)."""
        names: dict[str, str] = {}
        for message in self.messages:
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name", ""))
        trailing: list[ToolResult] = []
        for message in reversed(self.messages):
            if message.get("role") != "tool":
                break
            call_id = str(message.get("tool_call_id", ""))
            content = _text_of(message.get("content"))
            trailing.append(ToolResult(names.get(call_id, ""), call_id, content))
        return tuple(reversed(trailing))

    @cached_property
    def auxiliary(self) -> AuxiliaryKind | None:
        """Which OpenCode auxiliary call this is (title, summary, compaction), or ``None``."""
        for kind, marker in _AUXILIARY_MARKERS.items():
            if marker in self.system:
                return kind
        return None

    @cached_property
    def conversation_key(self) -> str:
        """Identity of the conversation across requests.

        The OpenCode session id when the header is present, else a digest of
        the system prompt and the first user message.
        """
        if self.session_id:
            return self.session_id
        digest = hashlib.sha256(f"{self.system}\0{self.first_user_text}".encode()).hexdigest()
        return f"digest:{digest[:16]}"

    def describe(self) -> str:
        """Return a one-line description for error messages."""
        last = self.messages[-1].get("role") if self.messages else "none"
        if self.tool_results:
            last = "tool result of " + ", ".join(r.name or "?" for r in self.tool_results)
        prompt = self.last_user_text.strip().replace("\n", " ")
        if len(prompt) > 80:
            prompt = prompt[:77] + "..."
        system = self.system.strip().split("\n", 1)[0][:60]
        return (
            f"conversation {self.conversation_key}, system {system!r}, "
            f"last user message {prompt!r}, last message: {last}, tools: {len(self.tools)}"
        )


Outcome: TypeAlias = Literal["step", "auxiliary", "unmatched", "invalid"]


@dataclass
class RecordedRequest:
    """A request the server received and how it was answered.

    Attributes:
        index: Position in arrival order, from 0.
        time: Arrival time (``time.time()``).
        method: HTTP method.
        path: Request path.
        headers: Request headers, names lower-cased.
        body: Parsed JSON body (``None`` for GET or an unparsable body).
        outcome: ``"step"`` (a script step answered), ``"auxiliary"`` (answered
            automatically), ``"unmatched"`` (no step matched: HTTP 400) or
            ``"invalid"`` (not a valid chat-completions request).
        step: Label of the step that answered, if any.
        auxiliary: The auxiliary kind detected, whoever answered it.
        error: What went wrong while answering (e.g. client disconnected).
    """

    index: int
    time: float
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    outcome: Outcome = "invalid"
    step: str | None = None
    auxiliary: AuxiliaryKind | None = None
    error: str | None = None
    _request: ChatRequest | None = field(default=None, repr=False)

    @property
    def request(self) -> ChatRequest:
        """The parsed chat request (raises ``ValueError`` for non-chat requests)."""
        if self._request is None:
            raise ValueError(
                f"request #{self.index} ({self.method} {self.path}) is not a chat call"
            )
        return self._request

    @property
    def is_chat(self) -> bool:
        """Whether this was a chat-completions call with a JSON body."""
        return self._request is not None

    def __str__(self) -> str:
        what = self._request.describe() if self._request else f"{self.method} {self.path}"
        return f"#{self.index} [{self.outcome}{': ' + self.step if self.step else ''}] {what}"


def parse_body(raw: bytes) -> dict[str, Any] | None:
    """Parse a JSON object body; ``None`` if it is not one."""
    try:
        value = json.loads(raw or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
