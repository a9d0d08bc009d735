"""End the run: write its report, and tidy the worktrees of merged tasks.

Worktrees and branches of tasks that were not merged are kept, and named in
the report, so no work is ever deleted.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.errors import GitError
from langgraph_opencode.graph.settings import RunSettings
from langgraph_opencode.graph.state import OrchestratorState
from langgraph_opencode.nodes._common import event, git_run
from langgraph_opencode.plan import Plan
from langgraph_opencode.report import RunReport, TaskReport, write_report

__all__ = ["finalize"]


async def finalize(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Build the run's report."""
    records = state.get("tasks") or {}
    plan = Plan.model_validate(state["plan"]) if state.get("plan") else None
    titles = {t.id: t.title for t in plan.tasks} if plan else {}
    now = time.time()
    tasks = [
        TaskReport(
            id=task_id,
            title=titles.get(task_id, ""),
            status=record.get("status", "pending"),
            rounds=int(record.get("round") or 0),
            reason=record.get("reason", ""),
            branch=record.get("branch", ""),
            worktree=record.get("worktree", ""),
            sessions=list(record.get("sessions") or []),
            server=record.get("server", ""),
            moves=int(record.get("moves") or 0),
            commits=list(record.get("commits") or []),
            merge_sha=record.get("merge_sha", ""),
            checks=list(record.get("checks") or []),
            verdict=record.get("verdict"),
            tokens=int(record.get("tokens") or 0),
            cost=float(record.get("cost") or 0.0),
            duration_s=round((record.get("finished_at") or now) - record["started_at"], 3)
            if record.get("started_at")
            else 0.0,
        )
        for task_id, record in records.items()
    ]
    left_behind: list[str] = []
    head = ""
    run = None
    if state.get("run_id") and state.get("repo"):
        run = await git_run(state)
        for task in tasks:
            if task.status == "merged" and task.worktree:
                try:
                    await run.remove_task_worktree(task.id)
                    task.worktree = ""
                except GitError:
                    pass  # kept: it is listed below
        with contextlib.suppress(GitError):  # kept: the inventory below lists it
            await run.remove_integration_worktree()
        inventory = await run.inventory()
        left_behind = [
            f"branch {b.name} ({b.unmerged_commits} unmerged commit(s))"
            for b in inventory.branches
            if not b.merged
        ] + [f"worktree {w.path} ({w.branch})" for w in inventory.worktrees]
        head = await run.repo.resolve(run.integration_branch) or ""
    merged = sum(1 for t in tasks if t.status == "merged")
    status = "completed" if tasks and merged == len(tasks) else ("partial" if merged else "failed")
    branch = state.get("integration_branch", "")
    report = RunReport(
        run_id=state.get("run_id", ""),
        objective=state.get("objective", ""),
        repo=state.get("repo", ""),
        status=status,
        integration_branch=branch,
        base_commit=state.get("base_commit", ""),
        head_commit=head,
        tasks=tasks,
        tokens=sum(t.tokens for t in tasks),
        cost=round(float(state.get("cost") or 0.0), 6),
        duration_s=round(now - (state.get("started_at") or now), 3),
        error=state.get("error", ""),
        take_it=f"git merge {branch}" if merged else "",
        left_behind=left_behind,
    )
    if run is not None:
        report.files = [str(p) for p in write_report(report, run.run_dir)]
    return {
        "report": report.model_dump(mode="json"),
        "events": [event("finished", f"run {status}: {merged}/{len(tasks)} tasks merged", runtime)],
    }
