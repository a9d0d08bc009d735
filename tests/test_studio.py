"""The graph under ``langgraph dev`` (LangGraph Server, as Studio uses it), driven by the SDK;
and the drawing of the graph in docs/architecture.md.

A real ``langgraph dev`` loads the graph from ``langgraph.json`` in a
subprocess. The run's settings go in as the run's context, the OpenCode
server's password through the environment variable the settings name. The
plan-approval pause shows up in the stream and in the thread's state; a
``resume`` command continues the run to its end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from langgraph_opencode.graph.studio import MERMAID_BEGIN, graph, mermaid, with_mermaid
from langgraph_opencode.testing import (
    ScriptedModelServer,
    fan_in_plan,
    git,
    planner_returns,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.opencode import OpenCodeServer

ROOT = Path(__file__).resolve().parents[1]
GRAPH_ID = "langgraph-opencode"
PASSWORD_ENV = "LGOC_STUDIO_TEST_OPENCODE_PASSWORD"
"""Not the default variable, so the test shows the context's ``password_env`` is used."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _langgraph_bin() -> str:
    candidate = Path(sys.executable).with_name("langgraph")
    return str(candidate) if candidate.exists() else "langgraph"


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``/ok`` on the port asked for (``langgraph dev`` moves silently if it is busy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/ok", timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"langgraph dev was not ready on {url} within {timeout:.0f} s:\n{_tail(log)}")


@pytest.fixture
def langgraph_dev(opencode_server: OpenCodeServer, tmp_path: Path) -> Iterator[str]:
    """``langgraph dev`` on a free loopback port, serving the project's graph; yields its URL."""
    assert opencode_server.password is not None
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LANGSMITH_", "LANGCHAIN_", "OPENCODE_SERVER_"))
    }
    env.update(
        {
            PASSWORD_ENV: opencode_server.password.get_secret_value(),
            "LANGSMITH_TRACING": "false",
            "LANGCHAIN_TRACING_V2": "false",
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        }
    )
    log = tmp_path / "langgraph-dev.log"
    # The project's langgraph.json with its paths made absolute, so that the server can run
    # in a directory of its own: `langgraph dev` keeps its threads in ./.langgraph_api.
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str((ROOT / dep).resolve()) for dep in config["dependencies"]]
    config["graphs"] = {name: str(ROOT / spec) for name, spec in config["graphs"].items()}
    workdir = tmp_path / "langgraph-dev"
    workdir.mkdir()
    config_path = workdir / "langgraph.json"
    config_path.write_text(json.dumps(config))
    for attempt in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    _langgraph_bin(),
                    "dev",
                    "--no-browser",
                    "--no-reload",
                    *("--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)),
                ],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, to stop it whole
            )
        try:
            _wait_ready(url, process, log, timeout=300)  # ~10 s on a quiet machine
            if f":{port}" not in _tail(log, 100_000) and attempt < 2:
                continue  # another server answered on that port: ours moved elsewhere
            yield url
            return
        finally:
            _stop(process)
    pytest.fail(f"langgraph dev did not start on a port of its own:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    except ProcessLookupError:
        pass


async def _stream(runs: Any, *args: Any, **kwargs: Any) -> list[tuple[float, str, Any]]:
    """Every part of a run's stream, with the time it arrived."""
    return [
        (time.monotonic(), part.event, part.data) async for part in runs.stream(*args, **kwargs)
    ]


@pytest.mark.opencode
async def test_a_whole_run_under_langgraph_dev_pauses_for_approval_and_completes(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    git_repo: Path,
    langgraph_dev: str,
) -> None:
    model.script(
        planner_returns(fan_in_plan()),
        worker_writes("a", {"a.txt": "alpha\n"}),
        worker_writes("b", {"b.txt": "beta\n"}),
        worker_writes("c", {"c.txt": "gamma\n"}),
        reviewer_says(repeat=True),
    )
    async with get_client(url=langgraph_dev) as client:
        (assistant,) = await client.assistants.search(graph_id=GRAPH_ID)
        schemas = await client.assistants.get_schemas(assistant["assistant_id"])
        # Studio's settings form: the run settings are the graph's context.
        context_fields = set((schemas.get("context_schema") or {}).get("properties", {}))
        assert {"server_url", "password_env", "approve_plan", "max_parallel"} <= context_fields
        context = {
            "server_url": opencode_server.url,
            "password_env": PASSWORD_ENV,
            "approve_plan": True,
            "max_parallel": 2,
        }
        thread = await client.threads.create()
        thread_id = thread["thread_id"]
        modes = ["custom", "updates"]

        # 1. Start: the planner plans, and the run pauses for the plan's approval.
        first = await _stream(
            client.runs,
            thread_id,
            GRAPH_ID,
            input={"objective": "three files", "repo": str(git_repo), "run_id": "studio-run"},
            context=context,
            stream_mode=modes,
        )
        assert not [data for _, kind, data in first if kind == "error"], first
        updates = [data for _, kind, data in first if kind == "updates"]
        nodes = [next(iter(update)) for update in updates]
        assert nodes[0] == "start"
        assert nodes[-1] == "__interrupt__"
        assert "plan" in nodes
        assert "dispatch" not in nodes
        (pause,) = updates[-1]["__interrupt__"]
        assert pause["value"]["type"] == "plan_approval"
        assert pause["value"]["run_id"] == "studio-run"
        assert [t["id"] for t in pause["value"]["plan"]["tasks"]] == ["a", "b", "c"]
        state = await client.threads.get_state(thread_id)
        assert state["next"] == ["approve_plan"]
        assert [i["value"]["type"] for task in state["tasks"] for i in task["interrupts"]] == [
            "plan_approval"
        ]
        assert not state["values"].get("tasks")  # nothing was dispatched before the approval
        assert (await client.threads.get(thread_id))["status"] == "interrupted"

        # 2. Resume with the approval: the run goes to its end, its events streaming live.
        # The context is not checkpointed: each run needs it. Here it comes from an assistant
        # that carries it, as when the settings are saved on an assistant in Studio.
        configured = await client.assistants.create(GRAPH_ID, context=context, name="offline")
        second = await _stream(
            client.runs,
            thread_id,
            configured["assistant_id"],
            command={"resume": "approve"},
            stream_mode=modes,
        )
        assert not [data for _, kind, data in second if kind == "error"], second
        events = [(at, data["event"]) for at, kind, data in second if kind == "custom"]
        kinds = [event["kind"] for _, event in events]
        assert kinds[0] == "plan"
        assert kinds.count("dispatched") == 3
        assert kinds.count("merged") == 3
        assert kinds[-1] == "finished"
        # Live: each event arrived while the run was going, before the update of the node that
        # sent it ended (the merges arrived before the final report).
        order = [
            ("custom", data["event"]["kind"]) if kind == "custom" else (kind, next(iter(data)))
            for _, kind, data in second
            if kind in ("custom", "updates")
        ]
        first_merge = order.index(("custom", "merged"))
        assert (
            order.index(("updates", "dispatch"))
            < first_merge
            < order.index(("updates", "finalize"))
        )
        first_at = events[0][0]
        finished_at = events[-1][0]
        assert finished_at - first_at > 1.0  # spread over the run, not delivered in one batch

        final = await client.threads.get_state(thread_id)
        thread_status = (await client.threads.get(thread_id))["status"]

    # 3. The thread's final state holds the report, and the work is on the integration branch.
    assert thread_status == "idle"
    assert final["next"] == []
    report = final["values"]["report"]
    assert report["status"] == "completed", report
    assert report["run_id"] == "studio-run"
    assert [(t["id"], t["status"]) for t in report["tasks"]] == [
        ("a", "merged"),
        ("b", "merged"),
        ("c", "merged"),
    ]
    branch = report["integration_branch"]
    assert branch == "lgoc/studio-run/integration"
    for name, content in {"a.txt": "alpha\n", "b.txt": "beta\n", "c.txt": "gamma\n"}.items():
        assert git(git_repo, "show", f"{branch}:{name}") == content
    # The password went through the environment only: not into the thread's state.
    password = opencode_server.password
    assert password is not None
    assert password.get_secret_value() not in str(final)


def test_the_drawing_in_the_architecture_doc_is_the_graphs_own() -> None:
    document = (ROOT / "docs" / "architecture.md").read_text()
    assert f"{MERMAID_BEGIN}\n```mermaid\n{mermaid()}```\n" in document
    # If this fails, the wiring changed: regenerate the drawing with
    # `python -m langgraph_opencode.graph.studio --write docs/architecture.md`.
    assert with_mermaid(document) == document
    nodes = [node for node in graph.nodes if not node.startswith("__")]
    assert len(nodes) == 11
    assert [node for node in nodes if f"\n| `{node}` |" not in document] == []  # all described
