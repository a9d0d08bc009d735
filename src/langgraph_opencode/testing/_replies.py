"""What the scripted model answers: replies and injected faults.

```
Reply ..................... base: optional delay before answering, token usage
├── Text .................. assistant text, optionally streamed in chunks
├── ToolCalls ............. one or more tool calls (write, edit, bash, any tool)
├── StructuredOutput ...... a ``StructuredOutput`` tool call with an object
├── ErrorResponse ......... an HTTP error status (400, 429, 500, ...)
├── Hang .................. no answer until released (or a path exists) or the server stops
├── DropConnection ........ the connection closes after N chunks
└── MalformedChunk ........ an unparsable chunk after N good ones
```
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Token figures reported with an answer, so OpenCode counts tokens.

    Attributes:
        prompt_tokens: Input tokens.
        completion_tokens: Output tokens.
    """

    prompt_tokens: int = 10
    completion_tokens: int = 5

    def as_dict(self) -> dict[str, int]:
        """Return the OpenAI ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True, kw_only=True)
class Reply:
    """Base of every reply.

    Attributes:
        delay: Seconds to wait before answering (cut short when the server stops).
        usage: Token figures; ``None`` uses the server's default usage.
    """

    delay: float = 0.0
    usage: Usage | None = None


@dataclass(frozen=True)
class Text(Reply):
    """Assistant text, ending the turn (``finish_reason: "stop"``).

    Attributes:
        text: The text.
        chunk_size: Stream the text in pieces of this many characters
            (``None``: one piece).
        chunk_delay: Seconds between streamed chunks.
    """

    text: str = "Done."
    _: KW_ONLY
    chunk_size: int | None = None
    chunk_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")

    def pieces(self) -> list[str]:
        """Return the text split into streamed pieces."""
        if not self.chunk_size or not self.text:
            return [self.text]
        size = self.chunk_size
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model makes.

    Attributes:
        name: Tool name as offered by OpenCode (``write``, ``edit``, ``bash``, ...).
        arguments: JSON arguments, as a mapping or an already encoded string.
        id: Call id; ``None`` lets the server number it (``call_<n>``).
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    _: KW_ONLY
    id: str | None = None

    def encoded_arguments(self) -> str:
        """Return the arguments as a JSON string."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments))

    @classmethod
    def write(cls, file_path: str, content: str) -> ToolCall:
        """Call OpenCode's ``write`` tool (creates or overwrites a file)."""
        return cls("write", {"filePath": file_path, "content": content})

    @classmethod
    def edit(
        cls, file_path: str, old_string: str, new_string: str, *, replace_all: bool = False
    ) -> ToolCall:
        """Call OpenCode's ``edit`` tool (the file must have been read in the session)."""
        arguments: dict[str, Any] = {
            "filePath": file_path,
            "oldString": old_string,
            "newString": new_string,
        }
        if replace_all:
            arguments["replaceAll"] = True
        return cls("edit", arguments)

    @classmethod
    def read(cls, file_path: str) -> ToolCall:
        """Call OpenCode's ``read`` tool."""
        return cls("read", {"filePath": file_path})

    @classmethod
    def bash(
        cls, command: str, *, description: str | None = None, timeout_ms: int | None = None
    ) -> ToolCall:
        """Call OpenCode's ``bash`` tool."""
        arguments: dict[str, Any] = {"command": command}
        if description is not None:
            arguments["description"] = description
        if timeout_ms is not None:
            arguments["timeout"] = timeout_ms
        return cls("bash", arguments)

    @classmethod
    def task(cls, prompt: str, *, description: str, subagent_type: str = "general") -> ToolCall:
        """Call OpenCode's ``task`` tool: a subagent does ``prompt`` in a child session."""
        return cls(
            "task", {"description": description, "prompt": prompt, "subagent_type": subagent_type}
        )


@dataclass(frozen=True, init=False)
class ToolCalls(Reply):
    """Tool calls (``finish_reason: "tool_calls"``); OpenCode runs them and asks again.

    Attributes:
        calls: The calls, made in parallel.
        text: Optional text streamed before the calls.
    """

    calls: tuple[ToolCall, ...]
    text: str | None

    def __init__(
        self,
        *calls: ToolCall,
        text: str | None = None,
        delay: float = 0.0,
        usage: Usage | None = None,
    ) -> None:
        if not calls:
            raise ValueError("ToolCalls needs at least one ToolCall")
        object.__setattr__(self, "calls", tuple(calls))
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "delay", delay)
        object.__setattr__(self, "usage", usage)


