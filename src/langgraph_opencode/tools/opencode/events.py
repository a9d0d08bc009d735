"""One consumer of the server's event stream, routed to many subscribers.

The server's stream (``GET /global/event``) has no replay: frames carry no
SSE ids, so whatever happens while the stream is down is lost. The
:class:`EventHub` therefore watches the stream's heartbeats, reconnects with
backoff when it dies, and then delivers a :data:`RECONNECTED` event to every
subscriber so each can re-read the state it cares about from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from types import TracebackType
from typing import Self

import httpx
from httpx_sse import SSEError, aconnect_sse

from langgraph_opencode.errors import (
    AuthenticationError,
    EventStreamError,
    OpenCodeError,
    error_for_status,
)
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.models import Event

__all__ = ["RECONNECTED", "EventHub", "Subscription", "child_session"]

logger = logging.getLogger(__name__)

RECONNECTED = "langgraph_opencode.reconnected"
"""Type of the synthetic event sent to every subscriber after a reconnect."""

_CLOSED = "langgraph_opencode.closed"

_STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)


_SESSION_TYPES = frozenset({"session.created", "session.updated"})


def child_session(event: Event) -> tuple[str, str] | None:
    """``(session, parent)`` when ``event`` announces a session that has a parent."""
    if event.type not in _SESSION_TYPES:
        return None
    info = event.properties.get("info")
    if not isinstance(info, dict):
        return None
    session, parent = info.get("id"), info.get("parentID")
    if isinstance(session, str) and isinstance(parent, str):
        return session, parent
    return None


class Subscription:
    """A queue of the events that match one filter.

    Iterate it (``async for event in sub``) or call :meth:`get`. Close it with
    :meth:`close` or by leaving its ``with`` block.
    """

    def __init__(
        self,
        hub: EventHub,
        *,
        session_ids: Collection[str] | None,
        directory: str | None,
        types: Collection[str] | None,
        descendants: bool = False,
    ) -> None:
        self._hub = hub
        self.session_ids = set(session_ids) if session_ids is not None else None
        self.descendants = descendants
        self.directory = directory
        self.types = set(types) if types is not None else None
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def matches(self, event: Event) -> bool:
        """Whether this subscription wants ``event`` (reconnects always match)."""
        if event.type == RECONNECTED:
            return True
        if self.types is not None and event.type not in self.types:
            return False
        if self.directory is not None and event.directory != self.directory:
            return False
        if self.session_ids is None or event.session_id in self.session_ids:
            return True
        if self.descendants:
            # A session started under one of ours (a subagent's, by the task
            # tool) is followed from its creation on.
            child = child_session(event)
            if child is not None and child[1] in self.session_ids:
                self.session_ids.add(child[0])
                return True
        return False

    def add_sessions(self, session_ids: Collection[str]) -> None:
        """Follow these sessions too (descendants found by reading them back)."""
        if self.session_ids is not None:
            self.session_ids.update(session_ids)

    def put(self, event: Event) -> None:
        """Queue an event (called by the hub)."""
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> Event | None:
        """Return the next event, or ``None`` when ``timeout`` seconds pass first.

        Raises:
            EventStreamError: The hub stopped, or its stream was refused; no
                event will come any more.
        """
        try:
            async with asyncio.timeout(timeout):
                event = await self._queue.get()
        except TimeoutError:
            return None
        if event.type == _CLOSED:
            self._queue.put_nowait(event)  # every later call sees it too
            raise EventStreamError(str(event.properties.get("reason", "the event hub stopped")))
        return event

    def drain(self) -> list[Event]:
        """The events queued now, taken without waiting (the hub's end is left queued)."""
        events: list[Event] = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event.type == _CLOSED:
                self._queue.put_nowait(event)
                break
            events.append(event)
        return events

    def close(self) -> None:
        """Stop receiving events."""
        self._hub.unsubscribe(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self.get()
            if event is not None:
                yield event


class EventHub:
    """Reads ``/global/event`` once and routes frames to subscribers.

    Use as an async context manager; ``await hub.wait_connected()`` before
    relying on events (subscribe first, then act, then read the events)::

        async with EventHub(client) as hub:
            with hub.subscribe(session_ids={sid}) as sub:
                ...

    Args:
        client: The client whose server to follow.
        heartbeat_timeout: The server sends a heartbeat every 10 s; a stream
            silent for this long is taken as dead and reopened.
        max_backoff: The longest wait between reconnect attempts.
        open_timeout: How long to wait for the stream's response when opening it.
        on_event: Called with every event before routing (e.g. for metrics).
    """

    def __init__(
        self,
        client: OpenCodeClient,
        *,
        heartbeat_timeout: float = 25.0,
        max_backoff: float = 5.0,
        open_timeout: float = 3.0,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        if heartbeat_timeout <= 0:
            raise ValueError(f"heartbeat_timeout must be positive, got {heartbeat_timeout}")
        self._client = client
        self._heartbeat_timeout = heartbeat_timeout
        self._max_backoff = max_backoff
        self._open_timeout = open_timeout
        self.on_event = on_event
        """Called with every event before routing; may be set or replaced at any time."""
        self._subscriptions: list[Subscription] = []
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()
        self._closed.set()
        self._changed = asyncio.Event()
        self._fatal: AuthenticationError | None = None
        self._task: asyncio.Task[None] | None = None
        self.connections = 0
        """How many times the stream was opened (1 + reconnects)."""
        self.last_event_at = 0.0
        """``time.monotonic()`` of the last frame received."""
        self.last_error: str | None = None
        """Why the stream was last lost, for diagnostics."""

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        """Start following the stream in a task owned by the hub."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="opencode-event-hub")

    async def stop(self) -> None:
        """Stop following the stream; waiting subscribers get ``EventStreamError``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Wait without swallowing a cancellation aimed at the caller.
            await asyncio.wait({task})
        self._set_connected(False)
        self._close_subscriptions("the event hub stopped")

    def _close_subscriptions(self, reason: str) -> None:
        closed = Event(type=_CLOSED, properties={"reason": reason})
        for sub in list(self._subscriptions):
            sub.put(closed)

    @property
    def connected(self) -> bool:
        """Whether the stream is open now."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the stream is open.

        Raises:
            EventStreamError: It did not open within ``timeout`` seconds, or
                the server refused the password (at once, without retrying).
        """
        try:
            async with asyncio.timeout(timeout):
                while not self._connected.is_set():
                    if self._fatal is not None:
                        raise EventStreamError(
                            f"the event stream of {self._client.base_url} was refused: "
                            f"{self._fatal}"
                        ) from None
                    await self._changed.wait()
                    self._changed.clear()
        except TimeoutError:
            raise EventStreamError(
                f"the event stream of {self._client.base_url} did not open within {timeout:g} s"
                + (f" (last error: {self.last_error})" if self.last_error else "")
            ) from None

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self._closed.clear()
            self._connected.set()
        else:
            self._connected.clear()
            self._closed.set()

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until the stream is closed (so every frame sent before is routed); whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._closed.wait()
        return self._closed.is_set()

    def subscribe(
        self,
        *,
        session_ids: Collection[str] | None = None,
        directory: str | None = None,
        types: Collection[str] | None = None,
        descendants: bool = False,
    ) -> Subscription:
        """Return a subscription to the events that match every given filter.

        With ``descendants``, the events of sessions created under the given
        ones (subagents' sessions, and theirs) match too, from the event that
        announces each of them; ``session_ids`` then grows as they appear.
        """
        sub = Subscription(
            self, session_ids=session_ids, directory=directory, types=types, descendants=descendants
        )
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription; unknown ones are ignored."""
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)

    def _dispatch(self, event: Event) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("on_event callback failed for %s", event.type)
        for sub in list(self._subscriptions):
            if sub.matches(event):
                sub.put(event)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._follow()
                self.last_error = "the stream ended"
            except AuthenticationError as exc:
                # A wrong password will not get better by retrying.
                self._fatal = exc
                self._set_connected(False)
                self._changed.set()
                self._close_subscriptions(f"the event stream was refused: {exc}")
                return
            except (httpx.HTTPError, SSEError, OpenCodeError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:
                # Anything else (a bug, a frame we cannot read): log it with its
                # traceback and reconnect rather than leave subscribers waiting.
                logger.exception("event stream reader failed; reconnecting")
                self.last_error = f"{type(exc).__name__}: {exc}"
            was_connected = self._connected.is_set()
            self._set_connected(False)
            if was_connected:
                backoff = 0.05
            logger.info("event stream lost (%s); reconnecting in %.2f s", self.last_error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _follow(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            # A connection accepted while the server starts can stay unanswered
            # forever: bound the wait for the response.
            async with asyncio.timeout(self._open_timeout):
                source = await stack.enter_async_context(
                    aconnect_sse(self._client.http, "GET", "/global/event", timeout=_STREAM_TIMEOUT)
                )
            response = source.response
            if response.status_code >= 400:
                await response.aread()
                raise error_for_status(
                    response.status_code, method="GET", path="/global/event", detail=response.text
                )
            frames = source.aiter_sse()
            while True:
                try:
                    async with asyncio.timeout(self._heartbeat_timeout):
                        sse = await anext(frames)
                except StopAsyncIteration:
                    return
                self.last_event_at = time.monotonic()
                event = self._parse(sse.data)
                if event is None:
                    continue
                if event.type == "server.connected":
                    self.connections += 1
                    self._set_connected(True)
                    self._changed.set()
                    if self.connections > 1:
                        self._dispatch(Event(type=RECONNECTED))
                    continue
                self._dispatch(event)

    @staticmethod
    def _parse(data: str) -> Event | None:
        try:
            frame = json.loads(data)
        except ValueError:
            logger.warning("skipping an event frame that is not JSON: %.200s", data)
            return None
        if not isinstance(frame, dict):
            logger.warning("skipping an event frame that is not an object: %.200s", data)
            return None
        payload = frame.get("payload", frame)
        if not isinstance(payload, dict) or "type" not in payload:
            return None
        directory = frame.get("directory")
        return Event(
            type=payload["type"],
            properties=payload.get("properties") or {},
            directory=directory if directory != "global" else None,
            id=payload.get("id"),
        )
