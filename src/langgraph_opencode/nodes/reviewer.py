"""Judge finished work: commit it, run its checks, ask the reviewer, decide.

For each task whose prompt has ended:

* a worker's run that ended well is committed by the orchestrator itself, its
  acceptance checks are run here (never taking the agent's word for it), and
  a read-only reviewer session is asked for a structured verdict on the diff
  and the check results;
* a worker's run that died (stalled, timed out, the server restarted) is
  prompted to carry on, a bounded number of times;
* a prompt whose server went away is sent again in a new session on the
  least loaded server that answers (a worker gets its task again with a note
  to carry on from the worktree);
* a verdict that approves, with every check passing, makes the task
  ``approved`` (merging is the next node's job); anything else sends the task
  back to the same worker session as rework, up to ``max_rework_rounds``,
  after which the task fails with its reason. A rejection's rework quotes the
  verdict's feedback and findings; when the verdict approves (``approved`` is
  true) but checks fail, the rework names the failing checks and their output
  and quotes nothing of the approval.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from pydantic import ValidationError

from langgraph_opencode.core.jobs import (
    ended_jobs,
    new_job,
    no_jobs,
    part,
    resend,
    review_owner,
    task_of,
    task_owner,
    worker_job,
)
from langgraph_opencode.core.outcomes import RESTARTABLE_ABORTS, abort_of
from langgraph_opencode.core.services import pick_server
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, PromptJob, PromptPart, TaskRecord
from langgraph_opencode.errors import (
    EventStreamError,
    LangGraphOpenCodeError,
    MergeConflict,
    OpenCodeConnectionError,
    RefreshAborted,
)
from langgraph_opencode.nodes._common import (
    check_record,
    event,
    failure,
    git_run,
    plan_of,
    run_checks,
    server_of,
    settings_of,
)
from langgraph_opencode.nodes._worktree import reattach, restart_refresh
from langgraph_opencode.nodes.dispatcher import server_load
from langgraph_opencode.plan import Plan, Task
from langgraph_opencode.review import Verdict
from langgraph_opencode.tools.git import GitOperations, RefreshResult
from langgraph_opencode.tools.opencode.config import REVIEWER_AGENT

__all__ = ["review"]

_MAX_REVIEW_RETRIES = 2
_MAX_MOVES = 3
"""How often a task may move to another server (its server went away) before it fails."""
_RESTARTABLE = ("incomplete", "api_error")


def _failed(task_id: str, reason: str) -> TaskRecord:
    return failure(task_id, reason, None)[0]  # its event is noted by the caller


_EARLIER = frozenset({"rework", "rework_checks", "conflict", "resume", "earlier"})
"""Prompt parts that ask more than the task itself: a moved task's new session gets them."""


