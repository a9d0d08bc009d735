"""The completion rules: how a turn's end is read from its messages.

The message shapes are those the pinned server produced (see the server notes'
"How runs end" table); the live tests produce them for real.
"""

from __future__ import annotations

from typing import Any

import pytest

from langgraph_opencode.core.outcomes import (
    RESTARTABLE_ABORTS,
    TurnFacts,
    abort_of,
    ended_over_budget,
    run_over_budget,
    watchdog,
)
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.tools.opencode import Message, judge_turn
from langgraph_opencode.tools.opencode.runs import turn_usage

SID = "ses_1"
USER = "msg_0001"


def user(mid: str = USER) -> Message:
    return Message.model_validate(
        {"info": {"id": mid, "sessionID": SID, "role": "user", "time": {"created": 1}}}
    )


def assistant(
    mid: str,
    *,
    parent: str = USER,
    completed: bool = True,
    finish: str | None = "stop",
    error: dict[str, Any] | None = None,
    text: str = "",
    structured: Any = None,
    tokens: int = 10,
    cost: float = 0.5,
) -> Message:
    info: dict[str, Any] = {
        "id": mid,
        "sessionID": SID,
        "role": "assistant",
        "parentID": parent,
        "time": {"created": 2, **({"completed": 3} if completed else {})},
        "cost": cost,
        "tokens": {"input": tokens, "output": 1, "reasoning": 0, "cache": {"read": 0, "write": 0}},
    }
    if finish is not None:
        info["finish"] = finish
    if error is not None:
        info["error"] = error
    if structured is not None:
        info["structured"] = structured
    parts = [{"id": "prt_1", "type": "text", "text": text}] if text else []
    return Message.model_validate({"info": info, "parts": parts})


def test_normal_end_is_ok_and_sums_the_turns_steps() -> None:
    messages = [
        user(),
        assistant("msg_a1", finish="tool-calls", tokens=100, cost=1.0),
        assistant("msg_a2", text="done", tokens=50, cost=0.25),
    ]
    outcome = judge_turn(SID, messages, USER, idle=False)
    assert outcome is not None
    assert outcome.kind == "ok"
    assert outcome.text == "done"
    assert outcome.tokens.input == 150
    assert outcome.cost == pytest.approx(1.25)
    assert outcome.message_id == "msg_a2"


def test_a_step_that_asked_for_tools_is_not_the_end_while_busy() -> None:
    messages = [user(), assistant("msg_a1", finish="tool-calls")]
    assert judge_turn(SID, messages, USER, idle=False) is None


def test_idle_after_a_tool_step_means_the_run_died() -> None:
    messages = [user(), assistant("msg_a1", finish="tool-calls")]
    outcome = judge_turn(SID, messages, USER, idle=True)
    assert outcome is not None
    assert outcome.kind == "incomplete"


def test_structured_output_is_ok_even_though_it_ends_with_a_tool_call() -> None:
    messages = [user(), assistant("msg_a1", finish="tool-calls", structured={"answer": 42})]
    outcome = judge_turn(SID, messages, USER, idle=False)
    assert outcome is not None
    assert outcome.kind == "ok"
    assert outcome.structured == {"answer": 42}


@pytest.mark.parametrize(
    ("error", "kind", "retryable", "status"),
    [
        (
            {
                "name": "APIError",
                "data": {"message": "boom", "statusCode": 500, "isRetryable": True},
            },
            "api_error",
            True,
            500,
        ),
        (
            {
                "name": "APIError",
                "data": {"message": "bad", "statusCode": 400, "isRetryable": False},
            },
            "api_error",
            False,
            400,
        ),
        ({"name": "MessageAbortedError", "data": {"message": "Aborted"}}, "aborted", False, None),
        (
            {"name": "StructuredOutputError", "data": {"message": "no tool", "retries": 0}},
            "structured_output_missing",
            False,
            None,
        ),
        (
            {"name": "ContextOverflowError", "data": {"message": "too long"}},
            "context_overflow",
            False,
            None,
        ),
        (
            {"name": "ProviderAuthError", "data": {"providerID": "x", "message": "key"}},
            "auth",
            False,
            None,
        ),
        ({"name": "ContentFilterError", "data": {"message": "filtered"}}, "unknown", False, None),
    ],
)
def test_errors_map_to_outcome_kinds(
    error: dict[str, Any], kind: str, retryable: bool, status: int | None
) -> None:
    messages = [user(), assistant("msg_a1", finish=None, error=error)]
    outcome = judge_turn(SID, messages, USER, idle=False)
    assert outcome is not None
    assert outcome.kind == kind
    assert outcome.retryable is retryable
    assert outcome.status_code == status
    assert outcome.error_name == error["name"]


def test_abort_during_a_retry_wait_reads_as_aborted_once_idle() -> None:
    messages = [user(), assistant("msg_a1", finish=None)]
    assert judge_turn(SID, messages, USER, idle=False) is None
    outcome = judge_turn(SID, messages, USER, idle=True)
    assert outcome is not None
    assert outcome.kind == "aborted"