@dataclass(frozen=True)
class StructuredOutput(Reply):
    """Answer a ``format: json_schema`` prompt: a ``StructuredOutput`` tool call.

    OpenCode ends the run after it and reports the object as ``info.structured``.

    Attributes:
        value: The object to return (must match the prompt's schema).
    """

    value: Mapping[str, Any] = field(default_factory=dict)

    def as_tool_calls(self) -> ToolCalls:
        """Return the equivalent tool-call reply."""
        return ToolCalls(
            ToolCall("StructuredOutput", dict(self.value)), delay=self.delay, usage=self.usage
        )


@dataclass(frozen=True)
class ErrorResponse(Reply):
    """Answer with an HTTP error status instead of a completion.

    OpenCode fails the run at once on 400 and retries 429 and 5xx five times
    with backoff (about 2, 4, 8, 16, 30 s), honouring ``retry-after``.

    Attributes:
        status: HTTP status code.
        message: Error message, sent as ``{"error": {"message": ...}}``.
        retry_after: Value for a ``retry-after`` header (seconds), if any.
        body: Raw body to send instead of the JSON error object.
    """

    status: int = 500
    message: str = "scripted error"
    _: KW_ONLY
    retry_after: float | None = None
    body: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {self.status}")

    def encoded_body(self) -> bytes:
        """Return the response body."""
        if self.body is not None:
            return self.body.encode()
        error = {"message": self.message, "type": "scripted_error", "code": self.status}
        return json.dumps({"error": error}).encode()


@dataclass(frozen=True)
class Hang(Reply):
    """Send nothing until :meth:`release` is called, ``until`` holds, or the server stops.

    ``until`` makes a step wait for something outside the model, e.g. for a
    check another task runs to have started (it writes a marker file)::

        Step(Hang(then=ToolCalls(ToolCall.bash("echo b")), until=marker))

    Attributes:
        then: What to answer once released; ``None`` closes the connection.
        until: Release the hang by itself (as :meth:`release` does) once this
            path exists, or once this callable returns true; polled every
            50 ms while a request hangs. ``None``: only :meth:`release` does.
    """

    then: Reply | None = None
    _: KW_ONLY
    until: os.PathLike[str] | Callable[[], bool] | None = None
    _released: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False, compare=False
    )
    _entered: threading.Event = field(
        default_factory=threading.Event, init=False, repr=False, compare=False
    )

    def release(self) -> None:
        """Let hanging (and future) requests of this reply go on."""
        self._released.set()

    def poll(self) -> bool:
        """Release the hang if its ``until`` holds now; return whether it is released."""
        until = self.until
        if self._released.is_set() or until is None:
            return self._released.is_set()
        if os.path.exists(until) if isinstance(until, os.PathLike) else until():
            self._released.set()
        return self._released.is_set()

    @property
    def released(self) -> bool:
        """Whether it was released (by :meth:`release`, or its ``until`` held)."""
        return self._released.is_set()

    def wait_until_hanging(self, timeout: float = 10.0) -> bool:
        """Block until a request hangs on this reply; ``False`` on timeout."""
        return self._entered.wait(timeout)


@dataclass(frozen=True)
class DropConnection(Reply):
    """Close the connection after ``after_chunks`` streamed chunks of ``reply``.

    The stream is HTTP-chunked, so the client sees a truncated response, not a
    clean end. A non-streamed request gets no response at all.

    Attributes:
        reply: The reply whose first chunks are sent.
        after_chunks: How many SSE chunks to send before closing.
    """

    reply: Reply = field(default_factory=lambda: Text("partial answer", chunk_size=4))
    _: KW_ONLY
    after_chunks: int = 1


@dataclass(frozen=True)
class MalformedChunk(Reply):
    """Insert an unparsable SSE chunk after ``after_chunks`` good chunks of ``reply``.

    The rest of ``reply`` follows. A non-streamed request gets ``data`` as its body.

    Attributes:
        reply: The reply to stream around the bad chunk.
        after_chunks: How many good chunks precede it.
        data: The bad chunk's ``data:`` payload.
    """

    reply: Reply = field(default_factory=lambda: Text("after a bad chunk"))
    _: KW_ONLY
    after_chunks: int = 1
    data: str = '{"choices": [{"delta": {"content": '


ReplyLike: TypeAlias = Reply | ToolCall
"""A reply, or a single :class:`ToolCall` standing for ``ToolCalls(call)``."""


def as_reply(reply: ReplyLike | str) -> Reply:
    """Normalise a reply-like value (a string becomes :class:`Text`)."""
    if isinstance(reply, Reply):
        return reply
    if isinstance(reply, ToolCall):
        return ToolCalls(reply)
    if isinstance(reply, str):
        return Text(reply)
    raise TypeError(f"expected a Reply, ToolCall or str, got {type(reply).__name__}")
