"""Follow the running sessions through the server's events until one needs the graph.

The monitor waits, event-driven (no fixed-interval polling), for any
outstanding prompt to end; it returns as soon as one has an outcome or a
permission request needs a human. While it waits it

* answers permission requests by the run's policy (allow/deny globs), and
  hands the others to a human through the ``ask_human`` node;
* aborts a session that shows no sign of life for ``stall_timeout`` (a
  running tool counts as life: long test runs are not stalls);
* counts tokens and cost per task as messages arrive and aborts a task over
  its token budget, or every session when the run's cost budget is spent;
* aborts a turn that runs past ``turn_timeout``.

On entry it reads every tracked session back from the server, so an outcome
that arrived while the orchestrator was not listening (a crash, a restart,
a reconnect) is not missed. The clocks are not restarted by a re-entry or a
resume: a turn's time runs from its prompt's ``sent_at``, its stall clock from
the last sign of life (recorded in the job, or read from the turn's
messages), and its tokens include the messages finished before the entry.
Time a permission request waited for a person counts on neither clock
(``paused_s``; an answer is a sign of life).

A person's answer to a request that died with its server (the run's
embedded server stopped while the run was paused) is kept with the task and
given to the same request when the turn asks it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from langgraph_opencode.core.services import (
    UNREACHABLE,
    Services,
    services_for,
    wait_for_server,
)
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob, TaskRecord
from langgraph_opencode.errors import NotFoundError, OpenCodeHTTPError
from langgraph_opencode.nodes._common import event, lost_turn, server_of, settings_of
from langgraph_opencode.nodes._sessions import abort_left_behind
from langgraph_opencode.tools.opencode.models import Event, Message, PromptOutcome, TokenUsage
from langgraph_opencode.tools.opencode.runs import (
    descendants,
    reconcile,
    turn_usage,
    wait_for_outcome,
)

__all__ = ["monitor"]

_WATCHDOG = 5.0
"""With no event for this long, a session's state is read back from the server."""

_ABORT_GRACE = 30.0
"""How long an aborted session may still look busy before it counts as aborted anyway."""