def test_a_prompt_that_never_arrived_is_incomplete_once_idle() -> None:
    messages = [user("msg_other"), assistant("msg_a1", parent="msg_other")]
    assert judge_turn(SID, messages, USER, idle=False) is None
    outcome = judge_turn(SID, messages, USER, idle=True)
    assert outcome is not None
    assert outcome.kind == "incomplete"
    assert outcome.error_message == "the prompt never reached the session"


def test_only_the_tracked_turn_counts() -> None:
    # An earlier, finished turn must not be taken for the tracked one.
    messages = [user("msg_0000"), assistant("msg_a0", parent="msg_0000", text="old answer"), user()]
    assert judge_turn(SID, messages, USER, idle=False) is None
    outcome = judge_turn(SID, messages, USER, idle=True)
    assert outcome is not None
    assert outcome.kind == "incomplete"
    assert outcome.text == ""
    # Without an id the last user message is the tracked one.
    assert judge_turn(SID, messages, None, idle=False) is None


@pytest.mark.parametrize("finish", ["length", "content-filter", "error", "other"])
def test_a_turn_cut_short_is_not_ok(finish: str) -> None:
    messages = [user(), assistant("msg_a1", finish=finish, text="half an ans")]
    outcome = judge_turn(SID, messages, USER, idle=False)
    assert outcome is not None
    assert outcome.kind == "unknown"
    assert outcome.error_message is not None
    assert finish in outcome.error_message


def test_a_turns_usage_so_far_counts_its_own_answers_only() -> None:
    # An aborted turn's outcome is not judged from a final message, yet its usage counts.
    messages = [
        user("msg_0000"),
        assistant("msg_old", parent="msg_0000", tokens=1_000, cost=9.0),
        user(),
        assistant("msg_a1", finish="tool-calls", tokens=100, cost=1.0),
        assistant("msg_a2", completed=False, finish=None, tokens=50, cost=0.25),
    ]

    tokens, cost = turn_usage(messages, USER)

    assert tokens.total == (100 + 1) + (50 + 1)
    assert cost == 1.25
    assert turn_usage(messages, "msg_unknown")[0].total == 0


# -- the watchdog's decisions (core.outcomes): pure functions of facts and settings ------

_LIMITS = RunSettings(stall_timeout=60, turn_timeout=600, task_token_budget=1000)


@pytest.mark.parametrize(
    ("facts", "kind"),
    [
        # now, started, last activity, tools running, tokens, a task's turn
        ((100.0, 0.0, 90.0, False, 10, True), None),
        ((100.0, 0.0, 30.0, False, 10, True), "stalled"),
        ((100.0, 0.0, 30.0, True, 10, True), None),  # a long tool run is no stall
        ((700.0, 0.0, 699.0, True, 10, True), "turn_timeout"),
        ((100.0, 0.0, 99.0, False, 1001, True), "token_budget"),
        ((100.0, 0.0, 99.0, False, 1001, False), None),  # the planner has no token budget
        ((700.0, 0.0, 30.0, False, 5000, True), "token_budget"),  # the budget is said first
    ],
)
def test_the_watchdog_aborts_for_the_first_limit_a_turn_passes(
    facts: tuple[float, float, float, bool, int, bool], kind: str | None
) -> None:
    now, started, active, tools, tokens, is_task = facts
    decided = watchdog(
        TurnFacts(
            now=now,
            started=started,
            last_activity=active,
            tools_running=tools,
            tokens=tokens,
            is_task=is_task,
        ),
        _LIMITS,
    )
    assert (decided.kind if decided else None) == kind


def test_a_spent_run_budget_aborts_and_only_a_spent_one() -> None:
    settings = RunSettings(run_cost_budget=2.0)
    assert run_over_budget(1.99, settings) is None
    over = run_over_budget(2.5, settings)
    assert over is not None
    assert over.kind == "cost_budget"
    assert "$2.50 > $2.00" in over.reason
    assert run_over_budget(1e9, RunSettings()) is None  # no budget set


def test_a_turn_that_ended_over_a_budget_gets_the_same_verdict_as_a_running_one() -> None:
    settings = RunSettings(task_token_budget=100, run_cost_budget=1.0)
    assert ended_over_budget(50, 0.5, settings, is_task=True) is None
    token = ended_over_budget(150, 0.5, settings, is_task=True)
    assert token is not None
    assert token.kind == "token_budget"
    cost = ended_over_budget(150, 1.5, settings, is_task=False)
    assert cost is not None
    assert cost.kind == "cost_budget"


def test_the_graph_reads_an_abort_from_its_kind_never_from_its_words() -> None:
    recorded = {"kind": "aborted", "abort_kind": "stalled", "abort_reason": "budget words"}
    abort = abort_of(recorded)
    assert abort is not None
    assert abort.kind == "stalled"
    assert abort.kind in RESTARTABLE_ABORTS
    assert abort_of({"kind": "aborted", "abort_reason": "token budget exceeded"}) is None
