"""Read runs back from a repository's checkpoint database (``runs``, ``status``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig

from langgraph_opencode.checkpoints import (
    checkpoint_path,
    is_shared_store,
    open_checkpointer,
    run_ids,
)
from langgraph_opencode.core.jobs import task_of
from langgraph_opencode.core.state import TERMINAL_STATUSES
from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.graph.builder import compile_graph
from langgraph_opencode.report import RunReport, RunStatus, TaskReport
from langgraph_opencode.run_host import run_holder, unrecorded
from langgraph_opencode.tools.git import Repo

__all__ = ["RunInfo", "RunState", "list_runs", "load_run", "open_graph"]

RunState = Literal["finished", "paused", "running", "stopped"]
"""``running``: an orchestrator holds the run's lock now; ``stopped``: none does
and the run has not finished (a crash, Ctrl-C, or a kill: ``resume`` continues it)."""


@dataclass
class RunInfo:
    """What the checkpoints say about one run."""

    run_id: str
    state: RunState
    repo: str = ""
    holder: dict[str, Any] | None = None
    """The orchestrator that drives the run now (pid, host, since), if one does."""
    objective: str = ""
    started_at: float | None = None
    report: RunReport | None = None
    interrupt: dict[str, Any] | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The prompts out, by owner (see ``core.jobs``)."""
    planner_session: str = ""
    integration_branch: str = ""
    base_commit: str = ""
    cost: float = 0.0
    error: str = ""
    titles: dict[str, str] = field(default_factory=dict)
    """Task titles from the plan."""

    def unfinished_report(self) -> RunReport:
        """The report of a run that has not finished: its tasks as checkpointed so far."""
        tasks = [
            TaskReport.from_record(task_id, record, title=self.titles.get(task_id, ""))
            for task_id, record in self.tasks.items()
        ]
        status: RunStatus = (
            "interrupted"
            if self.state == "paused"
            else ("running" if self.state == "running" else "stopped")
        )
        return RunReport(
            run_id=self.run_id,
            objective=self.objective,
            repo=self.repo,
            status=status,
            integration_branch=self.integration_branch,
            base_commit=self.base_commit,
            tasks=tasks,
            tokens=sum(t.tokens for t in tasks),
            cost=round(self.cost, 6),
            error=self.error,
            interrupt=self.interrupt,
        )

    def sessions(self) -> list[tuple[str, str, str]]:
        """``(session id, directory, server)`` of the sessions that may still be running.

        The server is empty for runs from before several servers (the primary one).
        """
        found = []
        for owner, job in self.jobs.items():
            task_id = task_of(owner)
            if task_id is None or self.tasks.get(task_id, {}).get("status") in TERMINAL_STATUSES:
                continue
            if job.get("sent") and not job.get("outcome"):
                found.append(
                    (str(job["session_id"]), str(job["directory"]), str(job.get("server") or ""))
                )
        return found


@contextlib.asynccontextmanager
async def open_graph(repo: Repo) -> AsyncIterator[Any | None]:
    """The compiled graph over the run's checkpoint store; ``None`` if there is none.

    The store is ``$LANGGRAPH_OPENCODE_CHECKPOINTS`` if set, else the repository's file.
    """
    if not is_shared_store(None) and not checkpoint_path(repo).exists():
        yield None
        return
    async with open_checkpointer(repo) as saver:
        yield compile_graph(saver)


async def _info(graph: Any, repo: Repo, run_id: str) -> RunInfo | None:
    config: RunnableConfig = {"configurable": {"thread_id": run_id}}
    snapshot = await graph.aget_state(config)
    values: dict[str, Any] = snapshot.values or {}
    if not values:
        return None
    interrupts = [i.value for task in snapshot.tasks for i in task.interrupts]
    report = values.get("report")
    try:
        run_dir = repo.run(run_id).run_dir
    except ConfigurationError:
        return None  # a thread of another graph in a shared store, not a run
    held = await asyncio.to_thread(run_holder, run_dir)
    state: RunState
    if held is not None:
        state = "running"
    elif interrupts:
        state = "paused"
    elif report and not snapshot.next:
        state = "finished"
    else:
        state = "stopped"
    plan = values.get("plan") or {}
    return RunInfo(
        run_id=run_id,
        state=state,
        holder=held,
        repo=str(values.get("repo", "")),
        objective=str(values.get("objective", "")),
        started_at=values.get("started_at"),
        report=RunReport.model_validate(report) if report else None,
        interrupt=interrupts[0] if interrupts else None,
        tasks=dict(values.get("tasks") or {}),
        jobs=dict(values.get("jobs") or {}),
        planner_session=str(values.get("planner_session", "")),
        integration_branch=str(values.get("integration_branch", "")),
        base_commit=str(values.get("base_commit", "")),
        cost=float(values.get("cost") or 0.0),
        error=str(values.get("error", "")),
        titles={str(t.get("id")): str(t.get("title", "")) for t in plan.get("tasks") or []},
    )


async def list_runs(repo: Repo) -> list[RunInfo]:
    """Every run checkpointed in the repository, newest first."""
    async with open_graph(repo) as graph:
        if graph is None:
            return []
        shared = is_shared_store(None)  # a database may hold other repositories' runs too
        runs = [
            info
            for t in await run_ids(graph.checkpointer)
            if (info := await _info(graph, repo, t)) is not None
            and (not shared or info.repo == str(repo.root))
        ]
    return sorted(runs, key=lambda r: (r.started_at or 0.0, r.run_id), reverse=True)


async def load_run(repo: Repo, run_id: str | None) -> RunInfo:
    """One run (the latest one without ``run_id``).

    Raises:
        ConfigurationError: No such run is checkpointed in the repository.
    """
    if run_id is None:
        runs = await list_runs(repo)
        if not runs:
            raise ConfigurationError(f"no runs are recorded for {repo.root}")
        return runs[0]
    async with open_graph(repo) as graph:
        info = await _info(graph, repo, run_id) if graph is not None else None
    if info is None:
        existed = await asyncio.to_thread(repo.run(run_id).run_dir.exists)
        raise unrecorded(run_id, repo.root, existed=existed)
    return info
