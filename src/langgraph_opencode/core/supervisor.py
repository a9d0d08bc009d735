"""The supervisor: every prompt the run has out, followed without pause beside the graph.

The graph is one loop of steps (send, monitor, review, merge, dispatch). An
acceptance check in ``review`` can run for minutes; meanwhile the run's other
sessions go on asking permissions, stalling, ending and spending. The
supervisor lives beside the graph, one per run and event loop, for as long
as the process drives the run. For every prompt sent whose outcome is not
known (``core.jobs.outstanding``) it

* follows the session and its subagents through the server's event stream;
* answers permission requests by the run's policy, and keeps those that no
  rule decides for a person (the graph's ``ask_human`` asks them);
* aborts a turn that is stalled (no sign of life for ``stall_timeout``; a
  running tool counts as life), past ``turn_timeout``, over its task's token
  budget, or when the run's cost budget is spent (the decisions are the pure
  functions of ``core.outcomes``);
* records each outcome the moment it is known.

The ``monitor`` node only takes what the supervisor holds (``take``), and
waits when nothing is there. A fresh supervisor (a resumed run, a new
process) reads every session back from the server once when it starts
following it, so nothing that happened while no process listened is missed;
after that, events alone carry it (the event stream's reconnects are read
back as well). A prompt this process posted is listened to from before its
post (``send`` hands over the subscription), so it is not read back at all.
A turn's end is judged from its events (its ``Transcript``) when they show a
final answer, and read back only when they do not.

Clocks survive re-entries and resumes: a turn's time runs from its prompt's
``sent_at``, its stall clock from the last sign of life (read from its
messages on a fresh start), and time spent waiting for a person
(``paused_s``) counts on neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from langchain_core.runnables import RunnableConfig

from langgraph_opencode.core.jobs import outstanding, owner_kind, task_of
from langgraph_opencode.core.notes import note
from langgraph_opencode.core.outcomes import (
    Abort,
    TurnFacts,
    lost_turn,
    run_over_budget,
    watchdog,
)
from langgraph_opencode.core.services import (
    UNREACHABLE,
    Services,
    services_for,
    wait_for_server,
)
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob
from langgraph_opencode.errors import NotFoundError, OpenCodeHTTPError
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.events import Subscription
from langgraph_opencode.tools.opencode.models import Event, Message, PromptOutcome, TokenUsage
from langgraph_opencode.tools.opencode.runs import (
    descendants,
    reconcile,
    turn_usage,
    wait_for_outcome,
)
from langgraph_opencode.tools.opencode.transcript import Transcript

__all__ = ["Supervisor", "Tracked", "close_supervisor", "supervisor_for"]

_STREAM_END = 2.0
"""How long a follower whose server stopped answering waits for the rest of its event stream."""

_WATCHDOG = 5.0
"""With no event for this long, a session's state is read back from the server."""

_ABORT_GRACE = 30.0
"""How long an aborted session may still look busy before it counts as aborted anyway."""

_FIRST_LOOK = 2.0
"""On a fresh start, the longest wait for every session's read-back before taking outcomes."""

_BATCH = 0.2
"""After the first outcome, the longest wait for the others already ending (gone idle)."""


def _monotonic(wall: float, now: float) -> float:
    """A moment given in seconds since the epoch, on the monotonic clock."""
    return time.monotonic() - max(0.0, now - wall)


def _wall(moment: float) -> float:
    """A moment on the monotonic clock, in seconds since the epoch."""
    return time.time() - (time.monotonic() - moment)


def _latest(times: Any) -> float:
    """The latest of a message's or part's times (milliseconds), in seconds."""
    if not isinstance(times, dict):
        return 0.0
    return max((t / 1000 for t in times.values() if isinstance(t, int | float)), default=0.0)


def _running_tool(kind: Any, tool: Any, status: Any) -> bool:
    """Whether a message part is a running tool call that counts as life.

    A ``task`` call (a subagent at work) does not: the subagent's own events
    and tools do, so a subagent that stalls is a stall.
    """
    return kind == "tool" and tool != "task" and status in ("pending", "running")


