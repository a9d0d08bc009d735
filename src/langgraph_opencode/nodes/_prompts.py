"""Prompt texts, rendered when a prompt is sent, from its templates and the state.

A recorded prompt (``PromptJob.prompt``) holds only its templates' names and
the values the state does not hold (a rework's feedback, a resume's reason).
Everything else is read when it is sent: the plan's other tasks and which are
finished, the task's check results, its diff from git, the repository's
files. So the checkpointed state holds no prompt text, and a prompt's size
does not grow with the plan.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from langgraph_opencode.core.jobs import task_of
from langgraph_opencode.core.state import TERMINAL_STATUSES, OrchestratorState, PromptJob
from langgraph_opencode.nodes._common import git_run, plan_of
from langgraph_opencode.plan import Plan, Task, plan_schema
from langgraph_opencode.prompts import bullet_list, code_block, render
from langgraph_opencode.review import verdict_schema

__all__ = ["answer_schema", "check_report", "prompt_text", "worker_prompt"]

_LISTED_FILES = 300
"""At most this many of the repository's files are listed to the planner."""

_JOINER = "\n\n---\n\n"


def answer_schema(job: PromptJob) -> dict[str, Any] | None:
    """The JSON schema the answer to ``job`` must follow, made now (the state names it)."""
    schema = job["schema"]
    if schema == "plan":
        return plan_schema()
    if schema == "verdict":
        return verdict_schema()
    return schema  # whole (a run from before schemas were named), or none


def worker_prompt(plan: Plan, task: Task, *, finished: Collection[str] = ()) -> str:
    """A task's first worker prompt; it lists the other tasks not ``finished``, with their files."""
    others = [
        f"`{other.id}`: {other.title}"
        + (f" (files: {', '.join(other.files)})" if other.files else "")
        for other in plan.tasks
        if other.id != task.id and other.id not in finished
    ]
    return render(
        "worker",
        objective=plan.objective,
        task_id=task.id,
        title=task.title,
        instructions=task.instructions,
        files=bullet_list(task.files),
        checks=bullet_list([f"`{c}`" for c in task.checks]),
        other_tasks=bullet_list(others),
    )


def check_report(checks: list[dict[str, Any]], *, failing_only: bool) -> str:
    """Check results as a prompt shows them: command, status, output's tail."""
    shown = [c for c in checks if not (failing_only and c["passed"])]
    if not shown:
        return "(all checks passed)" if checks else "(no acceptance checks)"
    parts = []
    for check in shown:
        status = "timed out" if check["timed_out"] else f"exit {check['exit_code']}"
        parts.append(
            f"`{check['command']}` ({status})\n\n" + code_block(check["output"] or "(no output)")
        )
    return "\n\n".join(parts)


async def repo_summary(state: OrchestratorState) -> str:
    """The files tracked at the run's start commit, as the planner is shown them."""
    run = await git_run(state)
    commit = state.get("base_commit") or run.integration_branch
    files = await run.tracked_files(commit)
    listed = files[:_LISTED_FILES]
    more = f"\n… and {len(files) - len(listed)} more files" if len(files) > len(listed) else ""
    return (
        ("Files tracked at HEAD:\n" + bullet_list(listed) + more)
        if files
        else "(an empty repository)"
    )


async def _render(
    state: OrchestratorState,
    task_id: str | None,
    template: str,
    args: dict[str, Any],
    diff_chars: int,
) -> str:
    if template == "planner":
        return render(
            "planner", objective=state["objective"], repo_summary=await repo_summary(state)
        )
    if template == "planner_retry":
        return render(
            "planner_retry",
            problems=bullet_list(args["problems"]),
            previous_plan=code_block(json.dumps(args.get("previous"), indent=2), "json"),
        )
    if task_id is None:
        raise ValueError(f"the template {template!r} is about a task; the planner has none")
    plan = plan_of(state)
    task = plan.task(task_id)
    record = (state.get("tasks") or {}).get(task_id) or {}
    checks = list(record.get("checks") or [])
    if template == "worker":
        tasks = state.get("tasks") or {}
        finished = {t for t, r in tasks.items() if r.get("status") in TERMINAL_STATUSES}
        return worker_prompt(plan, task, finished=finished)
    if template == "resume":
        return render("resume", task_id=task.id, title=task.title, reason=args["reason"])
    if template == "rework":
        return render(
            "rework",
            task_id=task.id,
            title=task.title,
            feedback=args.get("feedback") or "(none)",
            findings=bullet_list(args.get("findings") or []),
            check_output=check_report(checks, failing_only=True),
        )
    if template == "rework_checks":
        return render(
            "rework_checks",
            task_id=task.id,
            title=task.title,
            failing=bullet_list(f"`{c['command']}`" for c in checks if not c["passed"]),
            check_output=check_report(checks, failing_only=True),
        )
    if template == "conflict":
        run = await git_run(state)
        return render(
            "conflict",
            task_id=task.id,
            title=task.title,
            integration_branch=run.integration_branch,
            paths=bullet_list(args["paths"]),
            checks=bullet_list([f"`{c}`" for c in task.checks]),
        )
    if template == "reviewer":
        diff = await (await git_run(state)).diff(task.id, max_chars=diff_chars)
        shown = code_block(diff.text + ("\n… (diff truncated)" if diff.truncated else ""), "diff")
        return render(
            "reviewer",
            objective=plan.objective,
            task_id=task.id,
            title=task.title,
            instructions=task.instructions,
            files=bullet_list(task.files),
            check_results=check_report(checks, failing_only=False),
            diff=shown if diff.text else "(no changes)",
        )
    if template == "earlier":
        # A moved task's last request (rework, conflicts), rendered as it was.
        earlier = await _render(state, task_id, args["template"], args["args"], diff_chars)
        return "The last request about this task was:\n\n" + earlier
    raise ValueError(f"no prompt template {template!r}")


async def prompt_text(
    state: OrchestratorState, owner: str, job: PromptJob, *, diff_chars: int
) -> str:
    """The text of ``job`` (owned by ``owner``) as it is sent now."""
    task_id = task_of(owner)
    texts = [
        await _render(state, task_id, part["template"], part["args"], diff_chars)
        for part in job["prompt"]
    ]
    return _JOINER.join(texts)
