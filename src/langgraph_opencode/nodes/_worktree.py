"""A worker's worktree as the worker left it, put in order before its work is judged.

Workers use the real ``git`` in their worktrees. Two things they may do would
lose the task if left alone: switch the worktree to another branch (``git
checkout -b x``, a detached ``git checkout <sha>``), and undo the refresh merge
they were asked to finish (``git merge --abort``). Here the first is put back
(the task branch takes the commits made elsewhere, and is checked out again),
and the second is started again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import PromptJob, TaskRecord
from langgraph_opencode.nodes._common import event, failure
from langgraph_opencode.nodes.merge import conflict_rework
from langgraph_opencode.plan import Task
from langgraph_opencode.tools.git import GitOperations, RefreshResult

__all__ = ["reattach", "restart_refresh"]

_DONE = {
    "fast_forward": "moved {branch} up to its commits",
    "merged": "merged its commits into {branch}",
    "switched": "it held nothing {branch} lacks",
}


async def reattach(
    run: GitOperations, task: Task, record: TaskRecord, runtime: Runtime[RunSettings]
) -> list[dict[str, Any]]:
    """Put the task's worktree back on its branch if the worker switched it elsewhere.

    Returns the event saying what was done (none when nothing was to do).
    """
    moved = await run.reattach(task.id, Path(record["worktree"]))
    if moved is None:
        return []
    place = f"branch {moved.left_on}" if moved.left_on else "a detached HEAD"
    done = _DONE[moved.how].format(branch=moved.branch)
    kept = f"; {moved.left_on} is left as it is" if moved.left_on else ""
    message = f"{task.id}: its worktree was on {place}: {done}, and checked it out again{kept}"
    return [event("reattached", message, runtime, task=task.id, how=moved.how)]


async def restart_refresh(
    run: GitOperations,
    task: Task,
    record: TaskRecord,
    settings: RunSettings,
    runtime: Runtime[RunSettings],
) -> tuple[TaskRecord | RefreshResult, list[dict[str, Any]], PromptJob | None]:
    """Start again the refresh merge the worker undid, keeping what it changed since.

    Returns the refresh when it is clean now, or else the conflict rework
    round (the task's failure when it has no round left), with the events and
    the rework's prompt.
    """
    rounds = int(record.get("round") or 0)
    undone = f"the merge of {run.integration_branch} into its branch was undone"
    if rounds >= settings.max_rework_rounds:
        reason = f"{undone} before its conflicts were resolved, after {rounds} rework round(s)"
        failed, note = failure(task.id, reason, runtime)
        return failed, [note], None
    # A refresh needs a clean worktree: what the worker changed meanwhile is committed.
    await run.commit_all(task.id, f"{task.id}: {task.title}\n\nWork after the refresh was undone.")
    refresh = await run.refresh(task.id)
    if refresh.clean:
        return refresh, [], None
    conflicts = ", ".join(refresh.conflicts)
    rework, job, note = conflict_rework(
        task,
        record,
        refresh,
        run,
        settings,
        runtime,
        paths=list(refresh.conflicts),
        why=f"{undone}; started again: conflicts in {conflicts}",
    )
    return rework, [note], job
