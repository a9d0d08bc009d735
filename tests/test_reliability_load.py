"""Reliability: a 50-task plan, 16 sessions at a time, on one OpenCode server.

Forty independent tasks, then ten that each need two of them. Checks are
trivial and every verdict is instant, so the run measures the orchestration
itself: dispatching, following 16 sessions through one event stream,
reviewing, merging 50 branches one after another. The run gets a server of
its own, stopped at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _orchestrator_child import (
    assert_all_merged,
    assert_no_prompt_twice,
    assert_nothing_left_behind,
    content,
    worker,
)
from langgraph_opencode import RunSettings, aorchestrate
from langgraph_opencode.testing import ScriptedModelServer, files_plan, reviewer_says
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.reliability]

PARALLEL = 16
FIRST = [f"t{n:02}" for n in range(40)]
THEN = {f"t{n:02}": [FIRST[n - 40], FIRST[n - 30]] for n in range(40, 50)}
PLAN = files_plan(dict.fromkeys(FIRST, ()) | THEN, objective="fifty files")


@pytest.mark.timeout(1800)
async def test_fifty_tasks_sixteen_at_a_time_all_merge(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    git_repo: Path,
) -> None:
    tasks = [t["id"] for t in PLAN["tasks"]]
    assert len(tasks) == 50
    model.script(*(worker(t) for t in tasks), reviewer_says(True, repeat=True))
    events: list[dict[str, Any]] = []

    # A server of its own: a hundred sessions leave OpenCode slower for the tests after this one.
    async with make_opencode_server() as server:
        report = await aorchestrate(
            "fifty files",
            repo=git_repo,
            plan=PLAN,
            server_url=server.url,
            password=server.password,
            settings=RunSettings(max_parallel=PARALLEL),
            on_event=events.append,
        )

    result = report.model_dump(mode="json")
    assert_all_merged(result, git_repo, {t: content(t) for t in tasks}, report.to_markdown())
    assert_nothing_left_behind(result, git_repo)
    assert_no_prompt_twice(model)
    # The parallel limit was used to the full and never exceeded.
    running = most = 0
    for event in events:
        running += {"dispatched": 1, "merged": -1, "failed": -1}.get(event["kind"], 0)
        most = max(most, running)
    assert most == PARALLEL
    reviews = [r for r in model.chat_requests() if "Review task" in r.request.first_user_text]
    assert len({r.request.conversation_key for r in reviews}) == 50  # one reviewer each
