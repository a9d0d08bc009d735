"""Reliability: the OpenCode server is killed (SIGKILL) and restarted in the middle of a run.

The server comes back on the same port with the same password and its data
(an isolated server keeps its data directory over restarts). Turns that were
running when it died never finish: the orchestrator must notice, prompt the
worker again with the resume prompt, ask the reviewer again, and complete
the run without being restarted itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _orchestrator_child import (
    TIMEOUT,
    VERDICT,
    assert_all_merged,
    assert_nothing_left_behind,
    content,
    hanging,
    reviewer,
    session_of,
    worker,
    write,
)
from langgraph_opencode import RunSettings, aorchestrate
from langgraph_opencode.testing import (
    Hang,
    ScriptedModelServer,
    Step,
    StructuredOutput,
    files_plan,
    task_prompt,
)
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.reliability]

PLAN = files_plan({"a": [], "b": [], "c": ["a", "b"]}, objective="three files")


async def test_server_killed_and_restarted_mid_run_the_run_completes(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    git_repo: Path,
) -> None:
    a_first = Hang(then=write("a"))  # a's worker turn dies with the server
    review_b = Hang(then=StructuredOutput(VERDICT))  # so does b's reviewer turn
    model.script(
        Step(a_first, user=task_prompt("a"), name="worker a, first turn (dies)"),
        worker("a", user=f"{task_prompt('a')} was interrupted"),
        worker("b"),
        reviewer("b", reply=review_b),
        reviewer("b"),  # asked again after the restart
        reviewer("a"),
        worker("c"),
        reviewer("c"),
    )
    events: list[dict[str, Any]] = []
    async with make_opencode_server() as server:
        run = asyncio.create_task(
            aorchestrate(
                "three files",
                repo=git_repo,
                plan=PLAN,
                server_url=server.url,
                password=server.password,
                settings=RunSettings(max_parallel=2),
                on_event=events.append,
            )
        )
        try:
            await hanging(a_first, review_b)
            port, pid = server.port, server.pid
            await server.kill()
            await server.start()
            assert (server.port, server.pid != pid) == (port, True)
            report = await asyncio.wait_for(run, TIMEOUT)
        finally:
            for hang in (a_first, review_b):
                hang.release()
            if not run.done():
                run.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await run

    assert_all_merged(report.model_dump(mode="json"), git_repo, {t: content(t) for t in "abc"})
    assert_nothing_left_behind(report.model_dump(mode="json"), git_repo)
    # The dead turns were found and prompted again, in the same sessions.
    resumed = [e for e in events if e["kind"] == "resumed"]
    assert [e["task"] for e in resumed] == ["a"], events
    asked_again = [e for e in events if "asking the reviewer again" in e["message"]]
    assert [e["task"] for e in asked_again] == ["b"], events
    a_prompts = model.prompts()[session_of(model, "a")]
    assert len(a_prompts) == 2
    assert "was interrupted" in a_prompts[1]
    b_review = model.prompts()[session_of(model, "b", reviewer=True)]
    assert len(b_review) == 2  # the same review, asked again as a new message
