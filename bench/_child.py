"""One orchestrator run in its own process, so that its peak RSS and CPU are its own.

``python -m bench._child '<json>'`` runs one of three orchestrators over a
plan of independent one-file tasks, against a server the parent started (its
password comes in ``OPENCODE_SERVER_PASSWORD``, as for any run), then prints
one JSON line of figures. The parent scripted the model.

* ``graph``: :func:`langgraph_opencode.aorchestrate` with the plan given, or
  (``planner``) asked of the planner; the default SQLite checkpointer file.
* ``direct``: the floor. The same worktrees (the project's git tools), the
  same sessions and the same worker prompts (the dispatcher's
  ``worker_prompt``, every other task listed), with plain asyncio under the same
  concurrency limit; completion is detected through the server's events with
  the project's ``send_and_wait``. Nothing is committed, merged or checkpointed.
* ``polling``: the same work, but completion is detected as in the project's
  starting research: every 5 s, ``GET /session/status`` for each running
  session's directory; a session missing from it (idle) whose last assistant
  message is final is done, and its slot goes to the next task.

Figures: ``wall_s`` (from before the orchestrator connects to the end of the
run), ``rss_kib`` (``getrusage(RUSAGE_SELF).ru_maxrss`` at exit: the process's
peak), ``rss_start_kib`` (VmRSS after imports, before the run), ``cpu_s``
(user + system CPU of the run), and for ``graph`` the checkpoint database's
bytes and the completion-detection samples (see ``bench.orchestration``).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_opencode import RunSettings, aorchestrate
from langgraph_opencode.api import checkpoint_path
from langgraph_opencode.checkpoints import RunSqliteSaver
from langgraph_opencode.core.services import services_for
from langgraph_opencode.core.supervisor import Supervisor, Tracked
from langgraph_opencode.nodes._prompts import worker_prompt
from langgraph_opencode.plan import Plan, parse_plan
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode import (
    WORKER_AGENT,
    EventHub,
    OpenCodeClient,
    send_and_wait,
)
from langgraph_opencode.tools.opencode.models import Event
from langgraph_opencode.tools.opencode.runs import judge_turn

POLL_INTERVAL = 5.0
"""The polling orchestrator's interval, as in the starting research's loop."""

_IDLE = "idle"


class _Signals:
    """When the orchestrator's event hub received each session's prompts, busy and idle signals.

    A prompt is marked when the server answered its POST (it took the prompt;
    a new directory then boots for a few hundred milliseconds before its user
    message's first ``message.updated`` and ``busy``), or by that first
    ``message.updated`` if it came first.
    """

    def __init__(self) -> None:
        self.by_session: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.prompts: set[Any] = set()

    def accepted(self, session_id: str) -> None:
        """The server answered a prompt's POST: it took the prompt (the turn starts)."""
        self.by_session[session_id].append((time.perf_counter(), "accepted"))

    def on_event(self, event: Event) -> None:
        sid = event.session_id
        if sid is None:
            return
        if event.type == "session.idle":
            self.by_session[sid].append((time.perf_counter(), _IDLE))
        elif event.type == "session.status":
            kind = str((event.properties.get("status") or {}).get("type"))
            self.by_session[sid].append((time.perf_counter(), kind))
        elif event.type == "message.updated":
            info = event.properties.get("info") or {}
            if info.get("role") == "user" and info.get("id") not in self.prompts:
                self.prompts.add(info.get("id"))
                self.by_session[sid].append((time.perf_counter(), "prompt"))

    def first_idle_before(self, sid: str, at: float) -> float | None:
        """The first idle signal of the last idle stretch before ``at``."""
        first: float | None = None
        for when, kind in self.by_session.get(sid, []):
            if when > at:
                break
            if kind != _IDLE:
                first = None
            elif first is None:
                first = when
        return first


class _ActTimes:
    """When the graph recorded each prompt's outcome (the monitor's saved update)."""

    def __init__(self) -> None:
        self.acted: dict[tuple[str, str], float] = {}
        self.steps: list[tuple[float, str]] = []

    def saw(self, writes: Sequence[tuple[str, Any]], task_path: str) -> None:
        now = time.perf_counter()
        self.steps.append((now, task_path.split(",")[-1].strip() or "?"))
        for channel, value in writes:
            jobs: list[Any] = []
            if channel == "jobs" and isinstance(value, dict):
                jobs = list(value.values())
            for job in jobs:
                if isinstance(job, dict) and job.get("outcome") is not None:
                    self.acted.setdefault((job["session_id"], job["message_id"]), now)


def _timed_saver(acts: _ActTimes) -> type[RunSqliteSaver]:
    class TimedSaver(RunSqliteSaver):
        async def aput_writes(
            self,
            config: RunnableConfig,
            writes: Sequence[tuple[str, Any]],
            task_id: str,
            task_path: str = "",
        ) -> None:
            acts.saw(writes, task_path)
            await super().aput_writes(config, writes, task_id, task_path)

    return TimedSaver


async def _graph(args: dict[str, Any], plan: Plan) -> dict[str, Any]:
    repo = await Repo.open(args["repo"])
    settings = RunSettings(
        server_url=args["server_url"], max_parallel=args["parallel"], review=args["review"]
    )
    signals, acts = _Signals(), _ActTimes()
    recorded: dict[tuple[str, str], float] = {}

    def on_outcome(item: Tracked) -> None:
        recorded.setdefault((item.job["session_id"], item.job["message_id"]), time.perf_counter())

    Supervisor.on_outcome = on_outcome  # the moment the run knows how the turn ended
    prompt_async = OpenCodeClient.prompt_async

    async def accepted(client: OpenCodeClient, session_id: str, *a: Any, **k: Any) -> str:
        message_id = await prompt_async(client, session_id, *a, **k)
        signals.accepted(session_id)
        return message_id

    OpenCodeClient.prompt_async = accepted  # type: ignore[method-assign]
    db = checkpoint_path(repo)
    db.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    # The run opens the same (cached) connections; listen to its event hub.
    (await services_for(settings)).hub.on_event = signals.on_event
    async with _timed_saver(acts).from_conn_string(str(db)) as saver:
        report = await aorchestrate(
            plan.objective,
            repo=repo.root,
            plan=None if args["planner"] else plan,
            settings=settings,
            server_url=args["server_url"],
            checkpointer=saver,
        )
    wall = time.perf_counter() - began
    detection = []
    for (sid, _message), known in recorded.items():
        idle = signals.first_idle_before(sid, known)
        if idle is not None:
            detection.append(known - idle)
    to_checkpoint = []
    slowest: list[tuple[float, list[str]]] = []
    for (sid, _message), acted in acts.acted.items():
        idle = signals.first_idle_before(sid, acted)
        if idle is not None:
            to_checkpoint.append(acted - idle)
            # The nodes that saved their writes meanwhile: where the time went.
            between = [f"{n}@{(t - idle) * 1000:.0f}" for t, n in acts.steps if idle < t <= acted]
            slowest.append((acted - idle, between))
    slowest.sort(reverse=True)
    turns = 0.0
    for marks in signals.by_session.values():
        busy: float | None = None
        for when, kind in sorted(marks):
            if kind != _IDLE and busy is None:
                busy = when
            elif kind == _IDLE and busy is not None:
                turns += when - busy
                busy = None
    merged = sum(1 for t in report.tasks if t.status == "merged")
    return {
        "wall_s": wall,
        "status": report.status,
        "ok": merged,
        "detection_s": detection,
        "checkpoint_s": to_checkpoint,
        "slowest_checkpoints": slowest[:3],
        "turns_s": turns,
        "db_bytes": db.stat().st_size
        + sum(p.stat().st_size for p in db.parent.glob(db.name + "-*")),
    }


async def _direct(args: dict[str, Any], plan: Plan) -> dict[str, Any]:
    run = (await Repo.open(args["repo"])).run("bench-direct")
    password = os.environ.get("OPENCODE_SERVER_PASSWORD")
    began = time.perf_counter()
    async with (
        OpenCodeClient(args["server_url"], password=password) as client,
        EventHub(client) as hub,
    ):
        await hub.wait_connected()
        slots = asyncio.Semaphore(args["parallel"])

        async def one(task_id: str) -> bool:
            async with slots:
                worktree = await run.create_task_worktree(task_id)
                session = await client.create_session(worktree.path, title=f"task {task_id}")
                outcome = await send_and_wait(
                    client,
                    hub,
                    session.id,
                    worktree.path,
                    worker_prompt(plan, plan.task(task_id)),
                    agent=WORKER_AGENT,
                )
                if not outcome.ok:
                    print(outcome, file=sys.stderr)
                return outcome.ok

        results = await asyncio.gather(*(one(t.id) for t in plan.tasks))
    return {"wall_s": time.perf_counter() - began, "ok": sum(results)}


async def _polling(args: dict[str, Any], plan: Plan) -> dict[str, Any]:
    run = (await Repo.open(args["repo"])).run("bench-polling")
    password = os.environ.get("OPENCODE_SERVER_PASSWORD")
    began = time.perf_counter()
    ok = 0
    async with OpenCodeClient(args["server_url"], password=password) as client:
        waiting = [t.id for t in plan.tasks]
        running: dict[str, tuple[str, Path, str]] = {}  # task -> session, directory, message
        while waiting or running:
            while waiting and len(running) < args["parallel"]:
                task_id = waiting.pop(0)
                worktree = await run.create_task_worktree(task_id)
                session = await client.create_session(worktree.path, title=f"task {task_id}")
                message = await client.prompt_async(
                    session.id,
                    worktree.path,
                    worker_prompt(plan, plan.task(task_id)),
                    agent=WORKER_AGENT,
                )
                running[task_id] = (session.id, worktree.path, message)
            await asyncio.sleep(POLL_INTERVAL)
            for task_id, (sid, directory, message) in list(running.items()):
                status = (await client.status(directory)).get(sid)
                if status is not None and status.type != "idle":
                    continue
                messages = await client.messages(sid, directory, limit=20)
                outcome = judge_turn(sid, messages, message, idle=True)
                if outcome is None or (outcome.kind == "incomplete" and not outcome.message_id):
                    continue  # not started yet (directory boot)
                ok += outcome.ok
                del running[task_id]
    return {"wall_s": time.perf_counter() - began, "ok": ok}


def _vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _main(args: dict[str, Any]) -> dict[str, Any]:
    plan = parse_plan(args["plan"])
    start_rss = _vm_rss_kib()
    before = resource.getrusage(resource.RUSAGE_SELF)
    runner = {"graph": _graph, "direct": _direct, "polling": _polling}[args["mode"]]
    result = await runner(args, plan)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        rss_start_kib=start_rss,
        rss_kib=after.ru_maxrss,
        cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_main(json.loads(sys.argv[1])))))
