"""Checkpoint database bytes per task, for N independent one-file tasks.

Runs the real graph (``aorchestrate`` with the plan given, review off, no
acceptance checks, ``--parallel`` 4) against a real `opencode serve` and the
scripted model, with the default SQLite checkpointer, then prints the size of
the checkpoint file with its WAL files, per task. Linear growth keeps the
per-task figure flat as N grows; a state copied whole into every checkpoint
makes it grow with N.

    python -m bench.checkpoint_growth 8 32
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from langgraph_opencode import RunSettings, aorchestrate
from langgraph_opencode.api import checkpoint_path
from langgraph_opencode.testing import (
    ScriptedModelServer,
    independent_plan,
    make_repo,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode import OpenCodeServer, build_config

__all__ = ["checkpoint_bytes", "main", "run_tasks"]


def checkpoint_bytes(db: Path) -> int:
    """The SQLite file's bytes with its ``-wal`` and ``-shm`` files."""
    return db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob(db.name + "-*"))


async def run_tasks(
    n: int, model: ScriptedModelServer, server: OpenCodeServer, repo: Path, *, parallel: int = 4
) -> int:
    """Run ``n`` independent one-file tasks in ``repo``; the checkpoint database's bytes."""
    ids = [f"t{i:02d}" for i in range(1, n + 1)]
    model.reset(*(worker_writes(t, {f"{t}.txt": f"{t}\n"}) for t in ids))
    report = await aorchestrate(
        f"{n} files",
        repo=repo,
        plan=independent_plan(ids),
        server_url=server.url,
        password=server.password,
        settings=RunSettings(review=False, max_parallel=parallel),
    )
    merged = sum(1 for t in report.tasks if t.status == "merged")
    if report.status != "completed" or merged != n:
        raise RuntimeError(f"N={n}: {merged} merged, status {report.status}")
    return checkpoint_bytes(checkpoint_path(await Repo.open(repo)))


async def main(ns: Sequence[int] = (8, 32)) -> list[str]:
    lines = ["| N | checkpoint DB KiB | KiB per task |", "|---|---|---|"]
    with ScriptedModelServer() as model, tempfile.TemporaryDirectory() as tmp:
        config = build_config(extra=model.provider_config())
        async with OpenCodeServer(isolated=True, config=config) as server:
            for n in ns:
                size = await run_tasks(n, model, server, make_repo(Path(tmp) / f"repo-{n}"))
                lines.append(f"| {n} | {size / 1024:.0f} | {size / 1024 / n:.1f} |")
                print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    import asyncio

    print("\n".join(asyncio.run(main([int(a) for a in sys.argv[1:]] or (8, 32)))))
