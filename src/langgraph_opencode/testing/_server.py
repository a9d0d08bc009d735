"""``ScriptedModelServer``: a scripted OpenAI-compatible model on loopback."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Self

from ._http import Answer, LoopbackServer
from ._replies import ErrorResponse, Reply, ReplyLike, Text, Usage, as_reply
from ._request import AUXILIARY_KINDS, AuxiliaryKind, ChatRequest, RecordedRequest, parse_body
from ._script import Script, ScriptEntry

DEFAULT_AUXILIARY_REPLIES: Mapping[AuxiliaryKind, Reply] = MappingProxyType(
    {
        "title": Text("Scripted session"),
        "summary": Text("I made the scripted changes."),
        "compaction": Text("## Summary\nScripted conversation so far."),
    }
)
"""Automatic answers to OpenCode's auxiliary calls (title, summary, compaction)."""

# OpenCode 1.18.33 (SessionRetry) retries even a 400 when its message or body
# matches one of these; a session id like ``ses_df500...`` would. Details that
# match are left out of the "no step matches" error so it stays non-retryable.
_OPENCODE_RETRY_PATTERNS = (
    re.compile(r"429|500|502|503|504|524", re.I),
    re.compile(
        r"rate increased too quickly|rate limit|rate-limit|rate_limit|too many requests", re.I
    ),
    re.compile(
        r"overloaded|service.unavailable|internal.error|internal server error|server.error"
        r"|provider.returned.error|exhausted|unavailable",
        re.I,
    ),
    re.compile(
        r"terminated|fetch failed|failed to fetch|network[-_\s]error|upstream connect"
        r"|connection error|connection refused|connection lost|socket connection was closed"
        r"|socket hang up|reset before headers|getaddrinfo|enotfound|eai_again|econnrefused"
        r"|econnreset|etimedout",
        re.I,
    ),
    re.compile(
        r"^timeout$|\b(?:request|response|connection|network|stream|read) "
        r"(?:timeout|timed out|time out)\b",
        re.I,
    ),
    re.compile(r"try your request again|retry your request|resource.exhausted", re.I),
    re.compile(r"\btry again (?:later|in\b)|\b(?:currently|temporarily) at capacity\b", re.I),
)


def looks_retryable_to_opencode(text: str) -> bool:
    """Whether OpenCode would retry an error whose message or body contains ``text``."""
    return any(pattern.search(text) for pattern in _OPENCODE_RETRY_PATTERNS)


