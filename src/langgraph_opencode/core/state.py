"""The graph's state: what is checkpointed after every step.

Plain dicts and lists only (no custom classes), so checkpoints load anywhere.
Big things stay out: diffs and logs live in git and in the server; a check's
output is kept only as a short tail; the run's notable events go to its log
file (``core/run_log.py``), not here.

The channels that grow with the number of tasks (``tasks``, ``plan``,
``own_input``, ``waiting``) are LangGraph ``DeltaChannel`` channels (beta in
LangGraph 1.2): a checkpoint stores only what a step wrote to them, and the
value is rebuilt from the writes since the last full snapshot (every
``SNAPSHOT_EVERY`` updates), so the checkpoint database grows linearly with
the run instead of storing every task record in every checkpoint. Their
reducers take a batch of writes at once and must give the same value however
the writes are batched: :func:`merge_by_key`, :func:`replace_by_key`,
:func:`last_value`. A channel that was never written reads as its type's empty
value (``{}`` or ``[]``), not as missing.

Each task moves through these statuses::

    pending -> working -> checking -> reviewing -> approved -> merged
                  ^          |            |            |
                  +--rework--+------------+--conflict--+
    (any) -> failed          pending -> blocked (a dependency failed)

Every prompt the run has out lives in one channel, ``jobs``, keyed by its
owner (see ``core.jobs``): ``planner``, ``task:<id>`` (a task's worker),
``review:<id>`` (its reviewer); a task has at most one prompt out. A job is
written to the state *before* it is sent (with a message id chosen here), so
a resumed run can ask the server whether that exact prompt arrived instead
of sending it twice. Its text is not stored: it is rendered from its
templates and the state when it is sent (``nodes._prompts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, TypeVar

from langgraph.channels.delta import DeltaChannel
from typing_extensions import TypedDict

__all__ = [
    "SNAPSHOT_EVERY",
    "TERMINAL_STATUSES",
    "AbortKind",
    "AnswerSchema",
    "JobRole",
    "OrchestratorInput",
    "OrchestratorOutput",
    "OrchestratorState",
    "PromptJob",
    "PromptPart",
    "TaskRecord",
    "TaskStatus",
    "add_amount",
    "last_value",
    "merge_by_key",
    "merge_tasks",
    "replace_by_key",
]

TaskStatus = Literal[
    "pending", "working", "checking", "reviewing", "approved", "merged", "failed", "blocked"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"merged", "failed", "blocked"})

JobRole = Literal["planner", "worker", "reviewer"]

AbortKind = Literal["stalled", "turn_timeout", "token_budget", "cost_budget"]
"""Why the run aborted a turn (``PromptJob.abort_kind``, and the outcome's ``abort_kind``)."""


class PromptPart(TypedDict):
    """One template of a prompt: its name and the values not read from the state."""

    template: str
    args: dict[str, Any]


AnswerSchema = Literal["plan", "verdict"]
"""The structured answers a prompt can ask for: the planner's plan, the reviewer's verdict."""


class PromptJob(TypedDict):
    """One prompt, recorded before it is sent.

    Attributes:
        role: Who it is for.
        session_id: The session it goes to.
        directory: That session's directory.
        message_id: The user message id it is sent with.
        agent: The OpenCode agent that runs it.
        model: ``provider/model``, or empty for the agent's default.
        prompt: Its parts, rendered and joined when it is sent
            (``nodes._prompts.prompt_text``); the state holds no prompt text.
        schema: The JSON schema a structured answer must follow, if one is
            wanted: by name (see :data:`AnswerSchema`; the schema itself is
            made when the prompt is sent, not stored), or whole in runs from
            before 2026-12-01.
        sent: Whether the server accepted it (set after sending).
        outcome: How its run ended (a ``PromptOutcome`` as a dict, its fields at
            their defaults left out: read them with ``.get``), once known.
        sent_at: When the server accepted it (seconds since the epoch); the
            turn's clocks run from here, over monitor re-entries and resumes.
        active_at: The last sign of life seen (seconds since the epoch), kept
            when a person's answer restarts the turn's clocks.
        abort_kind: Why the supervisor aborted the turn, kept until its
            outcome arrives (maybe after a resume).
        abort_reason: The same, said for people (never parsed).
        aborted_at: When it did (seconds since the epoch).
        server: The name of the OpenCode server the session lives on (its
            URL, or ``embedded`` for the run's embedded server; missing in runs
            from before several servers: the run's primary server).
        paused_s: Seconds the turn waited for a person to answer its
            permission requests; the turn's clocks leave them out.
    """

    role: JobRole
    session_id: str
    directory: str
    message_id: str
    agent: str
    model: str
    prompt: list[PromptPart]
    schema: AnswerSchema | dict[str, Any] | None
    sent: bool
    outcome: dict[str, Any] | None
    sent_at: NotRequired[float]
    active_at: NotRequired[float]
    abort_kind: NotRequired[AbortKind]
    abort_reason: NotRequired[str]
    aborted_at: NotRequired[float]
    server: NotRequired[str]
    paused_s: NotRequired[float]


class TaskRecord(TypedDict, total=False):
    """What the run knows about one task."""

    id: str
    status: TaskStatus
    round: int
    """Rework rounds used so far."""
    branch: str
    worktree: str
    worker_session: str
    server: str
    """The name of the OpenCode server the worker session lives on (see ``PromptJob``)."""
    moves: int
    """How often the task moved to another server because its server went away."""
    reviewer_session: str
    tokens: int
    cost: float
    stall_retries: int
    checks: list[dict[str, Any]]
    verdict: dict[str, Any] | None
    feedback: str
    commits: list[str]
    merge_sha: str
    reason: str
    refreshing: bool
    """The integration branch was merged into the task with conflicts to resolve."""
    review_retries: int
    answers: list[dict[str, Any]]
    """A person's answers to permission requests that died with their server
    (``permission``, ``patterns``, ``reply``, ``message``): given to the same
    request when the task's turn asks it again."""
    started_at: float
    finished_at: float
    sessions: list[str]
    left_behind: list[dict[str, Any]]
    """Sessions of this task on servers that went away (``server``, ``session_id``,
    ``directory``): aborted as soon as their server answers again."""
    undone: list[str]
    """Changes to the repository's shared git files found after the task's turns, undone
    (one line each, as in its ``undone`` events)."""


_V = TypeVar("_V")

SNAPSHOT_EVERY = 100
"""A delta channel's full value is checkpointed every this many updates (LangGraph's default)."""


def merge_by_key(
    current: Mapping[str, Any] | None, writes: Sequence[Mapping[str, Any] | None]
) -> dict[str, Any]:
    """Delta reducer: records by key, each write updating the records it names field by field.

    A write maps keys to the fields that change (``{"a": {"status": "merged"}}``
    sets one field of record ``a``, keeping its others), or to ``None``, which
    deletes the record. ``None`` as a whole write changes nothing. The result is
    the same however the writes are batched (the writes are folded in order), as
    ``DeltaChannel`` requires; nothing is changed in place.
    """
    merged: dict[str, Any] = dict(current or {})
    for write in writes:
        for key, update in (write or {}).items():
            if update is None:
                merged.pop(key, None)
            else:
                merged[key] = {**(merged.get(key) or {}), **update}
    return merged


def replace_by_key(
    current: Mapping[str, _V] | None, writes: Sequence[Mapping[str, _V | None] | None]
) -> dict[str, _V]:
    """Delta reducer: values by key, each write replacing the values it names whole.

    ``None`` as a value deletes the key (e.g. a ``jobs`` map keyed by owner,
    where an owner with no outstanding prompt has no entry). Batch-invariant
    like :func:`merge_by_key`.
    """
    replaced: dict[str, _V] = dict(current or {})
    for write in writes:
        for key, value in (write or {}).items():
            if value is None:
                replaced.pop(key, None)
            else:
                replaced[key] = value
    return replaced


def last_value(current: _V, writes: Sequence[_V]) -> _V:
    """Delta reducer: the last write wins (like a plain channel, without the one-writer check)."""
    return writes[-1] if writes else current


def merge_tasks(
    left: dict[str, TaskRecord] | None, right: dict[str, TaskRecord] | None
) -> dict[str, TaskRecord]:
    """Update each task record key by key (one write of :func:`merge_by_key`).

    Nodes return only the tasks (and fields) they changed.
    """
    return merge_by_key(left, [right])


def add_amount(total: float, amount: float) -> float:
    """Reducer: amounts add up (a node returns what its step spent, not a new total)."""
    return round(total + amount, 6)


def _delta(reducer: Any) -> DeltaChannel[Any]:
    return DeltaChannel(reducer, snapshot_frequency=SNAPSHOT_EVERY)


class OrchestratorInput(TypedDict):
    """What a caller passes to start a run."""

    objective: str
    repo: str
    run_id: NotRequired[str]
    plan: NotRequired[dict[str, Any] | None]


class OrchestratorOutput(TypedDict):
    """What a run returns: its report (``RunReport`` as a dict)."""

    report: dict[str, Any] | None


class OrchestratorState(TypedDict, total=False):
    """The whole checkpointed state of a run."""

    objective: str
    repo: str
    run_id: str
    plan: Annotated[dict[str, Any], _delta(last_value)]
    """The accepted plan; ``None`` or ``{}`` when there is none (yet). Typed ``dict``
    alone because a delta channel's type must be a class (its empty value)."""
    plan_given: bool
    plan_attempts: int
    plan_problems: list[str]
    plan_feedback: str
    planner_session: str
    jobs: Annotated[dict[str, PromptJob], _delta(replace_by_key)]
    """Every prompt the run has out, by owner (see ``core.jobs``); ``None`` in a write
    drops an owner's."""
    integration_branch: str
    base_commit: str
    tasks: Annotated[dict[str, TaskRecord], _delta(merge_by_key)]
    waiting: Annotated[list[dict[str, Any]], _delta(last_value)]
    """Permission requests or questions that wait for a human."""
    started_at: float
    own_input: Annotated[dict[str, Any], _delta(last_value)]
    """The run's own ``objective``, ``repo``, ``run_id`` and ``plan``, put back if
    new input on the thread overwrites them (the run then refuses that input)."""
    refused: str
    """Why new input on this thread was refused."""
    cost: Annotated[float, add_amount]
    """Dollars spent so far; a node writes what its step spent."""
    report: dict[str, Any] | None
    error: str