@dataclass
class Tracked:
    """One prompt out, as the supervisor follows it."""

    owner: str
    job: PromptJob
    base_tokens: int
    """The task's tokens before this turn."""
    server: str
    standing: list[dict[str, Any]] = field(default_factory=list)
    """A person's answers given for requests that died with their server."""
    started: float = field(init=False)
    """When the prompt was sent (monotonic clock), time waiting for a person added."""
    last_activity: float = field(init=False)
    tools_running: set[str] = field(default_factory=set)
    """Tool calls running now in the session or its descendants (not ``task``)."""
    family: set[str] = field(default_factory=set)
    """The session and its descendants (subagents' sessions) as far as known."""
    transcript: Transcript = field(init=False)
    """The turn's assistant messages as far as seen (their usage, its end)."""
    abort: Abort | None = None
    abort_sent: bool = False
    """Whether the server took the abort (one it could not be sent is sent again)."""
    abort_unsaved: bool = False
    """Aborted since the monitor last saved it (a resume must know why it ends)."""
    aborted_at: float = 0.0
    idle_signalled: bool = False
    looked: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: PromptOutcome | None = None
    asked: list[dict[str, Any]] = field(default_factory=list)
    lost: str = ""
    """The URL of the job's server, once that server is gone."""
    standing_changed: bool = False
    events: Subscription | None = None
    """The session's events from before this process posted the prompt, until followed."""

    def __post_init__(self) -> None:
        now = time.time()
        # Time spent waiting for a person is not the turn's.
        sent = (self.job.get("sent_at") or now) + float(self.job.get("paused_s") or 0.0)
        self.started = _monotonic(min(sent, now), now)
        self.transcript = Transcript(self.job["session_id"], self.job["message_id"])
        self.last_activity = _monotonic(
            max(self.job.get("sent_at") or now, self.job.get("active_at") or 0.0), now
        )
        # Aborted before (an earlier process): the outcome still needs that reason.
        kind = self.job.get("abort_kind")
        if kind:
            self.abort = Abort(kind, self.job.get("abort_reason") or kind)
        self.abort_sent = bool(self.job.get("aborted_at"))
        self.aborted_at = _monotonic(self.job.get("aborted_at") or now, now)

    @property
    def task(self) -> str | None:
        """The task the prompt is about (``None``: the planner's)."""
        return task_of(self.owner)

    @property
    def label(self) -> str:
        """How events name it: the task id, or ``planner``."""
        return self.task or "planner"

    @property
    def ready(self) -> bool:
        """Whether the graph has something to take: an outcome, or requests for a person."""
        return self.outcome is not None or bool(self.asked)

    def seed(self, answers: list[Message], *, own: bool = True) -> None:
        """Count what the turn did before the supervisor followed it: tokens, tools, activity.

        ``own=False``: messages of a descendant, which count as life only.
        """
        latest = 0.0
        since = float(self.job.get("sent_at") or 0.0)
        for message in answers:
            info = message.info
            if not own and _latest(info.time) < since:
                continue  # a subagent of an earlier turn: nothing of this one
            latest = max(latest, _latest(info.time))
            for part in message.parts:
                state = part.state or {}
                if _running_tool(part.type, part.tool, state.get("status")):
                    self.tools_running.add(part.id)
                latest = max(latest, _latest(state.get("time")))
        if own:
            self.transcript.seed(answers)
        if latest:
            self.last_activity = max(self.last_activity, _monotonic(latest, time.time()))

    @property
    def live_tokens(self) -> int:
        """The task's tokens so far, this turn's as far as seen."""
        return self.base_tokens + self.transcript.usage()[0].total

    @property
    def live_cost(self) -> float:
        """This turn's cost so far."""
        return self.transcript.usage()[1]

    def usage(self) -> tuple[TokenUsage, float]:
        """The turn's tokens and cost as far as seen (for an outcome not read from the server)."""
        return self.transcript.usage()

    def facts(self, now: float) -> TurnFacts:
        """What the watchdog decides on, at ``now`` (monotonic clock)."""
        return TurnFacts(
            now=now,
            started=self.started,
            last_activity=self.last_activity,
            tools_running=bool(self.tools_running),
            tokens=self.live_tokens,
            is_task=owner_kind(self.owner) != "planner",
        )

    def saved_job(self) -> PromptJob:
        """The job as the state keeps it while its turn runs on (its abort, if any)."""
        job = PromptJob(**self.job)
        if self.abort is not None:
            job["abort_kind"] = self.abort.kind
            job["abort_reason"] = self.abort.reason
        if self.abort_sent:
            job["aborted_at"] = round(_wall(self.aborted_at), 3)
        return job

    def standing_answer(self, permission: str, patterns: list[str]) -> dict[str, Any] | None:
        """The person's answer already given to this request (before its server restarted)."""
        for answer in self.standing:
            if answer["permission"] == permission and answer["patterns"] == patterns:
                if answer["reply"] != "always":
                    self.standing = [a for a in self.standing if a is not answer]
                    self.standing_changed = True
                return answer
        return None

    def observe(self, ev: Event) -> None:
        """Take one event of the session or its subagents: life, tools, idle.

        The turn's messages (its usage) are its transcript's, which
        ``wait_for_outcome`` keeps.
        """
        self.last_activity = time.monotonic()
        props = ev.properties
        own = ev.session_id == self.job["session_id"]
        if ev.type == "session.idle" and own:
            self.idle_signalled = True
        elif ev.type == "session.status" and own:
            status = props.get("status") or {}
            self.idle_signalled = status.get("type") == "idle"
            due = status.get("next")
            if status.get("type") == "retry" and isinstance(due, int | float):
                # OpenCode waits before it retries a failed model call (up to
                # about 30 s, or the provider's retry-after): that wait is no stall.
                due_at = time.monotonic() + due / 1000 - time.time()
                self.last_activity = max(self.last_activity, due_at)
        elif ev.type == "message.part.updated":
            part = props.get("part") or {}
            if part.get("type") == "tool":
                status = (part.get("state") or {}).get("status")
                call = str(part.get("id") or part.get("callID"))
                if _running_tool("tool", part.get("tool"), status):
                    self.tools_running.add(call)
                else:
                    self.tools_running.discard(call)


