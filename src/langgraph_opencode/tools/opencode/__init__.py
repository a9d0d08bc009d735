"""Everything needed to drive OpenCode servers: client, events, runs, embedded server."""

from langgraph_opencode.tools.opencode.client import DEFAULT_TIMEOUT, OpenCodeClient, PermissionRule
from langgraph_opencode.tools.opencode.config import (
    PLANNER_AGENT,
    REVIEWER_AGENT,
    WORKER_AGENT,
    build_config,
    deep_merge,
)
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
from langgraph_opencode.tools.opencode.server import (
    BINARY_ENV_VAR,
    OPENCODE_VERSION,
    OpenCodeServer,
    find_opencode_binary,
)

__all__ = [
    "BINARY_ENV_VAR",
    "DEFAULT_TIMEOUT",
    "OPENCODE_VERSION",
    "PLANNER_AGENT",
    "RECONNECTED",
    "REVIEWER_AGENT",
    "WORKER_AGENT",
    "Event",
    "EventHub",
    "Message",
    "MessageError",
    "MessageInfo",
    "OpenCodeClient",
    "OpenCodeServer",
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
    "build_config",
    "deep_merge",
    "find_opencode_binary",
    "judge_turn",
    "reconcile",
    "send_and_wait",
    "wait_for_outcome",
]
