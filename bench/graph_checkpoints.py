"""Checkpoint cost per node, and wall time, of a three-task run (A, B in parallel, C after).

Runs the real graph against a real `opencode serve` and the scripted model
(answering at once), with the default SQLite checkpointer, then reads the
checkpoint database: how many checkpoints and pending writes each node made,
and their bytes.
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_opencode import RunSettings, aorchestrate, compile_graph
from langgraph_opencode.api import checkpoint_path
from langgraph_opencode.testing import (
    ScriptedModelServer,
    fan_in_plan,
    make_repo,
    planner_returns,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode import OpenCodeServer, build_config

PLAN = fan_in_plan()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo_path = make_repo(Path(tmp) / "repo")
        model = ScriptedModelServer(
            planner_returns(PLAN),
            *(worker_writes(t, {f"{t}.txt": f"{t}\n"}) for t in "abc"),
            reviewer_says(True, repeat=True),
        )
        with model:
            config = build_config(extra=model.provider_config())
            async with OpenCodeServer(isolated=True, config=config) as server:
                began = time.perf_counter()
                report = await aorchestrate(
                    "three files",
                    repo=repo_path,
                    server_url=server.url,
                    password=server.password,
                    settings=RunSettings(max_parallel=4),
                )
                wall = time.perf_counter() - began
        assert report.status == "completed", report.to_markdown()
        db = checkpoint_path(await Repo.open(repo_path))
        sizes = _sizes(db)
        per_node: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
            graph = compile_graph(saver)
            config: RunnableConfig = {"configurable": {"thread_id": report.run_id}}
            history = [snap async for snap in graph.aget_state_history(config)][::-1]
        for before, after in itertools.pairwise(history):
            nodes = ",".join(sorted(before.next)) or "?"
            checkpoint_id = after.config["configurable"]["checkpoint_id"]
            per_node[nodes][0] += 1
            per_node[nodes][1] += sizes["checkpoint"].get(checkpoint_id, 0)
        for node, count, size in sizes["writes"]:
            per_node[node][2] += count
            per_node[node][3] += size
        print(
            f"Three-task run: wall {wall:.2f} s, status {report.status}, "
            f"{len(history)} checkpoints, database {db.stat().st_size / 1024:.0f} KiB"
        )
        print()
        print("| node (step) | checkpoints | checkpoint bytes | writes | write bytes |")
        print("|---|---|---|---|---|")
        for node, (n, size, w, wsize) in sorted(per_node.items()):
            print(f"| {node} | {n} | {size} | {w} | {wsize} |")


def _sizes(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(db)
    checkpoints = dict(
        con.execute("select checkpoint_id, length(checkpoint) + length(metadata) from checkpoints")
    )
    writes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task_path, size in con.execute("select task_path, length(value) from writes"):
        node = (task_path or "?").split(",")[-1].strip() or "?"
        writes[node][0] += 1
        writes[node][1] += size
    con.close()
    return {"checkpoint": checkpoints, "writes": [(n, c, s) for n, (c, s) in writes.items()]}


if __name__ == "__main__":
    import asyncio

    asyncio.run(main())
