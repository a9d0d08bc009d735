"""Small helpers shared by the nodes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.core.notes import note
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, TaskRecord
from langgraph_opencode.plan import Plan
from langgraph_opencode.tools.checks import CheckRecord, CheckResult, run_check
from langgraph_opencode.tools.git import GitOperations, Repo

__all__ = [
    "check_record",
    "check_summary",
    "event",
    "failure",
    "git_run",
    "open_git_run",
    "plan_of",
    "run_checks",
    "server_of",
    "settings_of",
    "task_update",
    "with_plan",
]

CHECK_TAIL_CHARS = 2_000


def with_plan(state: OrchestratorState, plan: dict[str, Any] | None) -> dict[str, Any]:
    """The update that makes ``plan`` the run's plan, also in ``own_input`` (see the state)."""
    return {"plan": plan, "own_input": {**(state.get("own_input") or {}), "plan": plan}}


def settings_of(runtime: Runtime[RunSettings]) -> RunSettings:
    """The run's settings (defaults when none were given)."""
    context = runtime.context
    if context is None:
        return RunSettings()
    if isinstance(context, dict):  # pragma: no cover - LangGraph converts dicts
        return RunSettings(**context)
    return context


def plan_of(state: OrchestratorState) -> Plan:
    """The accepted plan."""
    return Plan.model_validate(state["plan"])


_repos: dict[str, Repo] = {}
"""The repositories opened by this process, by the path the state records (checked once:
``Repo.open`` runs three git commands, and every step needs the run's git side)."""


async def git_run(state: OrchestratorState) -> GitOperations:
    """The git side of the run (its branches and worktrees)."""
    return await open_git_run(state["repo"], state["run_id"])


async def open_git_run(repo: str, run_id: str) -> GitOperations:
    """The git side of run ``run_id`` of the repository at ``repo``, checked.

    Raises:
        ConfigurationError: ``repo`` is not a git working tree with a commit,
            or ``run_id`` is not a usable id.
    """
    opened = _repos.get(repo)
    if opened is None:
        opened = _repos[repo] = await Repo.open(repo)
    return opened.run(run_id)


def server_of(item: Mapping[str, Any], settings: RunSettings) -> str:
    """The server of a job, a task's worker or a permission request (older runs: the primary)."""
    return str(item.get("server") or next(iter(settings.servers()), ""))


def event(
    kind: str, message: str, runtime: Runtime[RunSettings] | None = None, **data: Any
) -> dict[str, Any]:
    """A notable event for the run's log; also streamed as a custom event."""
    record = note(kind, message, **data)
    if runtime is not None:
        runtime.stream_writer({"event": record})
    return record


def check_summary(result: CheckResult) -> dict[str, Any]:
    """A check's result as kept in the state: its output's tail only."""
    output = result.output
    if len(output) > CHECK_TAIL_CHARS:
        output = "…" + output[-CHECK_TAIL_CHARS:]
    return {
        "command": result.command,
        "exit_code": result.exit_code,
        "passed": result.passed,
        "timed_out": result.timed_out,
        "duration_s": round(result.duration_s, 3),
        "output": output,
    }


def check_record(run: GitOperations, scope: str) -> CheckRecord:
    """The note of the checks of ``scope`` (a task id, or ``integration``) that run now."""
    return CheckRecord(run.run_dir / "checks" / f"{scope}.json")


async def run_checks(
    commands: Iterable[str], cwd: Path, settings: RunSettings, env: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Run acceptance checks one after another in ``cwd``; their summaries as kept in state.

    ``env``: what [`CheckRecord.begin`][langgraph_opencode.tools.checks.CheckRecord.begin]
    returned, so that the checks can be ended if this process dies.
    """
    return [
        check_summary(
            await run_check(
                command,
                cwd,
                timeout=settings.check_timeout,
                env=env,
                withhold=settings.password_env_names(),
            )
        )
        for command in commands
    ]


def failure(
    task_id: str, reason: str, runtime: Runtime[RunSettings] | None
) -> tuple[TaskRecord, dict[str, Any]]:
    """A task's failure: its record update and the event saying why.

    Its prompt, if one is out, is dropped with ``core.jobs.no_jobs``.
    """
    record = TaskRecord(id=task_id, status="failed", reason=reason, finished_at=time.time())
    return record, event("failed", f"{task_id}: {reason}", runtime, task=task_id)


def task_update(task_id: str, **fields: Any) -> dict[str, TaskRecord]:
    """A ``tasks`` update for one task."""
    return {task_id: TaskRecord(id=task_id, **fields)}  # type: ignore[typeddict-item]