class _Reviewer:
    def __init__(
        self,
        state: OrchestratorState,
        settings: RunSettings,
        runtime: Runtime[RunSettings],
        run: GitOperations,
    ) -> None:
        self.state = state
        self.settings = settings
        self.runtime = runtime
        self.run = run
        self.plan: Plan = plan_of(state)
        self.events: list[dict[str, Any]] = []
        self.jobs: dict[str, PromptJob | None] = {}
        self.ended: dict[str, PromptJob] = {}
        """The ended prompt of each task processed, by task id."""
        """The prompts the processed tasks have out next, by owner."""
        self.load = server_load(state.get("tasks") or {})

    def note(self, kind: str, message: str, task_id: str) -> None:
        self.events.append(event(kind, f"{task_id}: {message}", self.runtime, task=task_id))

    def to_worker(self, task_id: str, record: TaskRecord, prompt: list[PromptPart]) -> None:
        """Record the next prompt to the task's worker session."""
        self.jobs[task_owner(task_id)] = worker_job(record, self.settings, prompt)

    async def new_session(self, record: TaskRecord, title: str) -> tuple[str, str]:
        """A new session in the task's worktree on the least loaded server: (id, server)."""
        services = await pick_server(self.settings, self.load)
        session_id = await services.tools.create_session.ainvoke(
            {
                "directory": record["worktree"],
                "title": title,
            }
        )
        return session_id, services.name

    async def move(self, task: Task, record: TaskRecord, why: str) -> TaskRecord:
        """Carry on with the task in a new session on another server (its server went away).

        The new session has none of the old one's history: its prompt is the
        task's worker prompt, the last request if it was about more than the
        task itself (rework, conflicts), and the resume note.
        """
        moves = int(record.get("moves") or 0)
        if moves >= _MAX_MOVES:
            self.note("failed", why, task.id)
            return _failed(task.id, f"its server went away {moves + 1} times: {why}")
        old = server_of(record, self.settings)
        self.load[old] -= 1
        session_id, url = await self.new_session(record, f"task {task.id}: {task.title}")
        self.load[url] += 1
        job = self.ended[task.id]
        parts = [part("worker")]
        if int(record.get("round") or 0) > 0:
            parts += [
                p
                if p["template"] == "earlier"
                else part("earlier", template=p["template"], args=p["args"])
                for p in job["prompt"]
                if p["template"] in _EARLIER
            ]
        parts.append(part("resume", reason=why))
        self.note("moved", f"{why}; carrying on in a new session on {url}", task.id)
        # Should the old server come back, its turn is aborted before it can
        # work beside the new one (see ``nodes._sessions``).
        left = [
            *(record.get("left_behind") or []),
            {"server": old, "session_id": job["session_id"], "directory": record["worktree"]},
        ]
        moved = TaskRecord(
            id=task.id,
            status="working",
            moves=moves + 1,
            left_behind=left,
            worker_session=session_id,
            server=url,
            sessions=[*record.get("sessions", []), session_id],
        )
        self.to_worker(task.id, {**record, **moved}, parts)
        return moved

    async def open_review(self, task: Task, record: TaskRecord) -> TaskRecord:
        """A new reviewer session for ``task`` with its prompt (rendered when it is sent)."""
        session_id, url = await self.new_session(
            record, f"review {task.id} round {record.get('round', 0)}"
        )
        self.jobs[review_owner(task.id)] = new_job(
            "reviewer",
            session_id=session_id,
            directory=record["worktree"],
            agent=REVIEWER_AGENT,
            model=self.settings.reviewer_model,
            prompt=[part("reviewer")],
            schema="verdict",
            server=url,
        )
        return TaskRecord(
            id=task.id,
            status="reviewing",
            reviewer_session=session_id,
            sessions=[*record.get("sessions", []), session_id],
        )

    async def process(self, task_id: str, record: TaskRecord) -> TaskRecord:
        job = self.ended[task_id]
        assert job["outcome"] is not None
        if job["role"] == "worker":
            # Before any git command of ours: a hook or filter the agent set up must not run.
            undone = await self.run.undo_shared_changes(task_id)
            result = await self.after_work(self.plan.task(task_id), record, job["outcome"])
            if undone is None:
                return result
            self.events.append(
                event(
                    "undone",
                    f"{task_id}: {undone.summary}",
                    self.runtime,
                    task=task_id,
                    files=list(undone.files),
                    config_keys=list(undone.config_keys),
                    kept=str(undone.kept),
                )
            )
            return TaskRecord(**result, undone=[*(record.get("undone") or []), undone.summary])
        return await self.after_review(self.plan.task(task_id), record, job["outcome"])

    async def after_work(
        self, task: Task, record: TaskRecord, outcome: dict[str, Any]
    ) -> TaskRecord:
        abort = abort_of(outcome)
        if outcome.get("server_lost"):
            return await self.move(task, record, str(outcome.get("error_message")))
        if abort is not None and abort.kind not in RESTARTABLE_ABORTS:
            self.note("failed", abort.reason, task.id)
            return _failed(task.id, abort.reason)
        if outcome["kind"] != "ok":
            why = (
                abort.reason
                if abort is not None
                else f"{outcome['kind']}: {outcome.get('error_message') or 'no details'}"
            )
            restartable = abort is not None or outcome["kind"] in _RESTARTABLE
            retries = int(record.get("stall_retries") or 0)
            if restartable and retries < self.settings.max_stall_retries:
                self.note("resumed", f"prompting again after: {why}", task.id)
                self.to_worker(task.id, record, [part("resume", reason=why)])
                return TaskRecord(id=task.id, status="working", stall_retries=retries + 1)
            self.note("failed", why, task.id)
            return _failed(task.id, f"the worker's run failed: {why}")
        checking = check_record(self.run, task.id)
        if (left := await checking.end_left()) is not None:
            # The last orchestrator died in this task's checks (now ended): all
            # the worktree holds beyond the commit they checked is their output.
            await self.run.discard_uncommitted(task.id, to=left["commit"])
        commits = list(record.get("commits") or [])
        self.events += await reattach(self.run, task, record, self.runtime)
        if record.get("refreshing"):
            try:
                refreshed = await self.run.finish_refresh(task.id)
            except MergeConflict as exc:
                paths = ", ".join(exc.paths)
                return self.rework(
                    task, record, f"Conflict markers are still in {paths}: resolve them.", []
                )
            except RefreshAborted:
                restarted, notes, job = await restart_refresh(
                    self.run, task, record, self.settings, self.runtime
                )
                self.events += notes
                if job is not None:
                    self.jobs[task_owner(task.id)] = job
                if not isinstance(restarted, RefreshResult):
                    return restarted
                refreshed = restarted
            commits.append(refreshed.head)
        rounds = record.get("round", 0)
        message = f"{task.id}: {task.title}\n\nRound {rounds} of run {self.state['run_id']}."
        committed = await self.run.commit_all(task.id, message)
        if committed is not None:
            commits.append(committed.sha)
        # Commits not on record: the worker's own, or one made here before a
        # crash lost the record of it (the resumed run finds nothing to commit).
        commits += [sha for sha in await self.run.unmerged_commits(task.id) if sha not in commits]
        head = await self.run.task_head(task.id)
        env = await checking.begin(commit=head)
        checks = await run_checks(task.checks, Path(record["worktree"]), self.settings, env)
        # Checks may leave files behind (caches, build output); the work under
        # review is what was committed above.
        await self.run.discard_uncommitted(task.id, to=head)
        await checking.end()
        passed = sum(c["passed"] for c in checks)
        self.note("checked", f"{passed}/{len(checks)} checks pass", task.id)
        update = TaskRecord(id=task.id, commits=commits, checks=checks, refreshing=False)
        if not self.settings.review:
            if passed == len(checks):
                return TaskRecord(**update, status="approved")
            return self.rework(task, {**record, **update}, None, [])
        opened = await self.open_review(task, {**record, **update})
        return TaskRecord(**{**update, **opened}, review_retries=0)

    async def after_review(
        self, task: Task, record: TaskRecord, outcome: dict[str, Any]
    ) -> TaskRecord:
        checks = record.get("checks") or []
        verdict: Verdict | None = None
        job = self.ended[task.id]
        if outcome.get("server_lost"):
            self.note("moved", f"{outcome.get('error_message')}; asking a new reviewer", task.id)
            return await self.open_review(task, record)
        if outcome["kind"] == "ok":
            try:
                verdict = Verdict.model_validate(outcome.get("structured"))
            except ValidationError:
                verdict = None
        if verdict is None:
            retries = int(record.get("review_retries") or 0)
            abort = abort_of(outcome)
            why = (
                abort.reason
                if abort is not None
                else f"{outcome['kind']}: {outcome.get('error_message')}"
            )
            over_budget = abort is not None and abort.kind not in RESTARTABLE_ABORTS
            if retries < _MAX_REVIEW_RETRIES and not over_budget:
                self.note("review", f"asking the reviewer again after: {why}", task.id)
                self.jobs[review_owner(task.id)] = resend(job)
                return TaskRecord(id=task.id, review_retries=retries + 1)
            self.note("failed", f"no verdict from the reviewer: {why}", task.id)
            return _failed(task.id, f"the reviewer gave no verdict: {why}")
        checks_pass = all(c["passed"] for c in checks)
        if verdict.approved and checks_pass:
            self.note("approved", verdict.feedback or "approved", task.id)
            return TaskRecord(id=task.id, status="approved", verdict=verdict.model_dump())
        judged: TaskRecord = {**record, "verdict": verdict.model_dump()}
        if verdict.approved:
            # Only the checks hold it back: an approval's summary is no feedback.
            return self.rework(task, judged, None, [])
        feedback = verdict.feedback or (
            "The acceptance checks must pass." if not checks_pass else ""
        )
        return self.rework(task, judged, feedback, verdict.findings)

    def rework(
        self, task: Task, record: TaskRecord, feedback: str | None, findings: list[str]
    ) -> TaskRecord:
        """Send the task back to its worker, or fail it when out of rounds.

        ``feedback`` is what must change (a rejection's feedback, conflict
        markers left); ``None`` when only the failing checks hold the change
        back, so the worker is told what failed and nothing else.
        """
        rounds = int(record.get("round") or 0)
        checks = record.get("checks") or []
        failing = [c["command"] for c in checks if not c["passed"]]
        checks_only = feedback is None
        if feedback is None:
            feedback = f"{len(failing)} acceptance check(s) fail: " + ", ".join(
                f"`{command}`" for command in failing
            )
        if rounds >= self.settings.max_rework_rounds:
            reason = f"not accepted after {rounds} rework round(s): {feedback}" + (
                f" (failing checks: {', '.join(failing)})" if failing and not checks_only else ""
            )
            self.note("failed", reason, task.id)
            return TaskRecord(
                **_failed(task.id, reason), verdict=record.get("verdict"), checks=checks
            )
        prompt = (
            part("rework_checks")
            if checks_only
            else part("rework", feedback=feedback, findings=list(findings))
        )
        self.note("rework", f"round {rounds + 1}: {feedback}", task.id)
        self.to_worker(task.id, record, [prompt])
        return TaskRecord(
            id=task.id,
            status="working",
            round=rounds + 1,
            feedback=feedback,
            verdict=record.get("verdict"),
            checks=checks,
        )


