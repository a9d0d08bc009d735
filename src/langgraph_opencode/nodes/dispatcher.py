"""Start ready tasks, and send the prompts that are recorded but not yet sent.

``dispatch`` gives each ready task (every dependency merged) its worktree on
its own branch from the integration branch's head, and its own session on
the least loaded of the run's servers that answers (a top-level session, so
that its own subagents are within OpenCode's depth limit), and records the
worker prompt, up to the parallel limit. It also marks the tasks that can
never start because a dependency failed. ``send`` is the only node that
sends prompts: before sending one, it asks the server whether a message with
that id already arrived, so a resumed run never sends the same prompt twice;
into a task's worktree it sends one only once no other session works there.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from langgraph_opencode.core.jobs import (
    no_jobs,
    part,
    task_job,
    task_of,
    task_owner,
    unsent,
    worker_job,
)
from langgraph_opencode.core.outcomes import server_lost_outcome
from langgraph_opencode.core.services import (
    UNREACHABLE,
    Services,
    pick_server,
    services_for,
    wait_for_server,
)
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob, TaskRecord
from langgraph_opencode.core.supervisor import supervisor_for
from langgraph_opencode.errors import GitError, OpenCodeHTTPError
from langgraph_opencode.nodes._common import (
    event,
    failure,
    git_run,
    plan_of,
    server_of,
    settings_of,
)
from langgraph_opencode.nodes._prompts import answer_schema, prompt_text
from langgraph_opencode.nodes._sessions import abort_left_behind, quiet_worktree
from langgraph_opencode.plan import Task, blocked_by_failure, ready_tasks
from langgraph_opencode.tools.git import TaskWorktree
from langgraph_opencode.tools.opencode.events import Subscription
from langgraph_opencode.tools.opencode.runs import prompt_arrived

__all__ = ["ACTIVE_STATUSES", "DispatchDue", "dispatch", "dispatch_due", "send", "server_load"]

ACTIVE_STATUSES = frozenset({"working", "checking", "reviewing", "approved"})


@dataclass(frozen=True)
class DispatchDue:
    """What the dispatcher has to do now, decided from the state and the settings alone."""

    blocked: dict[str, str] = field(default_factory=dict)
    """Pending tasks that can never start (a dependency failed), with why."""
    lost: list[str] = field(default_factory=list)
    """Tasks under way without a prompt out (an internal error): failed."""
    unaffordable: list[str] = field(default_factory=list)
    """Pending tasks not started because the run's cost budget is spent."""
    start: list[Task] = field(default_factory=list)
    """Ready tasks to start now, within the parallel limit."""

    def __bool__(self) -> bool:
        return bool(self.blocked or self.lost or self.unaffordable or self.start)


def dispatch_due(state: OrchestratorState, settings: RunSettings) -> DispatchDue:
    """What :func:`dispatch` would do (the edges take it only when there is something)."""
    tasks = state.get("tasks") or {}
    if not state.get("plan") or not tasks:
        return DispatchDue()
    plan = plan_of(state)
    status = {task_id: record.get("status", "pending") for task_id, record in tasks.items()}
    merged = {t for t, s in status.items() if s == "merged"}
    failed = {t for t, s in status.items() if s in ("failed", "blocked")}
    jobs = state.get("jobs") or {}
    blocked: dict[str, str] = {}
    for task_id in blocked_by_failure(plan, failed):
        if status.get(task_id) == "pending":
            reasons = [d for d in plan.task(task_id).depends_on if d in failed]
            blocked[task_id] = "blocked: its dependency " + ", ".join(reasons) + " did not finish"
    # A task under way always has a prompt out, except an approved one
    # waiting for its merge; anything else would wait forever.
    lost = [
        task_id
        for task_id in tasks
        if status[task_id] in ("working", "reviewing") and task_job(jobs, task_id) is None
    ]
    limit = settings.run_cost_budget
    unaffordable: list[str] = []
    if limit and float(state.get("cost") or 0.0) >= limit:
        # The money is spent: start nothing more (running work ends on its own).
        unaffordable = [
            t for t, s in status.items() if s == "pending" and t not in blocked and t not in lost
        ]
    decided = set(blocked) | set(lost) | set(unaffordable)
    active = sum(1 for t, s in status.items() if s in ACTIVE_STATUSES and t not in decided)
    slots = settings.max_parallel - active
    ready = [
        task
        for task in ready_tasks(plan, merged)
        if status.get(task.id, "pending") == "pending" and task.id not in decided
    ]
    return DispatchDue(
        blocked=blocked, lost=lost, unaffordable=unaffordable, start=ready[: max(slots, 0)]
    )