class Supervisor:
    """Follows one run's prompts out; see the module's description."""

    on_outcome: ClassVar[Callable[[Tracked], None] | None] = None
    """Called with each item the moment its outcome is recorded (for benchmarks)."""

    def __init__(self, run_id: str, settings: RunSettings) -> None:
        self.loop = asyncio.get_running_loop()
        self.started_at = time.time()
        """When this supervisor started (prompts sent before it were sent by an earlier process)."""
        self.run_id = run_id
        self.settings = settings
        self.config: RunnableConfig | None = None
        self.items: dict[str, Tracked] = {}
        self.followers: dict[str, asyncio.Task[None]] = {}
        self.watcher: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        self.failure: BaseException | None = None
        self.events: list[dict[str, Any]] = []
        """Notable events since the monitor last took them."""
        self.run_cost_spent = 0.0
        self.silent: dict[str, asyncio.Future[bool]] = {}
        """Servers not answering now, each with the wait for it to answer again."""
        self.announced: set[str] = set()
        """Servers whose silence has an event already."""
        self.lost: set[str] = set()
        """URLs of servers found gone (their event is given once)."""
        self.services: dict[str, Services] = {}

    # -- what the step wrapper and the monitor node call -------------------------------

    def sync(self, state: OrchestratorState, settings: RunSettings, config: RunnableConfig) -> None:
        """Follow every prompt out in ``state``; forget those no longer out."""
        self.settings, self.config = settings, config
        self.run_cost_spent = float(state.get("cost") or 0.0)
        out = outstanding(state)
        for owner in list(self.items):
            job = out.get(owner)
            if job is None or job["message_id"] != self.items[owner].job["message_id"]:
                self._forget(owner)
        tasks = state.get("tasks") or {}
        # A turn whose requests wait for a person is followed again once answered:
        # followed now, it would put the same requests to the person twice.
        asking = {request.get("task") for request in state.get("waiting") or []}
        for owner, job in out.items():
            if task_of(owner) in asking:
                continue
            self.follow(owner, job, tasks.get(task_of(owner) or "") or {})

    def follow(
        self,
        owner: str,
        job: PromptJob,
        record: Mapping[str, Any],
        *,
        events: Subscription | None = None,
    ) -> None:
        """Follow one prompt the server took (``send`` hands each over at once); once only.

        ``record``: its task's record (tokens so far, a person's standing answers).
        ``events``: the session's events from before this process posted the
        prompt: they tell the whole turn, so it is not read back (the
        supervisor closes them).
        """
        known = self.items.get(owner)
        if known is not None and known.job["message_id"] == job["message_id"]:
            follower = self.followers.get(owner)
            if known.ready or (follower is not None and not follower.done()):
                if events is not None:
                    events.close()
                self._keep_watching()
                return
            # Its follower failed (the failure was raised once): follow it afresh.
        if known is not None:
            self._forget(owner)
        item = Tracked(
            owner=owner,
            job=job,
            base_tokens=int(record.get("tokens") or 0),
            server=str(job.get("server") or next(iter(self.settings.servers()), "")),
            standing=list(record.get("answers") or []),
            events=events,
        )
        self.items[owner] = item
        self.followers[owner] = asyncio.create_task(self._follow_until_known(item))
        self._keep_watching()

    def _keep_watching(self) -> None:
        """Start the watchdogs again if anything is followed and they stopped (or failed)."""
        if self.items and (self.watcher is None or self.watcher.done()):
            self.watcher = asyncio.create_task(self._watch())

    async def wait(self, on_events: Callable[[list[dict[str, Any]]], None]) -> None:
        """Wait until some item is ready (or the supervisor failed, which is raised).

        ``on_events`` gets the notable events as they happen meanwhile (they are
        streamed at once, not when the wait ends).
        """
        self._keep_watching()
        while True:
            if self.events:
                on_events(self.take_events())
            self._raise_failure()
            if any(item.ready for item in self.items.values()) or not self.items:
                break
            self.changed.clear()
            await self.changed.wait()
        fresh = [
            item.looked.wait()
            for item in self.items.values()
            if not item.looked.is_set() and float(item.job.get("sent_at") or 0.0) < self.started_at
        ]
        if fresh:
            # A fresh start (prompts sent before this supervisor, by an earlier process):
            # several sessions may have ended while nobody listened; take them in one
            # step rather than one step each. A prompt sent since is followed from its
            # sending, so nothing of it can have been missed: no wait for it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*fresh), _FIRST_LOOK)
        await asyncio.sleep(0)  # followers take the events already queued
        ending = [
            self.followers[owner]
            for owner, item in self.items.items()
            if not item.ready and item.idle_signalled and owner in self.followers
        ]
        if ending:
            await asyncio.wait(ending, timeout=_BATCH)
        self._raise_failure()

    def take(self) -> tuple[list[Tracked], list[Tracked]]:
        """The items ready (taken out: the graph handles them), and those aborted since.

        An item aborted but still running is saved by the monitor, so that a
        resume knows why its turn ends.
        """
        ready = [item for item in self.items.values() if item.ready]
        for item in ready:
            self._forget(item.owner)
            if item.outcome is not None:
                # Spent already: the run's budget counts it until the state does.
                self.run_cost_spent += item.outcome.cost
        aborted = [item for item in self.items.values() if item.abort_unsaved]
        for item in aborted:
            item.abort_unsaved = False
        return ready, aborted

    def take_events(self) -> list[dict[str, Any]]:
        """The notable events since the last call (permissions, aborts, silent servers)."""
        events, self.events = self.events, []
        return events

    async def close(self) -> None:
        """Stop following: every follower and the watcher end."""
        tasks: list[asyncio.Future[Any]] = [*self.followers.values(), *self.silent.values()]
        if self.watcher is not None:
            tasks.append(self.watcher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.items.clear()
        self.followers.clear()
        self.silent.clear()
        self.watcher = None

    # -- inside -----------------------------------------------------------------------

    def _forget(self, owner: str) -> None:
        item = self.items.pop(owner, None)
        if item is not None and item.events is not None:
            item.events.close()  # its follower never took them
        follower = self.followers.pop(owner, None)
        if follower is not None and not follower.done():
            follower.cancel()

    def _raise_failure(self) -> None:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.changed.set()

    def _note(self, kind: str, message: str, **data: Any) -> None:
        self.events.append(note(kind, message, **data))
        self.changed.set()  # a waiting monitor streams it at once

    def _record(self, item: Tracked, outcome: PromptOutcome) -> None:
        item.outcome = outcome
        if Supervisor.on_outcome is not None:
            Supervisor.on_outcome(item)
        self.changed.set()

    async def _abort(self, item: Tracked, abort: Abort) -> None:
        """Abort the item's turn (again later if its server cannot take it now)."""
        if item.abort is None:
            item.abort, item.abort_unsaved = abort, True
            self._note("aborted", f"{item.label}: {abort.reason}", task=item.task)
        if item.abort_sent or item.server in self.silent:
            return
        job = item.job
        try:
            services = await services_for(self.settings, item.server)
            await services.tools.abort_session.ainvoke(
                {"session_id": job["session_id"], "directory": job["directory"]}, self.config
            )
            # An abort leaves the session tree's pending requests listed: take them back.
            for request in await services.client.permissions(job["directory"]):
                if request.session_id in (item.family or {job["session_id"]}):
                    with contextlib.suppress(NotFoundError):
                        await services.client.reply_permission(
                            request.id, job["directory"], "reject"
                        )
        except UNREACHABLE:
            return  # sent on a later tick, once the server answers again
        item.abort_sent, item.abort_unsaved = True, True
        item.aborted_at = time.monotonic()

    async def _answer_permissions(self, item: Tracked) -> bool:
        """Answer pending requests by policy; return whether a person must answer some."""
        services, job = self.services[item.server], item.job
        client = services.client
        family = item.family or {job["session_id"]}
        for request in await client.permissions(job["directory"]):
            if request.session_id not in family:
                continue
            subagent = request.session_id != job["session_id"]
            what = f"{request.permission} {' '.join(request.patterns)}".strip()
            standing = item.standing_answer(request.permission, request.patterns)
            if standing is not None:
                with contextlib.suppress(NotFoundError):
                    await services.tools.reply_permission.ainvoke(
                        {
                            "request_id": request.id,
                            "directory": job["directory"],
                            "reply": standing["reply"],
                            "message": standing.get("message"),
                        },
                        self.config,
                    )
                self._note(
                    "permission",
                    f"{item.label}: {what}: {standing['reply']} by a person "
                    "(answered before its server restarted)",
                    task=item.task,
                )
                continue
            decision = self.settings.decide_permission(request.permission, request.patterns)
            if decision == "ask":
                item.asked.append(
                    {
                        "kind": "permission",
                        "id": request.id,
                        "task": item.task,
                        "server": item.server,
                        "session_id": request.session_id,
                        "directory": job["directory"],
                        "permission": request.permission,
                        "patterns": request.patterns,
                        "metadata": request.metadata,
                        "subagent": subagent,
                        "url": services.url,
                        "asked_at": round(time.time(), 3),
                    }
                )
                continue
            reply = "once" if decision == "allow" else "reject"
            message = None if decision == "allow" else "Denied by the run's permission policy."
            with contextlib.suppress(NotFoundError):  # answered already (e.g. before a crash)
                await services.tools.reply_permission.ainvoke(
                    {
                        "request_id": request.id,
                        "directory": job["directory"],
                        "reply": reply,
                        "message": message,
                    },
                    self.config,
                )
            by = " (a subagent asked)" if subagent else ""
            self._note(
                "permission", f"{item.label}: {what}: {decision} by policy{by}", task=item.task
            )
        for question in await client.questions(job["directory"]):
            if question.session_id in family:
                # Nobody is there to answer: decline, and the run goes on.
                with contextlib.suppress(NotFoundError):
                    await client.reject_question(question.id, job["directory"])
        if item.asked:
            self.changed.set()
        return bool(item.asked)

    async def _server_gone(self, name: str) -> bool:
        """After an error from ``name``: wait while it is silent; whether it is gone.

        A silent server that is not gone (see ``core.services.server_lost``) is
        waited for: its turns' stall clocks stop meanwhile, and aborts due are
        sent when it answers again. A gone server ends its prompts as lost.
        """
        waiting = self.silent.get(name)
        if waiting is None:
            waiting = self.silent[name] = asyncio.ensure_future(
                wait_for_server(self.settings, name)
            )
        if name not in self.announced:
            self.announced.add(name)
            self._note(
                "server_silent",
                f"the OpenCode server {self.settings.url_of(name)} does not answer; waiting for it",
                server=name,
            )
        try:
            back = await asyncio.shield(waiting)
        finally:
            if waiting.done():
                self.silent.pop(name, None)
        now = time.monotonic()
        for item in self.items.values():
            if item.server == name:
                # The silence was the server's: no turn stalled, no abort took long.
                item.last_activity = max(item.last_activity, now)
                if item.abort_sent:
                    item.aborted_at = max(item.aborted_at, now)
        backoff = min(30.0, 2.0 ** len(self.announced))
        self.announced.discard(name)
        if back:
            await asyncio.sleep(backoff)  # it may fail again at once
            return False
        url = self.settings.url_of(name)
        for item in list(self.items.values()):
            if item.server == name and item.outcome is None:
                tokens, cost = item.usage()
                item.lost = url
                self._record(
                    item,
                    lost_turn(item.job["session_id"], url).model_copy(
                        update={"tokens": tokens, "cost": cost}
                    ),
                )
        if url not in self.lost:  # one event per server, whichever follower found it
            self.lost.add(url)
            self._note("server_lost", f"the OpenCode server {url} went away", server=url)
        return True

    async def _follow_until_known(self, item: Tracked) -> None:
        try:
            while not item.ready:
                try:
                    await self._follow(item)
                except UNREACHABLE:
                    if await self._server_gone(item.server):
                        return
        except asyncio.CancelledError:
            raise
        except OpenCodeHTTPError as exc:
            # The server refuses something about this one session (e.g. it was
            # deleted): end this prompt with that reason, not the whole run.
            self._record(
                item,
                PromptOutcome(
                    kind="unknown",
                    session_id=item.job["session_id"],
                    error_message=f"the server answered {exc.status_code}: {exc.detail or exc}",
                ),
            )
        except Exception as exc:
            self._fail(exc)
        finally:
            item.looked.set()

    async def _follow(self, item: Tracked) -> None:
        services = self.services[item.server] = await services_for(self.settings, item.server)
        # Once only: followed again (its server was silent), the turn is read back.
        told, item.events = item.events, None
        sub = told or services.hub.subscribe(session_ids={item.job["session_id"]}, descendants=True)
        with sub:
            try:
                if told is None:
                    await self._read_back(item, services.client, sub)
                else:
                    # Its events from before the post tell the whole turn.
                    item.family = sub.session_ids or set()
                    item.looked.set()
                    await self._wait_out(item, services.client, sub)
            except UNREACHABLE:
                # The server went away, perhaps while the turn was still being
                # read back: what it said before (its usage above all) counts.
                await services.hub.wait_closed(_STREAM_END)
                for ev in sub.drain():
                    item.transcript.observe(ev)
                    item.observe(ev)
                raise

    async def _read_back(self, item: Tracked, client: OpenCodeClient, sub: Subscription) -> None:
        """Read the turn back once (what it did before ``sub`` was opened), then follow it."""
        job = item.job
        # Subagents started before: their requests and life count too.
        children = await descendants(client, job["session_id"], job["directory"])
        sub.add_sessions(children)
        item.family = sub.session_ids or set()
        state = await reconcile(
            client, job["session_id"], job["directory"], job["message_id"], family=children
        )
        if (
            state.outcome is not None
            and state.status == "idle"
            and state.outcome.kind != "incomplete"
        ):
            self._record(item, state.outcome)
            return
        # What the turn did before (tokens, running tools, its last sign of life)
        # is known before the watchdogs look at it.
        item.seed(state.answers)
        for child in children:
            with contextlib.suppress(NotFoundError):  # deleted since
                messages = await client.messages(child, job["directory"], limit=20)
                item.seed(messages, own=False)
        item.looked.set()
        if (state.permissions or state.questions) and await self._answer_permissions(item):
            return  # asked while nobody listened: a person must answer
        # Idle with an answer not final yet: its final message.updated is due.
        idle = (
            state.status == "idle"
            and state.outcome is not None
            and state.outcome.message_id is not None
        )
        await self._wait_out(item, client, sub, idle=idle)

    async def _wait_out(
        self, item: Tracked, client: OpenCodeClient, sub: Subscription, *, idle: bool = False
    ) -> None:
        """Follow the turn's events (answering its permissions) until its outcome is recorded."""
        job = item.job
        while True:
            try:
                outcome = await wait_for_outcome(
                    client,
                    sub,
                    job["session_id"],
                    job["directory"],
                    job["message_id"],
                    timeout=self.settings.turn_timeout,
                    watchdog=_WATCHDOG,
                    on_event=item.observe,
                    idle=idle,
                    structured=job["schema"] is not None,
                    transcript=item.transcript,
                )
                idle = False
            except TimeoutError:
                continue  # the watcher aborts a turn past its time
            if outcome.kind == "needs_input":
                if await self._answer_permissions(item):
                    return
                continue
            self._record(item, outcome)
            return

    async def _forced_outcome(self, item: Tracked) -> PromptOutcome:
        """The outcome of a turn still busy long after its abort, with the usage it had."""
        tokens, cost = item.usage()
        job = item.job
        with contextlib.suppress(*UNREACHABLE, OpenCodeHTTPError, TimeoutError):
            services = await services_for(self.settings, item.server)
            messages = await asyncio.wait_for(
                services.client.messages(job["session_id"], job["directory"], limit=100), 10.0
            )
            tokens, cost = turn_usage(messages, job["message_id"])
        return PromptOutcome(
            kind="aborted",
            session_id=job["session_id"],
            error_message=item.abort.reason if item.abort else "aborted",
            tokens=tokens,
            cost=cost,
        )

    async def _watch(self) -> None:
        """Abort turns stalled, past their time or over budget, as long as any is followed."""
        try:
            while self.items:
                await asyncio.sleep(min(2.0, self.settings.stall_timeout / 4))
                await self._look()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    async def _look(self) -> None:
        # A wait whose followers were all forgotten (their prompts taken) is over.
        self.silent = {name: wait for name, wait in self.silent.items() if not wait.done()}
        now = time.monotonic()
        for item in list(self.items.values()):
            if item.ready or item.server in self.silent or not item.looked.is_set():
                continue  # a silent server's turns wait for it (clocks stopped)
            if item.abort is not None:
                if not item.abort_sent:
                    await self._abort(item, item.abort)  # it could not be sent before
                elif now - item.aborted_at > _ABORT_GRACE:
                    # The server still says busy long after the abort: stop waiting
                    # for it and let the graph restart or fail the task.
                    forced = await self._forced_outcome(item)
                    if not item.ready:  # the real outcome may have come meanwhile
                        self._record(item, forced)
                continue
            abort = watchdog(item.facts(now), self.settings)
            if abort is not None:
                await self._abort(item, abort)
        spent = self.run_cost_spent + sum(i.live_cost for i in self.items.values())
        over = run_over_budget(spent, self.settings)
        if over is not None:
            for item in list(self.items.values()):
                if not item.ready and item.abort is None:
                    await self._abort(item, over)


_supervisors: dict[tuple[str, int], Supervisor] = {}


def supervisor_for(run_id: str, settings: RunSettings) -> Supervisor:
    """The run's supervisor in this event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    for stale in [k for k, known in _supervisors.items() if known.loop.is_closed()]:
        del _supervisors[stale]  # its loop is gone, and its tasks with it
    key = (run_id, id(loop))
    supervisor = _supervisors.get(key)
    if supervisor is None:
        supervisor = _supervisors[key] = Supervisor(run_id, settings)
    return supervisor


async def close_supervisor(run_id: str | None = None) -> None:
    """Stop following the run's prompts in this event loop (every run's: ``None``)."""
    loop = id(asyncio.get_running_loop())
    for key in [k for k in _supervisors if k[1] == loop and run_id in (None, k[0])]:
        await _supervisors.pop(key).close()