_FIRST_LOOK = 2.0
"""After the first outcome, the longest wait for the other sessions' read-back on entry."""

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
class _Tracked:
    key: str | None  # task id, or None for the planner
    job: PromptJob
    base_tokens: int
    base_cost: float
    started: float = field(init=False)
    """When the prompt was sent (monotonic clock)."""
    last_activity: float = field(init=False)
    tools_running: set[str] = field(default_factory=set)
    """Tool calls running now in the session or its descendants (not ``task``: a
    subagent shows its own life, so one that stalls is caught)."""
    family: set[str] = field(default_factory=set)
    """The session and its descendants (subagents' sessions) as far as known."""
    message_usage: dict[str, tuple[TokenUsage, float]] = field(default_factory=dict)
    """The turn's assistant messages seen so far: their tokens and cost."""
    abort_reason: str = ""
    abort_sent: bool = False
    """Whether the server took the abort (one it could not be sent is sent again)."""
    aborted_at: float = 0.0
    idle_signalled: bool = False
    looked: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: PromptOutcome | None = None
    asked: list[dict[str, Any]] = field(default_factory=list)
    server: str = ""
    lost: str = ""
    """The URL of the job's server, once that server is gone."""

    standing: list[dict[str, Any]] = field(default_factory=list)
    """A person's answers given for requests that died with their server."""
    standing_changed: bool = False

    def __post_init__(self) -> None:
        now = time.time()
        # Time spent waiting for a person is not the turn's.
        sent = (self.job.get("sent_at") or now) + float(self.job.get("paused_s") or 0.0)
        self.started = _monotonic(min(sent, now), now)
        self.last_activity = _monotonic(
            max(self.job.get("sent_at") or now, self.job.get("active_at") or 0.0), now
        )
        # Aborted in an earlier entry: the outcome still needs that reason.
        self.abort_reason = self.job.get("abort_reason") or ""
        self.abort_sent = bool(self.job.get("aborted_at"))
        self.aborted_at = _monotonic(self.job.get("aborted_at") or now, now)

    def seed(self, answers: list[Message], *, own: bool = True) -> None:
        """Count what the turn did before this entry: tokens, running tools, activity.

        ``own=False``: messages of a descendant, which count as life only.
        """
        latest = 0.0
        since = float(self.job.get("sent_at") or 0.0)
        for message in answers:
            info = message.info
            if not own and _latest(info.time) < since:
                continue  # a subagent of an earlier turn: nothing of this one
            if own:
                self.message_usage.setdefault(info.id, (info.tokens, info.cost))
            latest = max(latest, _latest(info.time))
            for part in message.parts:
                state = part.state or {}
                if _running_tool(part.type, part.tool, state.get("status")):
                    self.tools_running.add(part.id)
                latest = max(latest, _latest(state.get("time")))
        if latest:
            self.last_activity = max(self.last_activity, _monotonic(latest, time.time()))

    @property
    def active_at(self) -> float:
        """The last sign of life, in seconds since the epoch."""
        return _wall(self.last_activity)

    @property
    def live_tokens(self) -> int:
        return self.base_tokens + sum(t.total for t, _ in self.message_usage.values())

    @property
    def live_cost(self) -> float:
        return sum(c for _, c in self.message_usage.values())

    def usage(self) -> tuple[TokenUsage, float]:
        """The turn's tokens and cost as far as seen (for an outcome not read from the server)."""
        tokens = TokenUsage()
        for used, _ in self.message_usage.values():
            tokens = tokens + used
        return tokens, self.live_cost

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
        elif ev.type == "message.updated":
            info = props.get("info") or {}
            if info.get("role") == "assistant" and info.get("parentID") == self.job["message_id"]:
                self.message_usage[str(info.get("id"))] = (
                    TokenUsage.from_server(info.get("tokens")),
                    float(info.get("cost") or 0.0),
                )


def _outstanding(state: OrchestratorState, settings: RunSettings) -> list[_Tracked]:
    tracked: list[_Tracked] = []
    planner = state.get("planner_job")
    if planner is not None and planner["sent"] and planner["outcome"] is None:
        tracked.append(
            _Tracked(
                key=None,
                job=planner,
                base_tokens=0,
                base_cost=0.0,
                server=server_of(planner, settings),
            )
        )
    for task_id, record in (state.get("tasks") or {}).items():
        job = record.get("job")
        if job is not None and job["sent"] and job["outcome"] is None:
            tracked.append(
                _Tracked(
                    key=task_id,
                    job=job,
                    base_tokens=int(record.get("tokens") or 0),
                    base_cost=float(record.get("cost") or 0.0),
                    server=server_of(job, settings),
                    standing=list(record.get("answers") or []),
                )
            )
    return tracked


