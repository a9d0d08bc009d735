"""How a turn ends, decided as pure functions of what was observed and the settings.

The supervisor observes (events, tools running, tokens, clocks); these
functions decide. They read no clock and touch no server, so each decision
is table-tested (``tests/test_judge_turn.py``). Every decision is a typed
value: an :class:`Abort` carries its ``kind`` (``AbortKind``), which the
nodes act on; its ``reason`` is for people and is never parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import AbortKind, PromptJob
from langgraph_opencode.tools.opencode.models import PromptOutcome

__all__ = [
    "RESTARTABLE_ABORTS",
    "Abort",
    "TurnFacts",
    "abort_of",
    "ended_over_budget",
    "lost_turn",
    "run_over_budget",
    "server_lost_outcome",
    "watchdog",
]

RESTARTABLE_ABORTS: frozenset[AbortKind] = frozenset({"stalled", "turn_timeout"})
"""Aborts after which a worker is prompted to carry on (budgets end the task instead)."""


@dataclass(frozen=True)
class Abort:
    """Why a turn is (to be) aborted."""

    kind: AbortKind
    reason: str
    """Said for people: events, the task's failure reason, the resume note."""


@dataclass(frozen=True)
class TurnFacts:
    """What is known of one running turn at one moment (seconds on one clock)."""

    now: float
    started: float
    """When the prompt was sent, with time spent waiting for a person added."""
    last_activity: float
    tools_running: bool
    """A tool call (not a subagent's ``task`` call) runs in the session or a subagent."""
    tokens: int
    """The task's tokens so far, this turn's included."""
    is_task: bool
    """A task's turn (token budgets apply), not the planner's."""


def watchdog(facts: TurnFacts, settings: RunSettings) -> Abort | None:
    """Whether a running turn must be aborted now: over budget, past its time, or stalled."""
    budget = settings.task_token_budget
    if facts.is_task and budget and facts.tokens > budget:
        return Abort("token_budget", f"token budget exceeded ({facts.tokens} > {budget})")
    if facts.now - facts.started > settings.turn_timeout:
        return Abort(
            "turn_timeout", f"the turn ran past turn_timeout ({settings.turn_timeout:g} s)"
        )
    if not facts.tools_running and facts.now - facts.last_activity > settings.stall_timeout:
        return Abort("stalled", f"stalled: no activity for {settings.stall_timeout:g} s")
    return None


def run_over_budget(spent: float, settings: RunSettings) -> Abort | None:
    """Whether the run's cost budget is spent (every turn is aborted then)."""
    limit = settings.run_cost_budget
    if limit and spent > limit:
        return Abort("cost_budget", f"run cost budget exceeded (${spent:.2f} > ${limit:.2f})")
    return None


def ended_over_budget(
    tokens: int, run_cost: float, settings: RunSettings, *, is_task: bool
) -> Abort | None:
    """The verdict on a turn that ended over a budget between two watchdog looks."""
    budget = settings.task_token_budget
    if is_task and budget and tokens > budget:
        return Abort("token_budget", f"token budget exceeded ({tokens} > {budget})")
    return run_over_budget(run_cost, settings)


def abort_of(outcome: dict[str, Any]) -> Abort | None:
    """The abort a recorded outcome carries, if the run aborted its turn."""
    kind = outcome.get("abort_kind")
    if not kind:
        return None
    return Abort(kind, str(outcome.get("abort_reason") or kind))


def lost_turn(session_id: str, url: str) -> PromptOutcome:
    """How a turn ends when its server goes away: incomplete (to be sent again elsewhere)."""
    return PromptOutcome(
        kind="incomplete",
        session_id=session_id,
        error_message=f"the OpenCode server {url} went away",
    )


def server_lost_outcome(job: PromptJob, url: str) -> dict[str, Any]:
    """A job's recorded outcome when its server went away (``server_lost``: the URL)."""
    return {
        **lost_turn(job["session_id"], url).model_dump(mode="json"),
        "server_lost": url,
    }
