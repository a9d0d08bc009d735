"""Optional human approval of the plan, then the task records are made.

With ``approve_plan`` set, the run pauses on a LangGraph ``interrupt`` showing
the plan (the planner's, or one the caller gave). Resume it with ``Command(resume=...)`` and one of:

* ``"approve"`` or ``{"action": "approve"}``;
* ``{"action": "edit", "plan": {...}}``: use this plan instead (it is checked;
  if it is invalid the run pauses again, showing the problems);
* ``{"action": "reject", "feedback": "..."}``: the planner makes a new plan.

An answer of another shape pauses the run again, with an ``error`` saying why.

Nothing happens before the interrupt, so the node can re-run safely on resume.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import OrchestratorState, TaskRecord
from langgraph_opencode.errors import ConfigurationError, PlanError
from langgraph_opencode.nodes._common import event, settings_of, with_plan
from langgraph_opencode.plan import Plan, parse_plan

__all__ = ["approve_plan", "plan_decision"]


def _tasks_of(plan: Plan) -> dict[str, TaskRecord]:
    return {
        task.id: TaskRecord(
            id=task.id,
            status="pending",
            round=0,
            tokens=0,
            cost=0.0,
            stall_retries=0,
            checks=[],
            commits=[],
            sessions=[],
        )
        for task in plan.tasks
    }


def plan_decision(value: Any) -> dict[str, Any]:
    """The plan approval's answer as ``{"action": ...}``.

    Raises:
        ConfigurationError: It is not one of the answers the approval takes.
    """
    decision = {"action": value} if isinstance(value, str) else value
    if not isinstance(decision, dict) or decision.get("action") not in (
        "approve",
        "edit",
        "reject",
    ):
        raise ConfigurationError(
            "resume the plan approval with 'approve', {'action': 'edit', 'plan': {...}} or "
            f"{{'action': 'reject', 'feedback': '...'}}; got {value!r}"
        )
    return decision


async def approve_plan(state: OrchestratorState, runtime: Runtime[RunSettings]) -> dict[str, Any]:
    """Ask a human about the plan when the settings say so; then make the task records."""
    plan = Plan.model_validate(state["plan"])
    # A given plan is shown too: asking for approval means asking, whoever wrote the plan.
    if settings_of(runtime).approve_plan:
        payload: dict[str, Any] = {
            "type": "plan_approval",
            "run_id": state["run_id"],
            "plan": state["plan"],
            "problems": state.get("plan_problems") or [],
        }
        while True:
            # An answer that cannot be used pauses again, saying why: raising
            # would store the bad answer and replay it on every resume.
            try:
                decision = plan_decision(interrupt(payload))
                break
            except ConfigurationError as exc:
                payload = {**payload, "error": str(exc)}
        if decision["action"] == "reject":
            feedback = str(decision.get("feedback") or "make a better plan")
            return {
                **with_plan(state, None),
                "plan_feedback": feedback,
                "events": [event("plan", f"plan rejected: {feedback}", runtime)],
            }
        if decision["action"] == "edit":
            try:
                plan = parse_plan(decision.get("plan"), source="the edited plan")
            except PlanError as exc:
                return {"plan_problems": exc.problems}
            return {
                **with_plan(state, plan.model_dump(mode="json")),
                "plan_problems": [],
                "tasks": _tasks_of(plan),
                "events": [
                    event("plan", f"edited plan of {len(plan.tasks)} tasks approved", runtime)
                ],
            }
    return {
        "plan_problems": [],
        "tasks": _tasks_of(plan),
        "events": [event("plan", f"plan of {len(plan.tasks)} tasks approved", runtime)],
    }
