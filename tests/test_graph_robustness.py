"""What goes wrong in real use: leftovers from checks, and mistyped answers to a pause."""

from __future__ import annotations

from pathlib import Path

import pytest

from langgraph_opencode import RunSettings, aorchestrate, aresume
from langgraph_opencode.testing import (
    ScriptedModelServer,
    git,
    one_task_plan,
    planner_returns,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.opencode import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.usefixtures("no_blocking_calls")]


async def test_files_left_by_the_checks_do_not_block_the_merge(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    # Like a test run that writes __pycache__ or coverage files in a repo that
    # does not ignore them.
    check = "python3 -c 'import one' && mkdir -p build && touch build/out.log"
    model.script(worker_writes("one", {"one.py": "X = 1\n"}), reviewer_says(True, task_id="one"))

    report = await aorchestrate(
        "one file",
        repo=git_repo,
        plan=one_task_plan(file="one.py", check=check),
        server_url=opencode_server.url,
        password=opencode_server.password,
    )

    assert report.status == "completed", report.to_markdown()
    files = git(git_repo, "ls-tree", "-r", "--name-only", report.integration_branch).split()
    assert "one.py" in files
    assert not any(f.startswith(("build/", "__pycache__/")) for f in files)


async def test_a_mistyped_answer_pauses_again_and_a_good_one_goes_on(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    plan = one_task_plan(file="one.py")
    model.script(
        planner_returns(plan),
        worker_writes("one", {"one.py": "X = 1\n"}),
        reviewer_says(True, task_id="one"),
    )
    connection = {"server_url": opencode_server.url, "password": opencode_server.password}
    settings = RunSettings(approve_plan=True)

    paused = await aorchestrate("one file", repo=git_repo, settings=settings, **connection)
    assert paused.status == "interrupted"

    again = await aresume(
        paused.run_id, repo=git_repo, answer="aprove", settings=settings, **connection
    )
    assert again.status == "interrupted"
    assert again.interrupt is not None
    assert again.interrupt["type"] == "plan_approval"
    assert "'aprove'" in again.interrupt["error"]

    done = await aresume(
        paused.run_id, repo=git_repo, answer="approve", settings=settings, **connection
    )
    assert done.status == "completed", done.to_markdown()