async def dispatch(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Start the ready tasks, up to the parallel limit; block those that cannot start."""
    settings = settings_of(runtime)
    due = dispatch_due(state, settings)
    updates: dict[str, TaskRecord] = {}
    events: list[dict[str, Any]] = []
    for task_id, reason in due.blocked.items():
        updates[task_id] = TaskRecord(
            id=task_id, status="blocked", reason=reason, finished_at=time.time()
        )
        events.append(event("blocked", f"{task_id} {reason}", runtime, task=task_id))
    for task_id in due.lost:
        reason = "lost track of its prompt (an internal error); its work is kept on its branch"
        updates[task_id], note = failure(task_id, reason, runtime)
        events.append(note)
    for task_id in due.unaffordable:
        reason = f"not started: the run's cost budget (${settings.run_cost_budget:.2f}) is spent"
        updates[task_id], note = failure(task_id, reason, runtime)
        events.append(note)
    failed_now = [t for t, r in updates.items() if r.get("status") == "failed"]
    if not due.start:
        if not updates:
            return {}
        return {"tasks": updates, "jobs": no_jobs(*failed_now), "events": events}
    new_jobs: dict[str, PromptJob | None] = dict(no_jobs(*failed_now))
    run = await git_run(state)
    load = server_load(state.get("tasks") or {})
    made: list[tuple[Task, TaskWorktree, Services]] = []
    for task in due.start:
        try:
            worktree = await run.create_task_worktree(task.id)
        except GitError as exc:
            reason = f"could not make its worktree: {exc}"
            updates[task.id], note = failure(task.id, reason, runtime)
            events.append(note)
            continue
        services = await pick_server(settings, load)
        load[services.name] += 1
        made.append((task, worktree, services))
    # Each new directory boots on its server for a tenth of a second or more: at once.
    created = await asyncio.gather(
        *(
            services.tools.create_session.ainvoke(
                {"directory": str(worktree.path), "title": f"task {task.id}: {task.title}"}
            )
            for task, worktree, services in made
        ),
        return_exceptions=True,  # all end before the first failure is raised, as one by one
    )
    for (task, worktree, services), session_id in zip(made, created, strict=True):
        if isinstance(session_id, BaseException):
            raise session_id  # the first failure, in the order the tasks were started
        updates[task.id] = TaskRecord(
            id=task.id,
            status="working",
            branch=worktree.branch,
            worktree=str(worktree.path),
            worker_session=session_id,
            server=services.name,
            sessions=[session_id],
            started_at=time.time(),
        )
        new_jobs[task_owner(task.id)] = worker_job(updates[task.id], settings, [part("worker")])
        where = f" on {services.url}" if len(settings.servers()) > 1 else ""
        events.append(
            event(
                "dispatched",
                f"{task.id} started in {worktree.branch}{where}",
                runtime,
                task=task.id,
                server=services.name,
            )
        )
    return {"tasks": updates, "jobs": new_jobs, "events": events}


def server_load(tasks: Mapping[str, TaskRecord]) -> Counter[str]:
    """How many tasks under way each server runs the sessions of."""
    return Counter(
        record["server"]
        for record in tasks.values()
        if record.get("status") in ACTIVE_STATUSES and record.get("server")
    )


@dataclass
class _Sent:
    """What became of one prompt ``send`` tried."""

    refused: str | None = None
    """Why it cannot go, if it cannot."""
    events: Subscription | None = None
    """Its session's events from before this process posted it (``None``: it arrived before)."""


async def _send_one(
    state: OrchestratorState,
    owner: str,
    job: PromptJob,
    settings: RunSettings,
    url: str,
    config: RunnableConfig,
    *,
    worktree: bool,
) -> _Sent:
    """Send ``job`` unless it arrived already.

    ``worktree``: the job works in a task's worktree, where no other session
    may be at work when it starts (see ``quiet_worktree``).
    """
    services = await services_for(settings, url)
    client = services.client
    # Both reads at once: whether it arrived, and who works in its worktree now.
    arrived, statuses = await asyncio.gather(
        prompt_arrived(client, job["session_id"], job["directory"], job["message_id"]),
        client.status(job["directory"]) if worktree else _nothing(),
        return_exceptions=True,
    )
    if isinstance(arrived, BaseException):
        raise arrived
    if isinstance(statuses, BaseException):
        raise statuses
    if arrived:
        return _Sent()
    if worktree and (busy := await quiet_worktree(services, job, statuses)):
        return _Sent(refused=busy)
    # Listened to from before the post, its events tell the whole turn, so the
    # supervisor need not read it back (an open stream only: one reconnecting
    # may miss the start, and the supervisor reads back instead).
    events = (
        services.hub.subscribe(session_ids={job["session_id"]}, descendants=True)
        if services.hub.connected
        else None
    )
    try:
        await services.tools.send_prompt.ainvoke(
            {
                "session_id": job["session_id"],
                "directory": job["directory"],
                "text": await prompt_text(state, owner, job, diff_chars=settings.diff_chars),
                "agent": job["agent"],
                "model": job["model"] or None,
                "message_id": job["message_id"],
                "json_schema": answer_schema(job),
            },
            config,
        )
    except BaseException as exc:
        if events is not None:
            events.close()
        if isinstance(exc, OpenCodeHTTPError) and not exc.retryable:
            return _Sent(refused=f"the server refused the prompt: {exc}")
        raise  # a server error: resuming later sends it again
    return _Sent(events=events)


async def _nothing() -> None:
    return None


async def send(
    state: OrchestratorState, runtime: Runtime[RunSettings], config: RunnableConfig
) -> dict[str, Any]:
    """Send every recorded prompt that the server has not received yet."""
    jobs = unsent(state)
    if not jobs:
        return {}
    settings = settings_of(runtime)
    supervisor = supervisor_for(state["run_id"], settings)
    tasks: dict[str, TaskRecord] = {}
    sent_jobs: dict[str, PromptJob | None] = {}
    update: dict[str, Any] = {}
    left: dict[str, list[dict[str, Any]]] = {}
    """Per task, the sessions it left on servers that went away, still out of reach."""
    for owner, job in jobs.items():
        task_id = task_of(owner)
        url = server_of(job, settings)
        record = (state.get("tasks") or {}).get(task_id or "") or {}
        if record.get("left_behind"):
            left[str(task_id)] = await abort_left_behind(settings, record["left_behind"])
        try:
            for attempt in itertools.count():
                try:
                    sent_one = await _send_one(
                        state,
                        owner,
                        job,
                        settings,
                        url,
                        config,
                        worktree=task_id is not None,
                    )
                    break
                except UNREACHABLE:
                    if not await wait_for_server(settings, url):
                        raise
                    await asyncio.sleep(min(30.0, 2.0**attempt))  # it may fail again at once
        except UNREACHABLE:
            # Its session is out of reach (if the prompt arrived, it died with
            # the server): the next node moves the work to another server.
            sent_jobs[owner] = PromptJob(**{**job, "outcome": server_lost_outcome(job, url)})
            update.setdefault("events", []).append(
                event(
                    "server_lost",
                    f"{task_id or 'planner'}: the OpenCode server {url} went away",
                    runtime,
                    task=task_id,
                    server=url,
                )
            )
            continue
        if sent_one.refused is not None:
            reason = sent_one.refused
            if task_id is None:
                update["error"] = reason
                note = event("failed", f"planner: {reason}", runtime)
            else:
                tasks[task_id], note = failure(task_id, reason, runtime)
            sent_jobs[owner] = None
            update.setdefault("events", []).append(note)
            continue
        sent_jobs[owner] = sent = PromptJob(**{**job, "sent": True, "sent_at": time.time()})
        # Followed from now on, not from the monitor's next step.
        supervisor.follow(owner, sent, record, events=sent_one.events)
    for task_id, remaining in left.items():
        tasks.setdefault(task_id, TaskRecord(id=task_id))["left_behind"] = remaining
    if tasks:
        update["tasks"] = tasks
    update["jobs"] = sent_jobs
    return update
