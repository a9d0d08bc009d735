"""Take the outcomes the run's supervisor holds; wait only when there is none.

The supervisor (``core.supervisor``) follows every prompt out for as long as
this process drives the run, also while the graph reviews, merges,
dispatches or sends: it answers permission requests by policy, runs the
stall, turn-time and budget watchdogs, and records outcomes as they happen.
This node hands it the prompts sent since it last ran, takes every outcome
and every request for a person it holds, and records them in the state. When
there is none, it waits for the first.

A fresh process (a resume) has a fresh supervisor, which reads every
session back from the server once, so nothing that happened while no
process listened is missed.

A person's answer to a request that died with its server (the run's
embedded server stopped while the run was paused) is kept with the task and
given to the same request when the turn asks it again.
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from langgraph_opencode.core.jobs import ended_jobs
from langgraph_opencode.core.outcomes import ended_over_budget
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob, TaskRecord
from langgraph_opencode.core.supervisor import Tracked, supervisor_for
from langgraph_opencode.nodes._common import event, settings_of
from langgraph_opencode.nodes._sessions import abort_left_behind

__all__ = ["monitor"]


def _ended(
    item: Tracked, cost: float, settings: RunSettings
) -> tuple[PromptJob, TaskRecord | None]:
    """The job with its outcome recorded, and its task's usage (``None``: the planner's)."""
    assert item.outcome is not None
    # Fields at their defaults are left out (each is saved with the job): read with ``.get``.
    outcome = item.outcome.model_dump(mode="json", exclude_defaults=True)
    used = item.base_tokens + item.outcome.tokens.total
    task = item.task
    abort = item.abort or ended_over_budget(used, cost, settings, is_task=task is not None)
    if abort is not None:
        outcome["abort_kind"], outcome["abort_reason"] = abort.kind, abort.reason
    if item.lost:
        outcome["server_lost"] = item.lost
    job = PromptJob(**{**item.saved_job(), "outcome": outcome})
    if task is None:
        return job, None
    record = TaskRecord(id=task, tokens=used)
    return job, record


async def monitor(
    state: OrchestratorState, runtime: Runtime[RunSettings], config: RunnableConfig
) -> dict[str, Any]:
    """Record the outcomes (and requests for a person) the supervisor holds; wait for one."""
    settings = settings_of(runtime)
    supervisor = supervisor_for(state["run_id"], settings)
    supervisor.sync(state, settings, config)
    events: list[dict[str, Any]] = []

    def stream(noted: list[dict[str, Any]]) -> None:
        for record in noted:
            runtime.stream_writer({"event": record})
        events.extend(noted)  # and into the run's log with this step

    # An ending not handled yet (a prompt ``send`` found its server gone for, an
    # outcome recorded with requests for a person) is handled now, not after
    # the other turns end.
    if not (ended_jobs(state, "task") or ended_jobs(state, "review")) and not (
        ended_jobs(state, "planner") and not state.get("plan")
    ):
        await supervisor.wait(stream)
    ready, aborted = supervisor.take()
    stream(supervisor.take_events())
    tasks: dict[str, TaskRecord] = {}
    jobs: dict[str, PromptJob | None] = {}
    waiting: list[dict[str, Any]] = []
    spent = sum(item.outcome.cost for item in ready if item.outcome is not None)
    cost = float(state.get("cost") or 0.0) + spent
    previous: dict[str, TaskRecord] = state.get("tasks") or {}
    for item in aborted:
        jobs[item.owner] = item.saved_job()  # so that a resume knows why it ends
    for item in ready:
        if item.outcome is None:
            waiting += item.asked
            if item.abort is not None:
                jobs[item.owner] = item.saved_job()  # the abort holds over the person's answer
            if item.standing_changed and item.task:
                tasks[item.task] = TaskRecord(id=item.task, answers=item.standing)
            continue
        job, usage = _ended(item, cost, settings)
        jobs[item.owner] = job
        if usage is None:
            continue
        task_id = item.task or ""
        usage["cost"] = round(
            float(previous.get(task_id, {}).get("cost") or 0.0) + item.outcome.cost, 6
        )
        if item.standing and item.outcome.kind == "ok":
            # The turn they were kept for has finished: they answer nothing later.
            item.standing, item.standing_changed = [], True
        if item.standing_changed:
            usage["answers"] = item.standing
        tasks[task_id] = usage
    if waiting:
        events.append(
            event("waiting", f"{len(waiting)} permission request(s) wait for a person", runtime)
        )
    update: dict[str, Any] = {
        "tasks": tasks,
        "jobs": jobs,
        "waiting": waiting,
        "cost": round(spent, 6),
        "events": events,
    }
    # Sessions moved tasks left on servers that went away: abort any that came back.
    for task_id, record in previous.items():
        if record.get("left_behind"):
            remaining = await abort_left_behind(settings, record["left_behind"])
            if remaining != record["left_behind"]:
                tasks.setdefault(task_id, TaskRecord(id=task_id))["left_behind"] = remaining
    return update