class ScriptedModelServer:
    r"""A scripted OpenAI-compatible chat model served over HTTP on loopback.

    OpenCode uses it as its model provider, so tests run offline and
    deterministically while OpenCode really runs its tools. The server runs in
    a background thread and answers from a script of :class:`Step` and
    :class:`Conversation` entries; OpenCode's auxiliary calls (session titles,
    summaries, compaction) are answered automatically without using steps.
    A request no step matches gets HTTP 400 at once (OpenCode does not retry
    400) and makes :meth:`assert_complete` fail.

    Example:
        ```python
        with ScriptedModelServer(
            Conversation(
                ToolCall.write("hello.txt", "hi\n"),
                Step(Text("Wrote it."), after_tool="write"),
                user="Create hello.txt",
            )
        ) as model:
            config = model.provider_config()  # merge into OPENCODE_CONFIG_CONTENT
            ...  # run OpenCode
            model.assert_complete()
        ```

    Args:
        *entries: The initial script.
        model_id: Model id served (``GET /v1/models``) and used in configs.
        provider_id: Provider id used by :meth:`provider_config` and :attr:`model_ref`.
        auxiliary_replies: Automatic answers per auxiliary kind; kinds left out
            go through the script like any request (pass ``{}`` to script all).
        default_usage: Token usage reported when a reply sets none.
        host: Interface to bind (loopback).
        port: Port to bind; 0 picks a free one.
    """

    def __init__(
        self,
        *entries: ScriptEntry,
        model_id: str = "scripted",
        provider_id: str = "scripted",
        auxiliary_replies: Mapping[AuxiliaryKind, ReplyLike | str] = DEFAULT_AUXILIARY_REPLIES,
        default_usage: Usage | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        unknown = set(auxiliary_replies) - set(AUXILIARY_KINDS)
        if unknown:
            raise ValueError(
                f"unknown auxiliary kinds {sorted(unknown)}; valid: {list(AUXILIARY_KINDS)}"
            )
        self.model_id = model_id
        self.provider_id = provider_id
        self.default_usage = default_usage or Usage()
        self._auxiliary = {kind: as_reply(r) for kind, r in auxiliary_replies.items()}
        self._address = (host, port)
        self._script = Script()
        self._script.replace(entries)
        self._records: list[RecordedRequest] = []
        self._records_changed = threading.Condition()
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._httpd: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving in a background thread.

        Raises:
            RuntimeError: If the server is already running.
        """
        if self._httpd is not None:
            raise RuntimeError("the scripted model server is already running")
        self._httpd = LoopbackServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"scripted-model:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and delayed answers end by closing their connection."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections(timeout=2.0)
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound port (raises ``RuntimeError`` before :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("the scripted model server is not running; call start()")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self._address[0]}:{self.port}/v1"

    @property
    def model_ref(self) -> str:
        """The OpenCode model reference, ``"<provider_id>/<model_id>"``."""
        return f"{self.provider_id}/{self.model_id}"

    def provider_config(self, provider_id: str | None = None) -> dict[str, Any]:
        """Return the OpenCode config fragment that makes this server the model.

        Merge it into ``OPENCODE_CONFIG_CONTENT`` (or ``opencode.json``): it
        declares an ``@ai-sdk/openai-compatible`` provider and sets ``model``
        and ``small_model`` (used for titles) to this server.

        Args:
            provider_id: Provider id to declare; defaults to :attr:`provider_id`.
        """
        provider = provider_id or self.provider_id
        ref = f"{provider}/{self.model_id}"
        return {
            "provider": {
                provider: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Scripted model",
                    "options": {"baseURL": self.base_url, "apiKey": "scripted"},
                    "models": {self.model_id: {"name": "Scripted model"}},
                }
            },
            "model": ref,
            "small_model": ref,
        }

    # -- script ------------------------------------------------------------

    def script(self, *entries: ScriptEntry) -> None:
        """Replace the script (records are kept; see :meth:`reset`)."""
        self._script.replace(entries)

    def add(self, *entries: ScriptEntry) -> None:
        """Append entries to the script."""
        self._script.extend(entries)

    def reset(self, *entries: ScriptEntry) -> None:
        """Forget every record and replace the script with ``entries``."""
        self._script.replace(entries)
        with self._records_changed:
            self._records.clear()

    def pending_steps(self) -> list[str]:
        """Describe the non-repeat steps and conversation steps not used yet."""
        return self._script.pending()

    def assert_complete(self) -> None:
        """Check that every step was used and every request matched one.

        Raises:
            AssertionError: Listing unused steps and unmatched or invalid requests.
        """
        problems: list[str] = []
        pending = self.pending_steps()
        if pending:
            problems.append(f"{len(pending)} scripted step(s) never used:")
            problems.extend(f"  - {label}" for label in pending)
        unmatched = [r for r in self.requests if r.outcome in ("unmatched", "invalid")]
        if unmatched:
            problems.append(f"{len(unmatched)} request(s) matched no step:")
            problems.extend(f"  - {record}" for record in unmatched)
        if problems:
            raise AssertionError("scripted model incomplete:\n" + "\n".join(problems))

    # -- records -----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order (a copy)."""
        with self._records_changed:
            return list(self._records)

    @property
    def unmatched(self) -> list[RecordedRequest]:
        """Requests that no step matched."""
        return [r for r in self.requests if r.outcome == "unmatched"]

    def chat_requests(self, *, auxiliary: bool = False) -> list[RecordedRequest]:
        """Chat requests in arrival order; auxiliary ones only if ``auxiliary``."""
        return [
            r for r in self.requests if r.is_chat and (auxiliary or r.request.auxiliary is None)
        ]

    def conversations(self) -> dict[str, list[RecordedRequest]]:
        """Non-auxiliary chat requests grouped by conversation key (session id)."""
        grouped: dict[str, list[RecordedRequest]] = {}
        for record in self.chat_requests():
            grouped.setdefault(record.request.conversation_key, []).append(record)
        return grouped

    def prompts(self) -> dict[str, list[str]]:
        """The user prompts each conversation received, in order.

        Taken from the conversation's longest history, so a prompt sent
        twice to one session appears twice.
        """
        result: dict[str, list[str]] = {}
        for key, records in self.conversations().items():
            longest = max(records, key=lambda r: len(r.request.messages))
            result[key] = list(longest.request.user_texts)
        return result

    def all_prompts(self) -> list[str]:
        """Every user prompt of every conversation (see :meth:`prompts`)."""
        return [text for texts in self.prompts().values() for text in texts]

    def wait_for_requests(
        self,
        count: int,
        *,
        where: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 10.0,
    ) -> list[RecordedRequest]:
        """Block until at least ``count`` (matching) requests were received.

        Args:
            count: How many requests to wait for.
            where: Only count records for which this returns ``True``.
            timeout: Seconds to wait.

        Returns:
            The counted records.

        Raises:
            TimeoutError: If they did not arrive in time.
        """

        def selected() -> list[RecordedRequest]:
            return [r for r in self._records if where is None or where(r)]

        with self._records_changed:
            if not self._records_changed.wait_for(lambda: len(selected()) >= count, timeout):
                raise TimeoutError(
                    f"waited {timeout} s for {count} request(s), got {len(selected())}"
                )
            return selected()

    # -- called by the HTTP handler (any thread) --------------------------

    def next_id(self, prefix: str) -> str:
        """Return a fresh id such as ``call_3`` (thread-safe)."""
        with self._ids_lock:
            return f"{prefix}_{next(self._ids)}"

    def route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        """Record a request and choose its reply (called by the HTTP handler)."""
        body = parse_body(raw)
        request = None
        if body is not None and path.rstrip("/").endswith("/chat/completions"):
            request = ChatRequest(body, headers)
        with self._records_changed:
            record = RecordedRequest(len(self._records), time.time(), method, path, headers, body)
            record._request = request
            record.auxiliary = request.auxiliary if request is not None else None
            reply = self._choose(record, request)
            self._records.append(record)
            self._records_changed.notify_all()
        return Answer(reply, record, request)

    def _choose(self, record: RecordedRequest, request: ChatRequest | None) -> Reply:
        if request is None:
            record.outcome = "invalid"
            return ErrorResponse(
                400,
                f"scripted model: not a chat-completions request: {record.method} {record.path}",
            )
        if request.auxiliary is not None and request.auxiliary in self._auxiliary:
            record.outcome = "auxiliary"
            return self._auxiliary[request.auxiliary]
        selection = self._script.select(request)
        if selection is None:
            record.outcome = "unmatched"
            message = "scripted model: no scripted step matches this request"
            details = [
                f"({request.describe()})",
                "steps waiting: " + ("; ".join(self.pending_steps()[:5]) or "none"),
            ]
            for detail in details:
                if not looks_retryable_to_opencode(detail):
                    message += " " + detail
            return ErrorResponse(400, message)
        record.outcome = "step"
        record.step = selection.label
        return selection.step.reply
