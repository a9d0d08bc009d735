"""The default SQLite store writes shorter channel versions that sort as LangGraph's do.

``RunSqliteSaver`` (``checkpoints.py``) writes each version as its 32-digit
counter alone, where LangGraph's SQLite saver adds a random fraction (50
characters in all). A run goes on under either saver: begun by LangGraph's
(an earlier version of this package) and resumed by ours, or begun by ours and
continued by a LangGraph user's ``AsyncSqliteSaver`` on the same file. Both on
a real SQLite file, with a graph that pauses (``interrupt``) and is resumed by
a second saver, as a new process would. A new file also takes pages of
``PAGE_SIZE`` bytes (SQLite's default for older ones).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from langgraph_opencode.checkpoints import PAGE_SIZE, RunSqliteSaver


class _State(TypedDict, total=False):
    steps: list[str]
    answer: str


def _graph() -> StateGraph[Any, Any, Any, Any]:
    def ask(state: _State) -> dict[str, Any]:
        return {"answer": interrupt("go on?"), "steps": [*state.get("steps", []), "ask"]}

    def finish(state: _State) -> dict[str, Any]:
        return {"steps": [*state.get("steps", []), "finish"]}

    graph: StateGraph[Any, Any, Any, Any] = StateGraph(_State)
    graph.add_node("ask", ask)
    graph.add_node("finish", finish)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "finish")
    graph.add_edge("finish", END)
    return graph


async def _versions(saver: AsyncSqliteSaver, thread: str) -> list[str]:
    saved = await saver.aget_tuple({"configurable": {"thread_id": thread}})
    assert saved is not None
    return [str(v) for v in saved.checkpoint["channel_versions"].values()]


async def _pause(saver: AsyncSqliteSaver, thread: str) -> None:
    config: Any = {"configurable": {"thread_id": thread}}
    paused = await _graph().compile(checkpointer=saver).ainvoke({"steps": []}, config)
    assert "__interrupt__" in paused


async def _resume(saver: AsyncSqliteSaver, thread: str) -> None:
    config: Any = {"configurable": {"thread_id": thread}}
    done = await _graph().compile(checkpointer=saver).ainvoke(Command(resume="yes"), config)
    assert done == {"steps": ["ask", "finish"], "answer": "yes"}


async def test_our_versions_are_the_counter_alone(tmp_path: Path) -> None:
    db = str(tmp_path / "checkpoints.sqlite")
    async with RunSqliteSaver.from_conn_string(db) as saver:
        await _pause(saver, "ours")
        paused = await _versions(saver, "ours")
    async with RunSqliteSaver.from_conn_string(db) as saver:  # a resume in a new process
        await _resume(saver, "ours")
        done = await _versions(saver, "ours")
    for version in paused + done:
        assert len(version) == 32, version
        assert version.isdigit(), version
    assert max(done) > max(paused)


async def test_a_run_begun_by_langgraphs_saver_resumes_under_ours(tmp_path: Path) -> None:
    db = str(tmp_path / "checkpoints.sqlite")
    async with AsyncSqliteSaver.from_conn_string(db) as saver:  # how earlier versions saved
        await _pause(saver, "old")
        before = await _versions(saver, "old")
    assert all("." in v for v in before)  # LangGraph's: counter and fraction
    async with RunSqliteSaver.from_conn_string(db) as saver:
        await _resume(saver, "old")
        after = await _versions(saver, "old")
    assert max(after) > max(before)


async def test_a_run_begun_by_ours_goes_on_under_langgraphs_saver(tmp_path: Path) -> None:
    db = str(tmp_path / "checkpoints.sqlite")
    async with RunSqliteSaver.from_conn_string(db) as saver:
        await _pause(saver, "shared")
        before = await _versions(saver, "shared")
    async with AsyncSqliteSaver.from_conn_string(db) as saver:  # a LangGraph user's
        await _resume(saver, "shared")
        after = await _versions(saver, "shared")
    assert max(after) > max(before)


async def test_a_new_file_takes_small_pages_and_an_older_file_keeps_its_own(
    tmp_path: Path,
) -> None:
    new, old = str(tmp_path / "new.sqlite"), str(tmp_path / "old.sqlite")
    async with AsyncSqliteSaver.from_conn_string(old) as saver:  # made by an earlier version
        await _pause(saver, "old")
    for db in (new, old):
        async with RunSqliteSaver.from_conn_string(db) as saver:
            await _pause(saver, "run")
    with contextlib.closing(sqlite3.connect(new)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
    with contextlib.closing(sqlite3.connect(old)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)  # SQLite's default
    async with RunSqliteSaver.from_conn_string(old) as saver:
        await _resume(saver, "old")