async def review(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Process every task whose outstanding prompt has ended."""
    ended = {**ended_jobs(state, "task"), **ended_jobs(state, "review")}
    if not ended:
        return {}
    tasks = state.get("tasks") or {}
    reviewer = _Reviewer(state, settings_of(runtime), runtime, await git_run(state))
    reviewer.ended = {str(task_of(owner)): job for owner, job in ended.items()}
    finished = {task_id: tasks[task_id] for task_id in reviewer.ended}

    async def process(task_id: str, record: TaskRecord) -> TaskRecord:
        try:
            return await reviewer.process(task_id, record)
        except (OpenCodeConnectionError, EventStreamError):
            raise  # the server is away: resuming later retries this task
        except (LangGraphOpenCodeError, OSError) as exc:
            reason = f"could not review the work: {type(exc).__name__}: {exc}"
            reviewer.note("failed", reason, task_id)
            return _failed(task_id, reason)

    results = await asyncio.gather(*(process(t, r) for t, r in finished.items()))
    # Every ended prompt is handled: dropped, or followed by the next one.
    jobs: dict[str, PromptJob | None] = {**no_jobs(*finished), **reviewer.jobs}
    return {
        "tasks": {record["id"]: record for record in results},
        "jobs": jobs,
        "events": reviewer.events,
    }