class _Monitor:
    def __init__(
        self,
        state: OrchestratorState,
        settings: RunSettings,
        runtime: Runtime[RunSettings],
        config: RunnableConfig,
    ) -> None:
        self.state = state
        self.settings = settings
        self.services: dict[str, Services] = {}
        self.runtime = runtime
        self.config = config
        self.tracked = _outstanding(state, settings)
        self.events: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        self.run_cost_spent = float(state.get("cost") or 0.0)
        self.silent: dict[str, asyncio.Future[bool]] = {}
        """Servers not answering now, each with the wait for it to answer again."""
        self.announced: set[str] = set()
        """Servers whose silence has an event already (one per server and entry)."""

    async def abort(self, item: _Tracked, reason: str) -> None:
        """Abort the item's turn for ``reason`` (again later if its server cannot take it now)."""
        if not item.abort_reason:
            item.abort_reason = reason
            self.events.append(
                event("aborted", f"{item.key or 'planner'}: {reason}", self.runtime, task=item.key)
            )
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
        item.abort_sent = True
        item.aborted_at = time.monotonic()

    async def answer_permissions(self, item: _Tracked) -> bool:
        """Answer pending requests by policy; return whether a human must answer some."""
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
                self.events.append(
                    event(
                        "permission",
                        f"{item.key}: {what}: {standing['reply']} by a person "
                        "(answered before its server restarted)",
                        self.runtime,
                        task=item.key,
                    )
                )
                continue
            decision = self.settings.decide_permission(request.permission, request.patterns)
            if decision == "ask":
                item.asked.append(
                    {
                        "kind": "permission",
                        "id": request.id,
                        "task": item.key,
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
            self.events.append(
                event(
                    "permission",
                    f"{item.key or 'planner'}: {what}: {decision} by policy{by}",
                    self.runtime,
                    task=item.key,
                )
            )
        for question in await client.questions(job["directory"]):
            if question.session_id in family:
                # Nobody is there to answer: decline, and the run goes on.
                with contextlib.suppress(NotFoundError):
                    await client.reject_question(question.id, job["directory"])
        return bool(item.asked)

    async def server_gone(self, name: str) -> bool:
        """After an error from ``name``: wait while it is silent; whether it is gone.

        A silent server that is not gone (see ``server_lost``) is waited for:
        its turns' stall clocks stop meanwhile, and aborts due are sent when
        it answers again. A gone server ends its prompts as lost.
        """
        waiting = self.silent.get(name)
        if waiting is None:
            waiting = self.silent[name] = asyncio.ensure_future(
                wait_for_server(self.settings, name)
            )
        if name not in self.announced:
            self.announced.add(name)
            self.events.append(
                event(
                    "server_silent",
                    f"the OpenCode server {self.settings.url_of(name)} does not answer; "
                    "waiting for it",
                    self.runtime,
                    server=name,
                )
            )
        try:
            back = await asyncio.shield(waiting)
        finally:
            if waiting.done():
                self.silent.pop(name, None)
        now = time.monotonic()
        for item in self.tracked:
            if item.server == name:
                # The silence was the server's: no turn stalled, no abort took long.
                item.last_activity = max(item.last_activity, now)
                if item.abort_sent:
                    item.aborted_at = max(item.aborted_at, now)
        if back:
            await asyncio.sleep(min(30.0, 2.0 ** len(self.announced)))  # it may fail again at once
            return False
        url = self.settings.url_of(name)
        if any(item.lost for item in self.tracked if item.server == name):
            return True  # another follower found it gone first
        for item in self.tracked:
            if item.server == name and item.outcome is None:
                tokens, cost = item.usage()
                item.outcome = lost_turn(item.job["session_id"], url).model_copy(
                    update={"tokens": tokens, "cost": cost}
                )
                item.lost = url
        self.events.append(
            event("server_lost", f"the OpenCode server {url} went away", self.runtime, server=url)
        )
        self.done.set()
        return True

    async def follow(self, item: _Tracked) -> None:
        try:
            while item.outcome is None and not item.asked:
                try:
                    await self._follow(item)
                except UNREACHABLE:
                    if await self.server_gone(item.server):
                        return
        except OpenCodeHTTPError as exc:
            # The server refuses something about this one session (e.g. it was
            # deleted): end this prompt with that reason, not the whole run.
            item.outcome = PromptOutcome(
                kind="unknown",
                session_id=item.job["session_id"],
                error_message=f"the server answered {exc.status_code}: {exc.detail or exc}",
            )
            self.done.set()
        finally:
            item.looked.set()

    async def _follow(self, item: _Tracked) -> None:
        services = self.services[item.server] = await services_for(self.settings, item.server)
        job, client = item.job, services.client
        with services.hub.subscribe(session_ids={job["session_id"]}, descendants=True) as sub:
            # Subagents started before this entry: their requests and life count too.
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
                item.outcome = state.outcome
                self.done.set()
                return
            item.looked.set()
            # Idle with an answer not final yet: its final message.updated is due.
            idle = (
                state.status == "idle"
                and state.outcome is not None
                and state.outcome.message_id is not None
            )
            item.seed(state.answers)
            for child in children:
                with contextlib.suppress(NotFoundError):  # deleted since
                    messages = await client.messages(child, job["directory"], limit=20)
                    item.seed(messages, own=False)
            while True:
                remaining = self.settings.turn_timeout - (time.monotonic() - item.started)
                try:
                    outcome = await wait_for_outcome(
                        client,
                        sub,
                        job["session_id"],
                        job["directory"],
                        job["message_id"],
                        timeout=max(remaining, 1.0),
                        watchdog=_WATCHDOG,
                        on_event=item.observe,
                        idle=idle,
                    )
                    idle = False
                except TimeoutError:
                    await self.abort(
                        item, f"the turn ran past turn_timeout ({self.settings.turn_timeout:g} s)"
                    )
                    item.started = time.monotonic()  # a fresh limit for the abort to land
                    continue
                if outcome.kind == "needs_input":
                    if await self.answer_permissions(item):
                        self.done.set()
                        return
                    continue
                item.outcome = outcome
                self.done.set()
                return

    async def forced_outcome(self, item: _Tracked) -> PromptOutcome:
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
            error_message=item.abort_reason,
            tokens=tokens,
            cost=cost,
        )

    async def watch(self) -> None:
        """Abort stalled sessions and sessions over budget."""
        tick = min(2.0, self.settings.stall_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for item in self.tracked:
                if item.outcome is not None or item.server in self.silent:
                    continue  # a silent server's turns wait for it (clocks stopped)
                if item.abort_reason and not item.abort_sent:
                    await self.abort(item, item.abort_reason)  # it could not be sent before
                elif item.abort_reason and now - item.aborted_at > _ABORT_GRACE:
                    # The server still says busy long after the abort: stop
                    # waiting for it and let the reviewer restart or fail the task.
                    item.outcome = await self.forced_outcome(item)
                    self.done.set()
                if item.abort_reason:
                    continue
                budget = self.settings.task_token_budget
                if item.key is not None and budget and item.live_tokens > budget:
                    await self.abort(item, f"token budget exceeded ({item.live_tokens} > {budget})")
                elif (
                    not item.tools_running
                    and now - item.last_activity > self.settings.stall_timeout
                ):
                    await self.abort(
                        item, f"stalled: no activity for {self.settings.stall_timeout:g} s"
                    )
            spent = self.run_cost_spent + sum(i.live_cost for i in self.tracked)
            limit = self.settings.run_cost_budget
            if limit and spent > limit:
                for item in self.tracked:
                    if item.outcome is None and not item.abort_reason:
                        await self.abort(
                            item, f"run cost budget exceeded (${spent:.2f} > ${limit:.2f})"
                        )

    async def collect_ending(self, followers: list[asyncio.Task[None]]) -> None:
        """After a first outcome, take the others that are ending in this same step.

        Those are the sessions still being read back on entry (several may
        have ended while the graph was busy elsewhere) and those already
        signalled idle; the others are not waited for.
        """
        looking = [item.looked.wait() for item in self.tracked if not item.looked.is_set()]
        if looking:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*looking), _FIRST_LOOK)
        await asyncio.sleep(0)  # followers take the events already queued
        ending = [
            follower
            for follower, item in zip(followers, self.tracked, strict=True)
            if item.outcome is None and item.idle_signalled
        ]
        if ending:
            await asyncio.wait(ending, timeout=_BATCH)

    async def run(self) -> None:
        followers = [asyncio.create_task(self.follow(item)) for item in self.tracked]
        watcher = asyncio.create_task(self.watch())
        done = asyncio.create_task(self.done.wait())
        try:
            # A follower or the watcher that fails (the server went away) ends
            # the wait at once, so the error surfaces instead of a hang.
            await asyncio.wait({done, watcher, *followers}, return_when=asyncio.FIRST_COMPLETED)
            if self.done.is_set():
                await self.collect_ending(followers)
            for task in [*followers, watcher]:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            everything: list[asyncio.Future[Any]] = [
                *followers,
                watcher,
                done,
                *self.silent.values(),
            ]
            for pending in everything:
                pending.cancel()
            await asyncio.gather(*everything, return_exceptions=True)

    def update(self) -> dict[str, Any]:
        tasks: dict[str, TaskRecord] = {}
        update: dict[str, Any] = {}
        waiting: list[dict[str, Any]] = []
        cost = float(self.state.get("cost") or 0.0)
        cost += sum(item.outcome.cost for item in self.tracked if item.outcome is not None)
        cost_limit = self.settings.run_cost_budget
        for item in self.tracked:
            waiting += item.asked
            if item.outcome is None:
                # Still running: keep its clocks and any abort for the next entry.
                running = PromptJob(**{**item.job, "active_at": round(item.active_at, 3)})
                if item.abort_reason:
                    running["abort_reason"] = item.abort_reason
                if item.abort_sent:
                    running["aborted_at"] = round(_wall(item.aborted_at), 3)
                if item.key is None:
                    update["planner_job"] = running
                else:
                    tasks[item.key] = TaskRecord(id=item.key, job=running)
                    if item.standing_changed:
                        tasks[item.key]["answers"] = item.standing
                continue
            outcome = item.outcome.model_dump(mode="json")
            budget = self.settings.task_token_budget
            used = item.base_tokens + item.outcome.tokens.total
            # A turn that ended over a budget between two watchdog ticks: same verdict.
            if item.key is not None and budget and used > budget and not item.abort_reason:
                item.abort_reason = f"token budget exceeded ({used} > {budget})"
            if cost_limit and cost > cost_limit and not item.abort_reason:
                item.abort_reason = f"run cost budget exceeded (${cost:.2f} > ${cost_limit:.2f})"
            if item.abort_reason:
                outcome["abort_reason"] = item.abort_reason
            if item.lost:
                outcome["server_lost"] = item.lost
            job = PromptJob(**{**item.job, "outcome": outcome})
            if item.key is None:
                update["planner_job"] = job
                continue
            tasks[item.key] = TaskRecord(
                id=item.key,
                job=job,
                tokens=item.base_tokens + item.outcome.tokens.total,
                cost=round(item.base_cost + item.outcome.cost, 6),
            )
            if item.standing and item.outcome.kind == "ok":
                # The turn they were kept for has finished: they answer nothing later.
                item.standing, item.standing_changed = [], True
            if item.standing_changed:
                tasks[item.key]["answers"] = item.standing
        if waiting:
            self.events.append(
                event(
                    "waiting",
                    f"{len(waiting)} permission request(s) wait for a person",
                    self.runtime,
                )
            )
        update.update(tasks=tasks, waiting=waiting, cost=round(cost, 6), events=self.events)
        return update


async def monitor(
    state: OrchestratorState, runtime: Runtime[RunSettings], config: RunnableConfig
) -> dict[str, Any]:
    """Wait until an outstanding prompt ends or needs a person; record what happened."""
    settings = settings_of(runtime)
    watcher = _Monitor(state, settings, runtime, config)
    if not watcher.tracked:
        return {}
    # A prompt ``send`` found its server gone for is to be moved now, not
    # after the others end. (Each follower opens its server's connections.)
    jobs = [record.get("job") for record in (state.get("tasks") or {}).values()]
    if not any(job and (job["outcome"] or {}).get("server_lost") for job in jobs):
        await watcher.run()
    update = watcher.update()
    # Sessions moved tasks left on servers that went away: abort any that came back.
    for task_id, record in (state.get("tasks") or {}).items():
        if record.get("left_behind"):
            remaining = await abort_left_behind(settings, record["left_behind"])
            if remaining != record["left_behind"]:
                update["tasks"].setdefault(task_id, TaskRecord(id=task_id))["left_behind"] = (
                    remaining
                )
    return update
