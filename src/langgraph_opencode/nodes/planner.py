"""Start a run, and plan it: the read-only planner session returns the plan.

``start`` checks the input and sets up the run's integration branch. ``plan``
is entered again after each planner answer: it accepts a valid plan, or
records a retry prompt with the plan's problems (a bounded number of times).
A ready plan from the caller skips the model.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.core.jobs import PLANNER, new_job, part
from langgraph_opencode.core.services import pick_server
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState
from langgraph_opencode.errors import ConfigurationError, PlanError
from langgraph_opencode.nodes._common import (
    event,
    git_run,
    open_git_run,
    server_of,
    settings_of,
    with_plan,
)
from langgraph_opencode.objective import check_objective
from langgraph_opencode.plan import parse_plan
from langgraph_opencode.run_ids import check_run_id, new_run_id
from langgraph_opencode.tools.opencode.config import PLANNER_AGENT

__all__ = ["plan", "refuse", "start"]


async def refuse(state: OrchestratorState) -> dict[str, Any]:
    """Refuse new input on a thread that holds a run (``start`` put the run's own back)."""
    raise ConfigurationError(str(state.get("refused")))


async def start(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Check the input, name the run and make its integration branch."""
    first = state.get("own_input")
    if state.get("started_at") and first:
        # New input on a thread that holds a run already (LangGraph Studio or
        # Server): put back what it overwrote, and refuse it in the next step.
        return {
            **first,
            "refused": (
                f"this thread already holds run {first['run_id']!r} (objective: "
                f"{first['objective'][:80]!r}); start each run in a new thread, and resume "
                "a paused one with a command, not new input"
            ),
        }
    objective = check_objective(state.get("objective") or "").strip()
    settings_of(runtime).validate()
    given_repo = state.get("repo")
    if not isinstance(given_repo, str) or not os.path.isabs(given_repo):
        raise ConfigurationError(
            f"the input's repo must be the absolute path of the git repository to work on, "
            f"got {given_repo!r}: pass {{'objective': ..., 'repo': '/path/to/repo'}}"
        )
    run_id = check_run_id(state.get("run_id") or new_run_id())
    run = await open_git_run(given_repo, run_id)
    await run.check_namespace()
    base = await run.ensure_integration_branch()
    root = str(run.repo_root)
    update: dict[str, Any] = {
        "objective": objective,
        "repo": root,
        "run_id": run_id,
        "integration_branch": run.integration_branch,
        "base_commit": base,
        "started_at": state.get("started_at") or time.time(),
        "own_input": {"objective": objective, "repo": root, "run_id": run_id},
        "plan_attempts": 0,
    }
    status = await run.repo_status()
    notes = []
    if status.dirty:
        notes.append(
            event(
                "warning",
                f"the working tree has uncommitted changes in {len(status.files)} file(s); the run "
                f"works from the last commit ({status.head[:12]}) and leaves them alone",
                runtime,
            )
        )
    given = state.get("plan")
    if given:
        try:
            accepted = parse_plan(given, source="the given plan")
        except PlanError as exc:
            raise ConfigurationError(str(exc)) from None
        update["plan"] = accepted.model_dump(mode="json")
        update["plan_given"] = True
        notes.append(event("plan", f"using the given plan of {len(accepted.tasks)} tasks", runtime))
    else:
        update["plan"] = None
        update["plan_given"] = False
    update["own_input"]["plan"] = update["plan"]
    update["events"] = notes
    return update


async def _planner_checkout(state: OrchestratorState) -> Path:
    """The planner's clean checkout of the commit the run starts from.

    The planner reads what the tasks will start from, never the user's working
    tree and index with their uncommitted and untracked files.
    """
    run = await git_run(state)
    start = state.get("base_commit") or await run.ensure_integration_branch()
    return await run.planner_checkout(start)


async def _first_prompt(
    state: OrchestratorState,
    settings: RunSettings,
    runtime: Runtime[RunSettings],
    *,
    attempts: int,
) -> dict[str, Any]:
    """A new planner session on the least loaded server, and its first prompt."""
    checkout = await _planner_checkout(state)
    services = await pick_server(settings, {})
    session_id = await services.tools.create_session.ainvoke(
        {"directory": str(checkout), "title": f"plan: {state['objective'][:60]}"}
    )
    return {
        "planner_session": session_id,
        "jobs": {
            PLANNER: new_job(
                "planner",
                session_id=session_id,
                directory=str(checkout),
                agent=PLANNER_AGENT,
                model=settings.planner_model,
                prompt=[part("planner")],
                schema="plan",
                server=services.name,
            )
        },
        "plan_attempts": attempts,
        "events": [event("plan", "asking the planner for a plan", runtime)],
    }


async def plan(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Accept the planner's answer, or record the next planner prompt."""
    settings = settings_of(runtime)
    job = (state.get("jobs") or {}).get(PLANNER)
    feedback = state.get("plan_feedback") or ""
    attempts = state.get("plan_attempts") or 0
    if state.get("plan") or state.get("error"):
        return {}  # planned, or stopped (a refused prompt): nothing more to ask
    if job is None:
        return await _first_prompt(state, settings, runtime, attempts=1)
    lost = (job["outcome"] or {}).get("server_lost")
    if lost:
        # Its server went away: the same planning attempt, in a new session elsewhere.
        return await _first_prompt(state, settings, runtime, attempts=max(attempts, 1))
    if job["outcome"] is None and not feedback:
        return {}  # the prompt is still out: send and monitor take it from here
    outcome = job["outcome"] or {}
    previous = outcome.get("structured")
    problems: list[str]
    if feedback:
        problems = [f"A person reviewing the plan asked for changes: {feedback}"]
    elif outcome.get("kind") == "ok" and previous is not None:
        try:
            accepted = parse_plan(previous, source="the planner's answer")
        except PlanError as exc:
            problems = exc.problems
        else:
            return {
                **with_plan(state, accepted.model_dump(mode="json")),
                "plan_problems": [],
                "events": [
                    event("plan", f"the planner proposed {len(accepted.tasks)} tasks", runtime)
                ],
            }
    elif outcome.get("kind") == "structured_output_missing":
        problems = ["You did not call the StructuredOutput tool: answer with it, nothing else."]
    else:
        problems = [
            f"The planner's run failed: {outcome.get('kind')}: {outcome.get('error_message')}"
        ]
    if attempts >= settings.max_plan_attempts and not feedback:
        reason = f"no valid plan after {attempts} attempts: " + "; ".join(problems)
        return {
            "error": reason,
            "plan_problems": problems,
            "events": [event("failed", reason, runtime)],
        }
    if job["directory"] != state["repo"]:  # (older runs planned in the repository itself)
        await _planner_checkout(state)  # the session's checkout: still there, or made again
    return {
        "jobs": {
            PLANNER: new_job(
                "planner",
                session_id=job["session_id"],
                directory=job["directory"],
                agent=PLANNER_AGENT,
                model=settings.planner_model,
                prompt=[part("planner_retry", problems=problems, previous=previous)],
                schema="plan",
                server=server_of(job, settings),
            )
        },
        "plan_attempts": 1 if feedback else attempts + 1,
        "plan_feedback": "",
        "plan_problems": problems,
        "events": [event("plan", "asking the planner again: " + "; ".join(problems), runtime)],
    }
