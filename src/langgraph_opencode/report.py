"""The report a run ends with: what happened to each task, and where the work is."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["RunReport", "TaskReport", "write_report"]

RunStatus = Literal["completed", "partial", "failed", "interrupted", "running", "stopped"]


class TaskReport(BaseModel):
    """One task's fate."""

    id: str
    title: str
    status: str
    rounds: int = 0
    reason: str = ""
    branch: str = ""
    worktree: str = ""
    sessions: list[str] = Field(default_factory=list)
    server: str = ""
    """The OpenCode server its (last) worker session ran on."""
    moves: int = 0
    """How often it moved to another server because its server went away."""
    commits: list[str] = Field(default_factory=list)
    merge_sha: str = ""
    checks: list[dict[str, Any]] = Field(default_factory=list)
    verdict: dict[str, Any] | None = None
    tokens: int = 0
    cost: float = 0.0
    duration_s: float = 0.0
    undone: list[str] = Field(default_factory=list)
    """Changes to the repository's shared git files (``.git/config``, hooks) found
    after its turns and undone."""

    @classmethod
    def from_record(
        cls, task_id: str, record: Mapping[str, Any], *, title: str = "", now: float | None = None
    ) -> TaskReport:
        """The report of a task from its checkpointed record (a ``TaskRecord``)."""
        started, finished = record.get("started_at"), record.get("finished_at")
        end = finished or (time.time() if now is None else now)
        return cls(
            id=task_id,
            title=title,
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
            duration_s=round(end - started, 3) if started else 0.0,
            undone=list(record.get("undone") or []),
        )


class RunReport(BaseModel):
    """What a run did. JSON-serialisable (``model_dump_json()``).

    Attributes:
        status: How a finished run ended: ``completed`` (every task merged),
            ``partial`` (some failed or were blocked), ``failed`` (no plan, or
            nothing merged). A run that has not finished: ``interrupted``
            (paused for a person: see ``interrupt``), ``running`` (a process
            drives it now), or ``stopped`` (its process ended before the run
            did: a crash, a kill, Ctrl-C; ``resume`` continues it). Reports
            of unfinished runs (``status --json``) list the tasks as
            checkpointed so far.
        integration_branch: The branch holding the merged work.
        take_it: The command that brings the work into the user's branch.
        left_behind: Branches and worktrees of unmerged tasks, kept on purpose.
        integration_checks: The merged tasks' checks run again on the
            integration branch after the merges (empty when not verified).
    """

    run_id: str
    objective: str
    repo: str
    status: RunStatus
    integration_branch: str = ""
    base_commit: str = ""
    head_commit: str = ""
    tasks: list[TaskReport] = Field(default_factory=list)
    tokens: int = 0
    cost: float = 0.0
    duration_s: float = 0.0
    error: str = ""
    take_it: str = ""
    left_behind: list[str] = Field(default_factory=list)
    integration_checks: list[dict[str, Any]] = Field(default_factory=list)
    interrupt: dict[str, Any] | None = None
    """With status ``interrupted``: what the run waits for (plan approval, permissions)."""
    files: list[str] = Field(default_factory=list)
    """Where the report was written (``report.json`` and ``report.md`` in the run's directory)."""

    @property
    def integration_failures(self) -> list[dict[str, Any]]:
        """The checks that fail on the integration branch (its merged work together)."""
        return [c for c in self.integration_checks if not c.get("passed")]

    def counts(self) -> dict[str, int]:
        """How many tasks ended in each status."""
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    def to_markdown(self) -> str:
        """A short human summary."""
        lines = [
            f"# Run `{self.run_id}`: {self.status}",
            "",
            f"> {self.objective[:500]}",
            "",
        ]
        if self.error:
            lines += [f"**Error:** {self.error}", ""]
        if self.tasks:
            # The server column only when the run used several servers.
            several = len({t.server for t in self.tasks if t.server}) > 1
            lines += [
                "| task | status | rounds | checks | tokens | cost | time |"
                + (" server |" if several else ""),
                "|---|---|---|---|---|---|---|" + ("---|" if several else ""),
            ]
            for t in self.tasks:
                passed = sum(1 for c in t.checks if c.get("passed"))
                lines.append(
                    f"| `{t.id}` {t.title} | {t.status} | {t.rounds} | {passed}/{len(t.checks)} "
                    f"| {t.tokens} | ${t.cost:.4f} | {t.duration_s:.1f}s |"
                    + (f" {t.server} |" if several else "")
                )
            lines.append("")
            for t in self.tasks:
                if t.reason:
                    lines.append(f"- `{t.id}`: {t.reason}")
                lines += [f"- `{t.id}`: undone: {line}" for line in t.undone]
            lines.append("")
        lines.append(f"Total: {self.tokens} tokens, ${self.cost:.4f}, {self.duration_s:.1f}s.")
        if self.integration_checks:
            failing = self.integration_failures
            passed = len(self.integration_checks) - len(failing)
            lines += [
                "",
                f"On the integration branch, {passed}/{len(self.integration_checks)} "
                "checks pass with all the merged work together.",
            ]
            for check in failing:
                output = str(check.get("output", "")).strip()[-400:]
                lines.append(f"- failing: `{check.get('command')}`: {output}")
        if self.integration_branch:
            lines += [
                "",
                f"The merged work is on `{self.integration_branch}`. Take it with:",
                "",
                f"    {self.take_it}",
            ]
        if self.files:
            lines += ["", "Report: " + ", ".join(self.files)]
        if self.left_behind:
            lines += [
                "",
                "Kept for inspection (not merged):",
                *[f"- {item}" for item in self.left_behind],
            ]
        return "\n".join(lines) + "\n"


def write_report(report: RunReport, run_dir: Path) -> list[Path]:
    """Write ``report.json`` and ``report.md`` into ``run_dir``; return their paths."""
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = run_dir / "report.json", run_dir / "report.md"
    files = [str(json_path), str(md_path)]
    json_path.write_text(
        report.model_copy(update={"files": files}).model_dump_json(indent=2) + "\n"
    )
    md_path.write_text(report.to_markdown())
    return [json_path, md_path]
