"""End the run: check the merged work together, write the report, tidy up.

Each task was checked on its own branch; merged together, one task's work can
break another's. So the checks of every merged task run again on the
integration branch (``verify_integration``), and the report says how that went.
Worktrees and branches of tasks that were not merged are kept, and named in
the report, so no work is ever deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState
from langgraph_opencode.core.supervisor import close_supervisor
from langgraph_opencode.errors import GitError
from langgraph_opencode.nodes._common import (
    check_record,
    event,
    git_run,
    run_checks,
    settings_of,
)
from langgraph_opencode.plan import Plan
from langgraph_opencode.report import RunReport, TaskReport, write_report
from langgraph_opencode.tools.git import GitOperations

__all__ = ["finalize"]


async def _verify(
    run: GitOperations, plan: Plan | None, merged: set[str], runtime: Runtime[RunSettings]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the merged tasks' checks on the integration branch: results and events."""
    settings = settings_of(runtime)
    if plan is None or not merged or not settings.verify_integration:
        return [], []
    commands = list(dict.fromkeys(c for t in plan.tasks if t.id in merged for c in t.checks))
    if not commands:
        return [], []
    checking = check_record(run, "integration")
    # A dead orchestrator's checks still running here are ended; the checkout
    # puts the worktree back to the branch's head.
    await checking.end_left()
    try:
        async with run.integration_checkout() as worktree:
            checks = await run_checks(commands, worktree, settings, await checking.begin())
        await checking.end()
    except GitError as exc:
        message = f"could not check out {run.integration_branch} to verify it: {exc}"
        return [{"command": "git worktree", "passed": False, "output": str(exc)}], [
            event("verified", message, runtime)
        ]
    failing = [c["command"] for c in checks if not c["passed"]]
    passed = len(checks) - len(failing)
    message = f"{run.integration_branch}: {passed}/{len(checks)} checks pass on the merged work"
    if failing:
        message += "; failing: " + ", ".join(failing)
    return checks, [event("verified", message, runtime)]


async def finalize(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Build the run's report."""
    records = state.get("tasks") or {}
    plan = Plan.model_validate(state["plan"]) if state.get("plan") else None
    titles = {t.id: t.title for t in plan.tasks} if plan else {}
    now = time.time()
    tasks = [
        TaskReport.from_record(task_id, record, title=titles.get(task_id, ""), now=now)
        for task_id, record in records.items()
    ]
    left_behind: list[str] = []
    head = ""
    run = None
    integration_checks: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    if state.get("run_id"):
        await close_supervisor(state["run_id"])  # nothing is out any more
    if state.get("run_id") and state.get("repo"):
        run = await git_run(state)
        merged_ids = {t.id for t in tasks if t.status == "merged"}
        integration_checks, events = await _verify(run, plan, merged_ids, runtime)
        for task in tasks:
            if task.status == "merged" and task.worktree:
                try:
                    await run.remove_task_worktree(task.id)
                    task.worktree = ""
                except GitError:
                    pass  # kept: it is listed below
        with contextlib.suppress(GitError):  # kept: the inventory below lists it
            await run.remove_integration_worktree()
        with contextlib.suppress(GitError):  # kept: the inventory below lists it
            await run.remove_planner_checkout()
        inventory = await run.inventory()
        left_behind = [
            f"branch {b.name} ({b.unmerged_commits} unmerged commit(s))"
            for b in inventory.branches
            if not b.merged
        ] + [f"worktree {w.path} ({w.branch})" for w in inventory.worktrees]
        head = await run.integration_head() or ""
    merged = sum(1 for t in tasks if t.status == "merged")
    failing = sum(1 for c in integration_checks if not c["passed"])
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
        integration_checks=integration_checks,
    )
    if run is not None:
        report.files = [str(p) for p in await asyncio.to_thread(write_report, report, run.run_dir)]
    summary = f"run {status}: {merged}/{len(tasks)} tasks merged"
    if failing:
        summary += f"; {failing} check(s) fail on {branch}"
    return {
        "report": report.model_dump(mode="json"),
        "events": [*events, event("finished", summary, runtime)],
    }
