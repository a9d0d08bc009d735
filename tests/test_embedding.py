"""The orchestration graph as a subgraph of a larger graph (the recipe of docs/embedding.md).

A parent graph with its own state and its own checkpointer runs the
orchestration graph, compiled without a checkpointer, so that the child's
checkpoints go to the parent's saver and the child's plan-approval interrupt
pauses the parent. Two ways: called from a node of the parent that maps the
parent's state to the child's input and takes the report back, or added
directly as a node of a parent that shares the child's input keys.
"""

from __future__ import annotations

import operator
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import TypedDict

from langgraph_opencode import RunSettings, build_graph
from langgraph_opencode.core.services import close_services, register_server
from langgraph_opencode.testing import (
    ScriptedModelServer,
    git,
    planner_returns,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.opencode import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.usefixtures("no_blocking_calls")]


def _task(task_id: str, depends_on: list[str]) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": f"Write {task_id}",
        "instructions": f"Create {task_id}.txt",
        "depends_on": depends_on,
        "files": [f"{task_id}.txt"],
        "checks": [f"test -f {task_id}.txt"],
    }


# -- 1. called from a node of a parent with its own state --------------------------------------


class ParentState(TypedDict, total=False):
    request: str
    repo: str
    result: dict[str, Any] | None
    # The same name as the child's own ``events`` log, with another reducer: nothing of
    # the child's may land in it.
    events: Annotated[list[str], operator.add]


def build_parent() -> StateGraph[Any, Any, Any, Any]:
    """A parent graph whose ``orchestrate`` node runs the orchestration graph."""
    orchestration = build_graph().compile()  # no checkpointer: the parent's is used

    async def receive(state: ParentState) -> dict[str, Any]:
        return {"events": [f"received: {state['request']}"]}

    async def orchestrate(
        state: ParentState, config: RunnableConfig, runtime: Runtime[RunSettings]
    ) -> dict[str, Any]:
        output = await orchestration.ainvoke(
            {"objective": state["request"], "repo": state["repo"]},
            config,
            context=runtime.context,
        )
        return {"result": output["report"]}

    async def announce(state: ParentState) -> dict[str, Any]:
        return {"events": [f"done: {(state.get('result') or {}).get('status')}"]}

    parent: StateGraph[Any, Any, Any, Any] = StateGraph(ParentState, context_schema=RunSettings)
    parent.add_node("receive", receive)
    parent.add_node("orchestrate", orchestrate)
    parent.add_node("announce", announce)
    parent.add_edge(START, "receive")
    parent.add_edge("receive", "orchestrate")
    parent.add_edge("orchestrate", "announce")
    parent.add_edge("announce", END)
    return parent


async def test_subgraph_called_from_a_node_pauses_resumes_and_checkpoints_in_the_parent(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    plan = {
        "objective": "two files",
        "summary": "one, then two",
        "tasks": [_task("one", []), _task("two", ["one"])],
    }
    model.script(
        planner_returns(plan),
        worker_writes("one", {"one.txt": "first\n"}),
        worker_writes("two", {"two.txt": "second\n"}),
        reviewer_says(repeat=True),
    )
    register_server(opencode_server.url, opencode_server.password)
    settings = RunSettings(server_url=opencode_server.url, approve_plan=True)
    config: RunnableConfig = {"configurable": {"thread_id": "parent-1"}}
    try:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "parent.sqlite")) as saver:
            parent = build_parent().compile(checkpointer=saver)

            # The child's plan approval pauses the parent, before any work.
            first = await parent.ainvoke(
                {"request": "two files", "repo": str(git_repo)}, config, context=settings
            )
            (pause,) = first["__interrupt__"]
            assert pause.value["type"] == "plan_approval"
            assert [t["id"] for t in pause.value["plan"]["tasks"]] == ["one", "two"]
            paused = await parent.aget_state(config, subgraphs=True)
            assert paused.next == ("orchestrate",)
            (task,) = paused.tasks
            assert [i.value["type"] for i in task.interrupts] == ["plan_approval"]
            child_state = task.state
            assert child_state is not None
            assert not isinstance(child_state, dict)
            assert child_state.next == ("approve_plan",)
            assert child_state.values["objective"] == "two files"
            assert not child_state.values.get("tasks")  # nothing dispatched yet
            assert "result" not in paused.values

            # Resuming the parent resumes the child, which runs to the end; the child's
            # events reach the parent's stream, under the child's namespace.
            custom = [
                (namespace, chunk["event"]["kind"])
                async for namespace, mode, chunk in parent.astream(
                    Command(resume="approve"),
                    config,
                    context=settings,
                    stream_mode=["custom", "updates"],
                    subgraphs=True,
                )
                if mode == "custom"
            ]
            final = (await parent.aget_state(config)).values

            namespaces = Counter(
                [
                    saved.config["configurable"]["checkpoint_ns"]
                    async for saved in saver.alist({"configurable": {"thread_id": "parent-1"}})
                ]
            )
            history = [snap.next async for snap in parent.aget_state_history(config)]
    finally:
        await close_services(opencode_server.url)
        register_server(opencode_server.url, None)

    report = final["result"]
    assert report["status"] == "completed", report
    assert [(t["id"], t["status"]) for t in report["tasks"]] == [
        ("one", "merged"),
        ("two", "merged"),
    ]
    assert git(git_repo, "show", f"{report['integration_branch']}:one.txt") == "first\n"
    assert git(git_repo, "show", f"{report['integration_branch']}:two.txt") == "second\n"
    # The parent's own keys: its log holds exactly its own two entries (none of the child's
    # events, nothing twice), and none of the child's keys leaked into the parent's state.
    assert final["events"] == ["received: two files", "done: completed"]
    kinds = [kind for _, kind in custom]
    assert kinds.count("dispatched") == 2
    assert kinds.count("merged") == 2
    assert kinds[-1] == "finished"
    assert {namespace[0].split(":")[0] for namespace, _ in custom} == {"orchestrate"}
    assert set(final) == {"request", "repo", "result", "events"}
    # Every checkpoint is in the parent's saver: the parent's (namespace "") and all of the
    # child's steps (namespace "orchestrate:<task id>"); the default per-repository SQLite
    # file of orchestrate() was not used.
    (child_ns,) = [ns for ns in namespaces if ns]
    assert child_ns.startswith("orchestrate:")
    assert namespaces[""] == len(history) >= 5
    assert namespaces[child_ns] > 10
    assert history[:2] == [(), ("announce",)]
    assert not (git_repo / ".git" / "langgraph-opencode" / "checkpoints.sqlite").exists()


