"""Reliability: model faults from the scripted server, through the whole graph.

One run, one task per fault, all in parallel: bursts of 429 and of 500, a
stream that stops sending mid-answer, a request that never gets an answer, an
answer that streams on past ``turn_timeout``, a dropped connection, a
malformed chunk. Small ``stall_timeout`` and
``turn_timeout`` settings make every wait short. Each task either ends merged
or failed with a reason that says what happened; the model's request log
shows every retry was bounded (the scripted steps are counted exactly: a
further request would match no step and fail the test).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from _orchestrator_child import content, reviewer, worker, write
from langgraph_opencode import RunSettings, aorchestrate
from langgraph_opencode.testing import (
    DropConnection,
    ErrorResponse,
    Hang,
    MalformedChunk,
    RecordedRequest,
    ScriptedModelServer,
    Step,
    Text,
    files_plan,
    git,
    task_prompt,
)
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.reliability]

SETTINGS = RunSettings(max_parallel=7, stall_timeout=20, turn_timeout=90, max_stall_retries=1)
"""Short clocks, yet long enough for seven directories booting at once on a loaded machine.

A stalled turn must be caught as a stall before its turn_timeout: the gap between the two
is the time a turn may take to reach the model (seconds when quiet; 25 s were not enough
at load 10 on two cores)."""
MERGED = ("rate", "stall", "silent", "slow", "drop")
FAILED = {"down": "api_error: upstream exploded", "garbled": "JSON parsing failed"}
"""The tasks that fail, and what their reason says."""
OPENCODE_TRIES = 6
"""OpenCode tries a model request that fails with 429 or 5xx six times (1 + 5 retries)."""


def _task_of(record: RecordedRequest) -> str:
    """The task a worker request is about (its prompt starts with ``# Task `<id>```)."""
    return record.request.first_user_text.split("`")[1]


def fault(task_id: str, reply: Any, *, times: int = 1) -> list[Step]:
    """``times`` steps answering task ``task_id``'s worker requests with ``reply``."""
    return [Step(reply, user=task_prompt(task_id), name=f"{task_id}: fault") for _ in range(times)]


async def test_model_faults_end_merged_or_failed_with_a_reason(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    never = Hang()  # released only at the end of the test
    stops_mid_answer = Text("Working on it, first I will", chunk_size=8, chunk_delay=600)
    model.script(
        # 429 three times, then the answer: OpenCode's own retries get through.
        *fault("rate", ErrorResponse(429, "slow down", retry_after=0.1), times=3),
        # 500 on every try: OpenCode gives up after its retries, the
        # orchestrator prompts once more, then the task fails.
        *fault("down", ErrorResponse(500, "upstream exploded", retry_after=0.1), times=12),
        # The answer stops mid-stream: a stall, aborted and prompted again.
        *fault("stall", stops_mid_answer),
        # No answer at all: a stall too.
        *fault("silent", never),
        # An answer that streams on and on: alive, but past turn_timeout.
        *fault("slow", Text("." * 400, chunk_size=1, chunk_delay=0.5)),
        # The connection drops after two chunks; a malformed chunk.
        *fault("drop", DropConnection(Text("partial answer", chunk_size=4), after_chunks=2)),
        *fault("garbled", MalformedChunk(write("garbled"), after_chunks=1)),
        *(worker(t) for t in MERGED),
        *(reviewer(t) for t in MERGED),
    )
    events: list[dict[str, Any]] = []
    plan = files_plan({task_id: () for task_id in [*MERGED, *FAILED]})
    try:
        report = await aorchestrate(
            "faults",
            repo=git_repo,
            plan=plan,
            server_url=opencode_server.url,
            password=opencode_server.password,
            settings=SETTINGS,
            on_event=events.append,
        )
    finally:
        never.release()

    # Each task ends merged, or failed with a reason that says what happened.
    assert report.status == "partial", report.to_markdown()
    statuses = {t.id: t.status for t in report.tasks}
    reasons = {t.id: t.reason for t in report.tasks}
    assert statuses == dict.fromkeys(MERGED, "merged") | dict.fromkeys(FAILED, "failed"), reasons
    for task in report.tasks:
        assert FAILED.get(task.id, "") in task.reason
    branch = report.integration_branch
    for task_id in MERGED:
        assert git(git_repo, "show", f"{branch}:{task_id}.txt") == content(task_id)

    # Bounded retries: OpenCode's own, then one more prompt from the orchestrator.
    tries = Counter(_task_of(r) for r in model.chat_requests() if _is_worker(r))
    assert tries == {
        "rate": 3 + 2,  # three 429s, then the write and the last answer, in the first turn
        "down": 2 * OPENCODE_TRIES,  # two turns of 500s, then the task fails
        "stall": 1 + 2,  # the stalled stream, then a second turn
        "silent": 1 + 2,
        "slow": 1 + 2,  # aborted at turn_timeout, then a second turn
        "drop": 1 + 2,  # the dropped stream, then a full answer
        "garbled": 1,  # the malformed chunk ends the turn with an error
    }
    story = "\n".join(f"{e['kind']}: {e['message']}" for e in events)
    resumed = sorted(e["task"] for e in events if e["kind"] == "resumed")
    assert resumed == ["down", "silent", "slow", "stall"], story
    aborted = [e for e in events if e["kind"] == "aborted"]
    stalled = sorted(e["task"] for e in aborted if "stalled" in e["message"])
    assert stalled == ["silent", "stall"], story
    timed_out = [e["task"] for e in aborted if "turn_timeout" in e["message"]]
    assert timed_out == ["slow"], story


def _is_worker(record: RecordedRequest) -> bool:
    text = record.request.first_user_text
    return text.startswith("# Task `") and "Review task" not in text
