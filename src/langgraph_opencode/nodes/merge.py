"""Merge approved work into the integration branch, one task at a time.

A task is ``merged`` only once its merge succeeded. On a conflict the
integration branch is merged into the task's own branch, leaving the conflict
markers in its worktree, and the worker is asked to resolve them (a rework
round); the task branch and its commits are never lost.
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.core.jobs import no_jobs, part, task_owner, worker_job
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob, TaskRecord
from langgraph_opencode.errors import GitError, MergeConflict
from langgraph_opencode.nodes._common import event, failure, git_run, plan_of, settings_of
from langgraph_opencode.plan import Task
from langgraph_opencode.tools.git import GitOperations, RefreshResult

__all__ = ["conflict_rework", "merge"]


async def _send_back(
    task: Task,
    record: TaskRecord,
    conflict: MergeConflict,
    run: GitOperations,
    settings: RunSettings,
    runtime: Runtime[RunSettings],
) -> tuple[TaskRecord, PromptJob | None, dict[str, Any]]:
    """A rework round that resolves the conflict (with its prompt), or the task's failure."""
    paths = list(conflict.paths)
    rounds = int(record.get("round") or 0)
    if rounds >= settings.max_rework_rounds:
        reason = f"merge conflict in {', '.join(paths)} after {rounds} rework round(s)"
        failed, note = failure(task.id, reason, runtime)
        return failed, None, note
    refresh = await run.refresh(task.id)
    return conflict_rework(
        task,
        record,
        refresh,
        run,
        settings,
        runtime,
        paths=paths,
        why=f"conflicts in {', '.join(paths)}",
    )


def conflict_rework(
    task: Task,
    record: TaskRecord,
    refresh: RefreshResult,
    run: GitOperations,
    settings: RunSettings,
    runtime: Runtime[RunSettings],
    *,
    paths: list[str],
    why: str,
) -> tuple[TaskRecord, PromptJob, dict[str, Any]]:
    """The rework round in which the worker resolves what ``refresh`` left in its worktree.

    Args:
        task: The task.
        record: Its record.
        refresh: The integration branch merged into the task branch.
        run: The run's git side.
        settings: The run's settings.
        runtime: The node's runtime (for the event).
        paths: The paths the merge found conflicting (named when the refresh reports none).
        why: The event's message, after the task id.
    """
    conflicts = list(refresh.conflicts) or paths
    rework = TaskRecord(
        id=task.id,
        status="working",
        round=int(record.get("round") or 0) + 1,
        refreshing=not refresh.clean,
        feedback=f"merge conflict in {', '.join(paths or conflicts)}",
    )
    job = worker_job(record, settings, [part("conflict", paths=conflicts)])
    return rework, job, event("conflict", f"{task.id}: {why}", runtime, task=task.id)


async def merge(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Merge every approved task, in plan order, or send it back on a conflict."""
    tasks = state.get("tasks") or {}
    plan = plan_of(state)
    approved = [t for t in plan.tasks if tasks.get(t.id, {}).get("status") == "approved"]
    if not approved:
        return {}
    settings = settings_of(runtime)
    run = await git_run(state)
    updates: dict[str, TaskRecord] = {}
    jobs: dict[str, PromptJob | None] = {}
    events: list[dict[str, Any]] = []
    for task in approved:
        record = tasks[task.id]
        try:
            # An approved task has no refresh merge pending, unless the process
            # died between starting one (conflict rework) and checkpointing it:
            # undo it, so that the merge below meets the conflict again and
            # sends the task back as the lost step would have.
            await run.abort_refresh(task.id)
            try:
                result = await run.merge(task.id, message=f"Merge task {task.id}: {task.title}")
            except MergeConflict as conflict:
                updates[task.id], job, note = await _send_back(
                    task, record, conflict, run, settings, runtime
                )
                if job is not None:
                    jobs[task_owner(task.id)] = job
                events.append(note)
                continue
        except GitError as exc:
            # This task cannot be merged as it stands; the others still can.
            reason = f"could not merge: {exc}"
            updates[task.id], note = failure(task.id, reason, runtime)
            events.append(note)
            continue
        updates[task.id] = TaskRecord(
            id=task.id, status="merged", merge_sha=result.sha, finished_at=time.time()
        )
        events.append(
            event(
                "merged", f"{task.id} merged into {run.integration_branch}", runtime, task=task.id
            )
        )
    failed = [t for t, r in updates.items() if r.get("status") == "failed"]
    return {"tasks": updates, "jobs": {**no_jobs(*failed), **jobs}, "events": events}