# -- 2. added directly as a node of a parent that shares its input keys -----------------------


class SharingState(TypedDict, total=False):
    objective: str
    repo: str
    report: dict[str, Any] | None
    events: Annotated[list[str], operator.add]
    """The parent's own log, named like the child's (the subgraph pitfall)."""


async def test_subgraph_as_a_node_returns_only_its_report_to_the_parent(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    plan = {"objective": "one file", "summary": "", "tasks": [_task("solo", [])]}
    model.script(
        planner_returns(plan),
        worker_writes("solo", {"solo.txt": "alone\n"}),
        reviewer_says(True, task_id="solo"),
    )

    async def log(state: SharingState) -> dict[str, Any]:
        return {"events": [f"report: {(state.get('report') or {}).get('status')}"]}

    parent: StateGraph[Any, Any, Any, Any] = StateGraph(SharingState, context_schema=RunSettings)
    parent.add_node("orchestrate", build_graph().compile())
    parent.add_node("log", log)
    parent.add_edge(START, "orchestrate")
    parent.add_edge("orchestrate", "log")
    parent.add_edge("log", END)

    register_server(opencode_server.url, opencode_server.password)
    settings = RunSettings(server_url=opencode_server.url, approve_plan=True)
    config: RunnableConfig = {"configurable": {"thread_id": "parent-2"}}
    try:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "parent.sqlite")) as saver:
            graph = parent.compile(checkpointer=saver)
            chunks = [
                chunk
                async for chunk in graph.astream(
                    {"objective": "one file", "repo": str(git_repo), "events": ["started"]},
                    config,
                    context=settings,
                    stream_mode="updates",
                    subgraphs=True,
                )
            ]
            # The interrupt shows in the child's namespace and in the parent's.
            interrupts = [
                (namespace, update["__interrupt__"][0].value["type"])
                for namespace, update in chunks
                if "__interrupt__" in update
            ]
            assert [len(namespace) for namespace, _ in interrupts] == [1, 0], interrupts
            assert interrupts[0][0][0].startswith("orchestrate:")
            assert {kind for _, kind in interrupts} == {"plan_approval"}
            final = await graph.ainvoke(Command(resume="approve"), config, context=settings)
    finally:
        await close_services(opencode_server.url)
        register_server(opencode_server.url, None)

    assert final["report"]["status"] == "completed", final["report"]
    assert git(git_repo, "show", f"{final['report']['integration_branch']}:solo.txt") == "alone\n"
    # The child's output schema is ``report`` only: the parent's log is not extended with
    # the child's events, and the parent's input keys are not written back twice.
    assert final["events"] == ["started", "report: completed"]
    assert final["objective"] == "one file"
    assert set(final) == {"objective", "repo", "report", "events"}
