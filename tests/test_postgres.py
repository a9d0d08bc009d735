"""Checkpoints in a real PostgreSQL server (Debian's package, started by the ``postgres`` fixture).

This is the persistence LangGraph Server uses in production: the exported
graph gets the server's Postgres checkpointer attached the way
``langgraph_api`` does it (``graph.copy(update={"checkpointer": ...})``), and
the Python API and the CLI use the same database through a URL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import Command

from _orchestrator_child import (
    Child,
    assert_all_merged,
    assert_no_prompt_twice,
    cleaning_up,
    content,
    hanging,
    reviewer,
    spawn,
    worker,
    write,
)
from langgraph_opencode.api import aorchestrate, aresume
from langgraph_opencode.checkpoints import CHECKPOINTS_ENV_VAR, checkpoint_path, describe_store
from langgraph_opencode.core.services import close_services, register_server
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.graph.studio import graph as exported_graph
from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    Hang,
    PostgresServer,
    ScriptedModelServer,
    git,
    one_task_plan,
    planner_returns,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

OBJECTIVE = "Write the greeting file"


def _script(model: ScriptedModelServer) -> None:
    model.script(
        planner_returns(one_task_plan("a", file="a.txt")),
        worker_writes("a", {"a.txt": "alpha\n"}),
        reviewer_says(repeat=True),
    )


def _thread_rows(postgres: PostgresServer, run_id: str) -> int:
    with psycopg.connect(postgres.url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE thread_id = %s", (run_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "langgraph_opencode.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _repo_state(repo: Path) -> tuple[str, str, str]:
    return (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        git(repo, "branch", "--format=%(refname:short)"),
    )


async def test_a_run_pauses_and_resumes_from_postgres_and_the_cli_reads_it_back(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    postgres: PostgresServer,
    git_repo: Path,
) -> None:
    _script(model)
    run_id = "pg-approve"
    connection: dict[str, Any] = {
        "repo": git_repo,
        "server_url": opencode_server.url,
        "password": opencode_server.password,
        "checkpointer": postgres.url,
    }

    paused = await aorchestrate(
        OBJECTIVE, run_id=run_id, settings=RunSettings(approve_plan=True), **connection
    )

    assert paused.status == "interrupted"
    assert paused.interrupt is not None
    assert paused.interrupt["type"] == "plan_approval"
    assert _thread_rows(postgres, run_id) > 0
    # Nothing went to the repository's own SQLite file.
    assert not checkpoint_path(await Repo.open(git_repo)).exists()

    # The CLI finds the paused run in the database named by the environment.
    env = {**os.environ, CHECKPOINTS_ENV_VAR: postgres.url}
    listed = await _cli(env, "runs", "--repo", str(git_repo))
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout
    assert "paused" in listed.stdout
    assert postgres.password not in listed.stdout + listed.stderr

    # A new process would open a new connection: so does aresume.
    done = await aresume(
        run_id, answer="approve", settings=RunSettings(approve_plan=True), **connection
    )

    assert done.status == "completed", done.to_markdown()
    assert git(git_repo, "show", f"{done.integration_branch}:a.txt") == "alpha\n"
    assert postgres.password not in done.model_dump_json() + done.to_markdown()
    status = await _cli(env, "status", run_id, "--repo", str(git_repo))
    assert status.returncode == 0, status.stderr
    assert "merged" in status.stdout


async def test_the_exported_graph_runs_on_a_postgres_checkpointer_as_langgraph_server_attaches_it(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    postgres: PostgresServer,
    git_repo: Path,
) -> None:
    _script(model)
    register_server(opencode_server.url, opencode_server.password)
    settings = RunSettings(server_url=opencode_server.url, approve_plan=True)
    config: RunnableConfig = {"configurable": {"thread_id": "pg-server"}, "recursion_limit": 500}
    run_input = {"objective": OBJECTIVE, "repo": str(git_repo)}
    try:
        async with AsyncPostgresSaver.from_conn_string(postgres.url) as saver:
            await saver.setup()
            graph = exported_graph.copy(update={"checkpointer": saver})
            progress = [
                chunk
                async for chunk in graph.astream(
                    run_input, config, context=settings, stream_mode="custom"
                )
            ]
            state = await graph.aget_state(config)
            (pending,) = [i for task in state.tasks for i in task.interrupts]
            assert pending.value["type"] == "plan_approval"
            assert any(c["event"]["kind"] == "plan" for c in progress)

        # Resumed over a new connection, as another server worker would.
        async with AsyncPostgresSaver.from_conn_string(postgres.url) as saver:
            graph = exported_graph.copy(update={"checkpointer": saver})
            result = await graph.ainvoke(Command(resume="approve"), config, context=settings)
    finally:
        await close_services(opencode_server.url)
        register_server(opencode_server.url, None)

    report = RunReport.model_validate(result["report"])
    assert report.status == "completed", report.to_markdown()
    assert [(t.id, t.status) for t in report.tasks] == [("a", "merged")]
    assert _thread_rows(postgres, "pg-server") > 0


async def test_an_unreachable_database_is_a_clear_error_without_its_password(
    postgres: PostgresServer, git_repo: Path
) -> None:
    before = _repo_state(git_repo)
    url = postgres.url.replace(f":{postgres.port}/", ":1/")

    with pytest.raises(ConfigurationError) as raised:
        await aorchestrate(
            OBJECTIVE, repo=git_repo, server_url="http://127.0.0.1:1", checkpointer=url
        )

    message = str(raised.value)
    assert postgres.password not in message
    assert message.startswith(
        "cannot use the checkpoint database postgresql://lgoc:***@127.0.0.1:1/"
    )
    assert _repo_state(git_repo) == before


async def test_a_wrong_database_password_is_refused_before_the_run_starts(
    opencode_server: OpenCodeServer, postgres: PostgresServer, git_repo: Path
) -> None:
    before = _repo_state(git_repo)
    wrong = postgres.url.replace(postgres.password, "not-the-password")

    with pytest.raises(ConfigurationError, match="cannot use the checkpoint database") as raised:
        await aorchestrate(
            OBJECTIVE,
            repo=git_repo,
            server_url=opencode_server.url,
            password=opencode_server.password,
            checkpointer=wrong,
        )

    assert "not-the-password" not in str(raised.value)
    assert "lgoc:***@127.0.0.1" in str(raised.value)
    assert _repo_state(git_repo) == before


async def test_an_orchestrator_killed_mid_run_resumes_from_postgres_in_a_new_process(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    postgres: PostgresServer,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = Hang(then=write("a"))
    script = (
        planner_returns(one_task_plan("a", file="a.txt")),
        worker("a", first=held),
        reviewer("a"),
    )
    model.script(*script)
    # The orchestrator processes find the database the way a user's would.
    monkeypatch.setenv(CHECKPOINTS_ENV_VAR, postgres.url)
    common = (str(git_repo), "pg-crash", opencode_server.url)
    children: list[Child] = []
    async with cleaning_up(children, [held]):
        first = await spawn("first", tmp_path, opencode_server, "start", *common, OBJECTIVE)
        children.append(first)
        await hanging(held)  # the worker's turn is in flight
        await first.crash()
        assert first.report is None
        assert _thread_rows(postgres, "pg-crash") > 0
        held.release()  # the turn ends while no orchestrator runs

        second = await spawn("resumed", tmp_path, opencode_server, "resume", *common)
        children.append(second)
        code = await second.finish()
        output = first.output() + "\n" + second.output()
        assert code == 0, output
        report = second.report
        assert report is not None, output

    assert_all_merged(report, git_repo, {"a": content("a")}, output)
    assert_no_prompt_twice(model)
    assert not checkpoint_path(await Repo.open(git_repo)).exists()
    assert postgres.password not in output


def test_store_urls_are_described_without_their_password() -> None:
    assert (
        describe_store("postgresql://me:s3cret@db.internal:5432/runs")
        == "postgresql://me:***@db.internal:5432/runs"
    )
    assert describe_store("sqlite:///tmp/x.sqlite") == "sqlite:///tmp/x.sqlite"


async def test_an_unknown_store_scheme_is_refused(git_repo: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown checkpoint store 'redis://"):
        await aorchestrate(OBJECTIVE, repo=git_repo, checkpointer="redis://localhost:6379")
