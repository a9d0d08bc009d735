"""The HTTP side: a threaded loopback server speaking OpenAI chat completions.

Streamed answers use SSE over HTTP chunked transfer encoding, so a dropped
connection is a truncated response to the client, not a clean end of stream.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from ._replies import (
    DropConnection,
    ErrorResponse,
    Hang,
    MalformedChunk,
    Reply,
    StructuredOutput,
    Text,
    ToolCalls,
    Usage,
)
from ._request import ChatRequest, RecordedRequest

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


@dataclass(frozen=True)
class Answer:
    """What to send for one request, and where to note how it went."""

    reply: Reply
    record: RecordedRequest
    request: ChatRequest | None


class App(Protocol):
    """What the handler needs from the scripted server."""

    model_id: str
    default_usage: Usage

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        """Record a request and choose its reply."""
        ...

    def next_id(self, prefix: str) -> str:
        """Return a fresh id such as ``call_3``."""
        ...


class _Closed(Exception):
    """The answer ended by closing the connection (on purpose or not)."""


@dataclass(frozen=True)
class _Event:
    payload: str
    delay: float = 0.0


class LoopbackServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that tracks connections so it can stop promptly."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # many OpenCode sessions connect at once

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        """Register or forget an open client connection."""
        with self._connections_changed:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
            self._connections_changed.notify_all()

    def close_connections(self, timeout: float) -> None:
        """Shut every client connection down and wait for their handlers to end."""
        with self._connections_changed:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue  # already closed by the client
        with self._connections_changed:
            self._connections_changed.wait_for(lambda: not self._connections, timeout)

    def pause(self, seconds: float) -> None:
        """Sleep, but raise :class:`_Closed` as soon as the server stops."""
        if seconds > 0 and self.stopping.wait(seconds):
            raise _Closed("server stopping")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer
    server_version = "ScriptedModel/1"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        try:
            super().finish()
        except OSError:
            return  # the peer is gone; nothing left to flush

    def log_message(self, format: str, *args: Any) -> None:
        return  # records replace the access log

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            model = {"id": self.server.app.model_id, "object": "model", "created": 0}
            model["owned_by"] = "langgraph-opencode"
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_json(404, {"error": {"message": f"no route for GET {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.app.route("POST", self.path, headers, raw)
        try:
            self._answer(answer.reply, answer.request)
        except _Closed as closed:
            answer.record.error = str(closed)
            self.close_connection = True
        except _DISCONNECTS as error:
            answer.record.error = f"client disconnected: {type(error).__name__}"
            self.close_connection = True

    # -- answering ---------------------------------------------------------

    def _answer(self, reply: Reply, request: ChatRequest | None) -> None:
        self.server.pause(reply.delay)
        if isinstance(reply, ErrorResponse):
            self._send_error_reply(reply)
        elif isinstance(reply, Hang):
            self._hang(reply, request)
        elif request is None:
            self._send_json(400, {"error": {"message": "not a chat-completions request"}})
        elif isinstance(reply, DropConnection):
            self._drop(reply, request)
        elif isinstance(reply, MalformedChunk):
            self._malformed(reply, request)
        elif request.stream:
            self._stream(self._events(reply, request))
        else:
            self._send_json(200, self._completion(reply))

    def _hang(self, reply: Hang, request: ChatRequest | None) -> None:
        reply._entered.set()
        while not reply._released.wait(0.05):
            if reply.poll():
                break
            if self.server.stopping.is_set():
                raise _Closed("server stopped while hanging")
        if reply.then is None:
            raise _Closed("hang released without a reply")
        self._answer(reply.then, request)

    def _drop(self, reply: DropConnection, request: ChatRequest) -> None:
        if request.stream:
            events = list(self._events(reply.reply, request))[: reply.after_chunks]
            self._stream(iter(events), finish=False)
        raise _Closed(f"connection dropped after {reply.after_chunks} chunks")

    def _malformed(self, reply: MalformedChunk, request: ChatRequest) -> None:
        if not request.stream:
            self._send_bytes(200, reply.data.encode(), "application/json")
            return
        events = list(self._events(reply.reply, request))
        events.insert(reply.after_chunks, _Event(reply.data))
        self._stream(iter(events))

    def _send_error_reply(self, reply: ErrorResponse) -> None:
        extra = {}
        if reply.retry_after is not None:
            extra["retry-after"] = f"{reply.retry_after:g}"
        self._send_bytes(reply.status, reply.encoded_body(), "application/json", extra)

    # -- wire formats ------------------------------------------------------

    def _tool_calls(self, reply: Reply) -> ToolCalls | None:
        if isinstance(reply, StructuredOutput):
            return reply.as_tool_calls()
        return reply if isinstance(reply, ToolCalls) else None

    def _usage(self, reply: Reply) -> dict[str, int]:
        return (reply.usage or self.server.app.default_usage).as_dict()

    def _completion(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        calls = self._tool_calls(reply)
        if calls is not None:
            message["content"] = calls.text
            message["tool_calls"] = [
                {
                    "id": call.id or self.server.app.next_id("call"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.encoded_arguments()},
                }
                for call in calls.calls
            ]
            finish = "tool_calls"
        else:
            message["content"] = reply.text if isinstance(reply, Text) else ""
            finish = "stop"
        return {
            **self._envelope("chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(reply),
        }

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.server.app.next_id("chatcmpl-scripted"),
            "object": kind,
            "created": int(time.time()),
            "model": self.server.app.model_id,
        }

    def _events(self, reply: Reply, request: ChatRequest) -> Iterator[_Event]:
        base = self._envelope("chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return json.dumps({**base, "choices": [choice]})

        yield _Event(chunk({"role": "assistant", "content": ""}))
        calls = self._tool_calls(reply)
        if calls is not None:
            if calls.text:
                yield _Event(chunk({"content": calls.text}))
            for index, call in enumerate(calls.calls):
                function = {"name": call.name, "arguments": call.encoded_arguments()}
                call_id = call.id or self.server.app.next_id("call")
                delta = {"index": index, "id": call_id, "type": "function", "function": function}
                yield _Event(chunk({"tool_calls": [delta]}))
            finish = "tool_calls"
        else:
            text = reply if isinstance(reply, Text) else Text("")
            for number, piece in enumerate(text.pieces()):
                yield _Event(chunk({"content": piece}), text.chunk_delay if number else 0.0)
            finish = "stop"
        yield _Event(chunk({}, finish))
        if request.include_usage:
            yield _Event(json.dumps({**base, "choices": [], "usage": self._usage(reply)}))
        yield _Event("[DONE]")

    def _stream(self, events: Iterator[_Event], *, finish: bool = True) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self.server.pause(event.delay)
            data = f"data: {event.payload}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        if finish:
            self.wfile.write(b"0\r\n\r\n")

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json")

    def _send_bytes(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
