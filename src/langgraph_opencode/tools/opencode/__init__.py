"""Everything needed to drive OpenCode servers: client, events, runs, embedded server."""

from langgraph_opencode.tools.opencode.client import DEFAULT_TIMEOUT, OpenCodeClient, PermissionRule
from langgraph_opencode.tools.opencode.events import RECONNECTED, EventHub, Subscription
from langgraph_opencode.tools.opencode.models import (
    Event,
    Message,
    MessageError,
    MessageInfo,
    OutcomeKind,
    Part,
    PermissionReply,
    PermissionRequest,
    PromptOutcome,
    QuestionRequest,
    Session,
    SessionStatus,
    Todo,
    TokenUsage,
)
from langgraph_opencode.tools.opencode.runs import (
    SessionState,
    judge_turn,
    reconcile,
    send_and_wait,
    wait_for_outcome,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "RECONNECTED",
    "Event",
    "EventHub",
    "Message",
    "MessageError",
    "MessageInfo",
    "OpenCodeClient",
    "OutcomeKind",
    "Part",
    "PermissionReply",
    "PermissionRequest",
    "PermissionRule",
    "PromptOutcome",
    "QuestionRequest",
    "Session",
    "SessionState",
    "SessionStatus",
    "Subscription",
    "Todo",
    "TokenUsage",
    "judge_turn",
    "reconcile",
    "send_and_wait",
    "wait_for_outcome",
]
