"""Hand permission requests that no rule decides to a person, through an interrupt.

The run pauses with ``{"type": "permission", "requests": [...]}``. Resume it
with ``Command(resume=...)`` holding, per request id, ``"once"``, ``"always"``,
``"reject"`` or ``{"reply": "reject", "message": "why"}``; a plain string
answers every request alike; an unusable answer pauses again with an ``error``.
Nothing is sent before the interrupt returns,
and an answer the server already has (a re-run after a crash) is skipped.

The time a request waited counts on none of its turn's clocks (the job's
``paused_s``), whether the answer came in-process or on a resume hours later.
A request that died with its server while the run was paused (the run's
embedded server stopped after its linger time; a new one runs now) keeps the
person's answer with its task: the turn is prompted again in the same session
and, when it asks the same thing, gets that answer instead of a second pause.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from langgraph_opencode.core.jobs import PLANNER, task_job
from langgraph_opencode.core.services import UNREACHABLE, server_lost, services_for
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob, TaskRecord
from langgraph_opencode.errors import ConfigurationError, NotFoundError
from langgraph_opencode.nodes._common import event, server_of, settings_of

__all__ = ["ask_human", "permission_answer"]

_REPLIES = ("once", "always", "reject")


def permission_answer(answers: Any, request_id: str) -> tuple[str, str | None]:
    """The reply and message that ``answers`` give one permission request.

    Raises:
        ConfigurationError: The answer is not one the server takes.
    """
    value = answers.get(request_id) if isinstance(answers, dict) else answers
    if isinstance(value, dict):
        reply, message = value.get("reply"), value.get("message")
    else:
        reply, message = value, None
    if reply not in _REPLIES:
        raise ConfigurationError(
            f"answer permission request {request_id} with 'once', 'always', 'reject' or "
            f"{{'reply': 'reject', 'message': '...'}}; got {value!r}"
        )
    return str(reply), message


async def ask_human(
    state: OrchestratorState, runtime: Runtime[RunSettings], config: RunnableConfig
) -> dict[str, Any]:
    """Ask a person about the waiting permission requests and pass the answers on."""
    waiting = state.get("waiting") or []
    if not waiting:
        return {}
    payload: dict[str, Any] = {"type": "permission", "run_id": state["run_id"], "requests": waiting}
    while True:
        # An unusable answer pauses again, saying why (raising would replay it forever).
        try:
            answers = interrupt(payload)
            replies = [permission_answer(answers, request["id"]) for request in waiting]
            break
        except ConfigurationError as exc:
            payload = {**payload, "error": str(exc)}
    settings = settings_of(runtime)
    events = []
    tasks: dict[str, TaskRecord] = {}
    update: dict[str, Any] = {}
    asked: dict[str, float] = {}  # per task ("": the planner), when its first request was asked
    now = time.time()
    for request, (reply, message) in zip(waiting, replies, strict=True):
        name = server_of(request, settings)
        task_id = request.get("task")
        what = f"{request['permission']} {' '.join(request.get('patterns', []))}".strip()
        note = f"{task_id or 'planner'}: {what}: {reply} by a person"
        if request.get("subagent"):
            note += " (a subagent asked)"
        try:
            services = await services_for(settings, name)
            try:
                await services.tools.reply_permission.ainvoke(
                    {
                        "request_id": request["id"],
                        "directory": request["directory"],
                        "reply": reply,
                        "message": message,
                    },
                    config,
                )
            except NotFoundError:
                # Answered already (this node re-ran after a crash), or gone with
                # a server that was started again since it asked.
                if task_id and request.get("url") and request["url"] != services.url:
                    record = tasks.get(task_id) or (state.get("tasks") or {}).get(task_id) or {}
                    kept = [*(record.get("answers") or []), _standing(request, reply, message)]
                    tasks.setdefault(task_id, TaskRecord(id=task_id))["answers"] = kept
                    note += " (kept for when its turn asks again)"
        except UNREACHABLE:
            if not await server_lost(settings, name):
                raise
            continue  # the request died with its server; the monitor moves the work
        key = task_id or ""
        asked[key] = min(asked.get(key, now), float(request.get("asked_at") or now))
        events.append(event("permission", note, runtime))
    jobs: dict[str, PromptJob] = {}
    for key, since in asked.items():
        _paused(state, key or None, now - since, now, jobs)
    if tasks:
        update["tasks"] = tasks
    return {**update, "jobs": jobs, "waiting": [], "events": events}


def _standing(request: dict[str, Any], reply: str, message: str | None) -> dict[str, Any]:
    return {
        "permission": request["permission"],
        "patterns": list(request.get("patterns") or []),
        "reply": reply,
        "message": message,
    }


def _paused(
    state: OrchestratorState,
    task_id: str | None,
    waited: float,
    now: float,
    jobs: dict[str, PromptJob],
) -> None:
    """Leave the ``waited`` seconds its requests waited for a person off a turn's clocks."""
    found = task_job(state.get("jobs") or {}, task_id) if task_id else None
    if task_id is None:
        planner = (state.get("jobs") or {}).get(PLANNER)
        found = (PLANNER, planner) if planner is not None else None
    if found is None or found[1]["outcome"] is not None:
        return
    owner, job = found
    paused = float(job.get("paused_s") or 0.0) + max(0.0, waited)
    jobs[owner] = PromptJob(**{**job, "paused_s": round(paused, 3), "active_at": now})
