"""The run's prompts: who owns each, and how one is recorded before it is sent.

Every prompt out is in the state's ``jobs`` channel under its owner:

* ``planner``: the planner's prompt;
* ``task:<id>``: a task's worker prompt;
* ``review:<id>``: a task's reviewer prompt.

Room is left for more kinds (a re-plan, a person's steering message): a new
kind is a new owner prefix here and a node that handles its ending, not a
special case in the dispatcher, the monitor and the supervisor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import (
    AnswerSchema,
    JobRole,
    OrchestratorState,
    PromptJob,
    PromptPart,
)
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import WORKER_AGENT

__all__ = [
    "PLANNER",
    "OwnerKind",
    "ended_jobs",
    "new_job",
    "no_jobs",
    "outstanding",
    "owner_kind",
    "part",
    "resend",
    "review_owner",
    "task_job",
    "task_of",
    "task_owner",
    "unsent",
    "worker_job",
]

PLANNER = "planner"
"""The planner's prompt."""

OwnerKind = Literal["planner", "task", "review"]

_PREFIXES: dict[str, OwnerKind] = {"task": "task", "review": "review"}


def task_owner(task_id: str) -> str:
    """The owner of a task's worker prompt."""
    return f"task:{task_id}"


def review_owner(task_id: str) -> str:
    """The owner of a task's reviewer prompt."""
    return f"review:{task_id}"


def owner_kind(owner: str) -> OwnerKind:
    """Which kind of owner ``owner`` is.

    Raises:
        ValueError: It is none the run knows.
    """
    if owner == PLANNER:
        return "planner"
    prefix, _, rest = owner.partition(":")
    kind = _PREFIXES.get(prefix)
    if kind is None or not rest:
        raise ValueError(f"unknown prompt owner {owner!r}: planner, task:<id> or review:<id>")
    return kind


def task_of(owner: str) -> str | None:
    """The task an owner's prompt is about (``None``: the planner's)."""
    if owner_kind(owner) == "planner":
        return None
    return owner.partition(":")[2]


def no_jobs(*task_ids: str) -> dict[str, None]:
    """A ``jobs`` update that drops every prompt of these tasks (none is out any more)."""
    return {owner: None for t in task_ids for owner in (task_owner(t), review_owner(t))}


def task_job(jobs: Mapping[str, PromptJob], task_id: str) -> tuple[str, PromptJob] | None:
    """The prompt a task has out, worker's or reviewer's, with its owner."""
    for owner in (task_owner(task_id), review_owner(task_id)):
        job = jobs.get(owner)
        if job is not None:
            return owner, job
    return None


def outstanding(state: OrchestratorState) -> dict[str, PromptJob]:
    """The prompts sent whose outcome is not known yet, by owner."""
    return {
        owner: job
        for owner, job in (state.get("jobs") or {}).items()
        if job["sent"] and job["outcome"] is None
    }


def unsent(state: OrchestratorState) -> dict[str, PromptJob]:
    """The prompts recorded but not sent yet, by owner."""
    return {owner: job for owner, job in (state.get("jobs") or {}).items() if not job["sent"]}


def ended_jobs(state: OrchestratorState, kind: OwnerKind) -> dict[str, PromptJob]:
    """The prompts of owners of ``kind`` whose outcome is known (to be handled), by owner."""
    return {
        owner: job
        for owner, job in (state.get("jobs") or {}).items()
        if job["outcome"] is not None and owner_kind(owner) == kind
    }


def part(name: str, /, **args: Any) -> PromptPart:
    """One template of a prompt, with the values the state does not hold."""
    return PromptPart(template=name, args=args)


def new_job(
    role: JobRole,
    *,
    session_id: str,
    directory: str,
    agent: str,
    model: str,
    prompt: list[PromptPart],
    server: str,
    schema: AnswerSchema | None = None,
) -> PromptJob:
    """A prompt, recorded with its message id before it is sent."""
    return PromptJob(
        server=server,
        role=role,
        session_id=session_id,
        directory=directory,
        message_id=OpenCodeClient.new_message_id(),
        agent=agent,
        model=model,
        prompt=prompt,
        schema=schema,
        sent=False,
        outcome=None,
    )


def worker_job(
    record: Mapping[str, Any], settings: RunSettings, prompt: list[PromptPart]
) -> PromptJob:
    """The next prompt to a task's worker session (its record names session, worktree, server)."""
    return new_job(
        "worker",
        session_id=str(record["worker_session"]),
        directory=str(record["worktree"]),
        agent=WORKER_AGENT,
        model=settings.worker_model,
        prompt=prompt,
        server=str(record.get("server") or next(iter(settings.servers()), "")),
    )


_TURN_FIELDS = frozenset(
    {"sent_at", "active_at", "abort_kind", "abort_reason", "aborted_at", "paused_s"}
)
"""What a job records about its sent turn; a new message starts without them."""


def resend(job: PromptJob) -> PromptJob:
    """The same prompt again, as a new message (for a retry)."""
    kept = {key: value for key, value in job.items() if key not in _TURN_FIELDS}
    return PromptJob(
        **{**kept, "message_id": OpenCodeClient.new_message_id(), "sent": False, "outcome": None}  # type: ignore[typeddict-item]
    )
