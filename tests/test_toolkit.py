"""OpenCode operations as LangChain tools, and their runs showing up in traces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_opencode import RunSettings, compile_graph
from langgraph_opencode.core.services import close_services, register_server
from langgraph_opencode.testing import (
    ScriptedModelServer,
    Step,
    Text,
    one_task_plan,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.opencode import EventHub, OpenCodeClient, OpenCodeServer
from langgraph_opencode.tools.opencode.runs import wait_for_outcome
from langgraph_opencode.tools.toolkit import OpenCodeToolkit

pytestmark = pytest.mark.opencode


async def test_tools_drive_a_session_end_to_end(
    model: ScriptedModelServer,
    opencode: OpenCodeClient,
    opencode_events: EventHub,
    git_repo: Path,
) -> None:
    model.script(Step(Text("pong"), user="ping from a tool"))
    toolkit = OpenCodeToolkit(opencode)
    assert [t.name for t in toolkit.get_tools()] == [
        "opencode_create_session",
        "opencode_send_prompt",
        "opencode_session_state",
        "opencode_abort_session",
        "opencode_reply_permission",
    ]
    session_id = await toolkit.create_session.ainvoke({"directory": str(git_repo), "title": "t"})
    with opencode_events.subscribe(session_ids={session_id}) as sub:
        message_id = await toolkit.send_prompt.ainvoke(
            {
                "session_id": session_id,
                "directory": str(git_repo),
                "text": "ping from a tool",
                "agent": "build",
            }
        )
        await wait_for_outcome(opencode, sub, session_id, git_repo, message_id, timeout=300)
    state = await toolkit.session_state.ainvoke(
        {"session_id": session_id, "directory": str(git_repo), "message_id": message_id}
    )
    assert state["status"] == "idle"
    assert state["outcome"]["kind"] == "ok"
    assert state["outcome"]["text"] == "pong"


class _ToolRuns(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []

    async def on_tool_start(
        self, serialized: dict[str, Any], input_str: str, **kwargs: Any
    ) -> None:
        self.names.append(str(kwargs.get("name") or serialized.get("name")))


async def test_every_opencode_call_of_a_run_is_a_tool_run_in_the_trace(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    plan = one_task_plan()
    model.script(
        worker_writes("one", {"one.txt": "distinctive-7f3a\n"}), reviewer_says(True, task_id="one")
    )
    register_server(opencode_server.url, opencode_server.password)
    runs = _ToolRuns()
    try:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
            graph = compile_graph(saver)
            config: RunnableConfig = {"configurable": {"thread_id": "traced"}, "callbacks": [runs]}
            result = await graph.ainvoke(
                {"objective": "one file", "repo": str(git_repo), "plan": plan, "run_id": "traced"},
                config,
                context=RunSettings(server_url=opencode_server.url),
            )
            history = [json.dumps(snap.values) async for snap in graph.aget_state_history(config)]
    finally:
        await close_services(opencode_server.url)
        register_server(opencode_server.url, None)
    assert result["report"]["status"] == "completed"
    # The report is also written next to the run's checkpoints, as JSON and markdown.
    json_file, md_file = (Path(f) for f in result["report"]["files"])
    assert json.loads(json_file.read_text())["status"] == "completed"
    assert "# Run `traced`: completed" in md_file.read_text()
    # A worker and a reviewer session, each made and prompted through the tools.
    assert runs.names.count("opencode_create_session") == 2
    assert runs.names.count("opencode_send_prompt") == 2
    # The reviewer saw the diff, but the diff was never put in the checkpointed state.
    review = next(
        r for r in model.chat_requests() if "Review task `one`" in r.request.last_user_text
    )
    assert "+distinctive-7f3a" in review.request.last_user_text
    assert len(history) > 5
    assert not any("+distinctive-7f3a" in values for values in history)
