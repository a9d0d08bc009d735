"""The orchestrator as a child process that tests kill, and what they check afterwards.

Shared by the crash tests (``test_graph_resume``, ``test_reliability_crash``).
The child is ``tests/_orchestrator_process.py``; it prints ``EVENT <json>``
lines and, at the end, ``REPORT <json>``. Its checkpoints go to the default
SQLite file in the repository's ``.git``, which :func:`checkpointed_next` reads
to tell where a kill landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from langgraph_opencode.api import checkpoint_path
from langgraph_opencode.checkpoints import RunSqliteSaver
from langgraph_opencode.graph.builder import compile_graph
from langgraph_opencode.testing import (
    Conversation,
    Hang,
    RecordedRequest,
    Reply,
    ScriptedModelServer,
    ScriptEntry,
    Step,
    StructuredOutput,
    Text,
    ToolCall,
    ToolCalls,
    git,
    task_prompt,
)
from langgraph_opencode.tools.git import GitRun, Repo
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import PLANNER_PROMPT_HEADER, REVIEWER_PROMPT_HEADER
from langgraph_opencode.tools.opencode.server import OpenCodeServer

HELPER = Path(__file__).with_name("_orchestrator_process.py")
PASSWORD_ENV = "LGOC_TEST_OPENCODE_PASSWORD"  # as in _orchestrator_process.py
SETTINGS_ENV = "LGOC_TEST_SETTINGS"  # as in _orchestrator_process.py
TIMEOUT = 300.0
"""Bound of every wait for something the run does: a guard against hangs, not a
measure of speed (a step that takes a second on a quiet machine can take far
longer on a loaded one)."""


# -- script pieces: each worker writes ``<id>.txt`` -----------------------------------

VERDICT = {"approved": True, "findings": [], "feedback": "Looks good."}


def content(task_id: str, version: int = 1) -> str:
    """What worker ``task_id`` writes into ``<id>.txt`` (``version`` > 1: in a rework round)."""
    return f"content of {task_id}\n" if version == 1 else f"content of {task_id}, v{version}\n"


def write(task_id: str, version: int = 1) -> ToolCalls:
    """Worker ``task_id``'s first answer: write ``<id>.txt``."""
    return ToolCalls(ToolCall.write(f"{task_id}.txt", content(task_id, version)))


def done(task_id: str) -> Text:
    """Worker ``task_id``'s last answer."""
    return Text(f"Task {task_id} done.")


def worker(
    task_id: str,
    *,
    first: Reply | None = None,
    last: Reply | None = None,
    user: str | None = None,
) -> Conversation:
    """Worker ``task_id`` writes ``<id>.txt``, then says it is done (either reply replaced).

    ``user``: what the prompt contains, if not just the task's header (e.g. a rework's).
    """
    return Conversation(
        first or write(task_id),
        Step(last or done(task_id), after_tool="write"),
        user=user or task_prompt(task_id),
        name=f"worker {task_id}" + (f" ({user})" if user else ""),
    )


def reviewer(task_id: str, *, reply: Reply | None = None) -> Step:
    """The reviewer approves task ``task_id``, once (a second review would not match)."""
    return Step(
        reply or StructuredOutput(VERDICT),
        system=REVIEWER_PROMPT_HEADER,
        user=f"Review task `{task_id}`",
        tool="StructuredOutput",
        name=f"reviewer {task_id}",
    )


# -- the orchestrator's process --------------------------------------------------


@dataclass
class Child:
    """One orchestrator process and what it printed."""

    name: str
    process: asyncio.subprocess.Process
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        assert self.process.stdout is not None
        try:
            async for raw in self.process.stdout:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.changed.set()
        finally:
            self.changed.set()  # the output ended: wake any waiter

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events printed so far."""
        return [
            json.loads(line.removeprefix("EVENT "))
            for line in self.lines
            if line.startswith("EVENT ")
        ]

    @property
    def report(self) -> dict[str, Any] | None:
        for line in reversed(self.lines):
            if line.startswith("REPORT "):
                return json.loads(line.removeprefix("REPORT "))  # type: ignore[no-any-return]
        return None

    def output(self) -> str:
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return (
            f"--- {self.name} stdout\n" + "\n".join(self.lines) + f"\n--- stderr\n{stderr[-4000:]}"
        )

    async def printed(self, what: str, where: Callable[[dict[str, Any]], bool]) -> None:
        """Wait until the child prints an event that ``where`` accepts."""
        deadline = time.monotonic() + TIMEOUT
        while not any(where(e) for e in self.events):
            if self.process.returncode is not None or (self.reader and self.reader.done()):
                pytest.fail(f"{self.name} ended before it printed {what}\n{self.output()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{self.name} did not print {what} within {TIMEOUT} s\n{self.output()}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def crash(self) -> None:
        """SIGKILL the orchestrator's process, as a crash would.

        Only that process: a git command it started runs to its end, as it
        would after a real crash of the orchestrator.
        """
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self._drain()

    async def cleanup(self) -> None:
        """Kill the process and whatever it started and left behind (its process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        await self._drain()

    async def _drain(self) -> None:
        if self.reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.reader), TIMEOUT)

    async def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.cleanup()
            pytest.fail(f"{self.name} did not finish within {timeout} s\n{self.output()}")
        if self.reader is not None:
            await self.reader
        return code


async def spawn(
    name: str,
    tmp_path: Path,
    server: OpenCodeServer,
    *args: str,
    settings: Mapping[str, Any] | None = None,
) -> Child:
    """Start the orchestrator helper; the password goes through the environment.

    ``settings`` are ``RunSettings`` fields for the child (JSON through the environment).
    """
    env = {**os.environ, PASSWORD_ENV: server.password.get_secret_value()}
    if settings:
        env[SETTINGS_ENV] = json.dumps(dict(settings))
    stderr_path = tmp_path / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HELPER),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            start_new_session=True,  # its own process group, to kill what it started too
        )
    child = Child(name, process, stderr_path)
    child.reader = asyncio.create_task(child.read())
    return child


@contextlib.asynccontextmanager
async def cleaning_up(children: list[Child], hangs: Iterable[Hang]) -> Any:
    """On the way out, release every hang and kill every child; on failure show their output."""
    try:
        yield
    except BaseException:
        for child in children:
            await child.cleanup()
            print(child.output())  # shown in the failure report
        raise
    finally:
        for hang in hangs:
            hang.release()  # a failed test must not leave OpenCode waiting on the model
        for child in children:
            await child.cleanup()


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not reaped yet, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


# -- waiting for the run, from outside --------------------------------------------


async def hanging(*hangs: Hang) -> None:
    """Wait until a model request hangs on each of ``hangs``."""
    for hang in hangs:
        if not await asyncio.to_thread(hang.wait_until_hanging, TIMEOUT):
            pytest.fail(f"no request hung on {hang} within {TIMEOUT} s")


async def requested(model: ScriptedModelServer, where: Callable[[RecordedRequest], bool]) -> None:
    """Wait until the model received a request that ``where`` accepts."""
    await asyncio.to_thread(model.wait_for_requests, 1, where=where, timeout=TIMEOUT)


async def until(what: str, condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` (git refs, session status) in a bounded loop."""
    deadline = time.monotonic() + TIMEOUT
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {TIMEOUT} s for {what}")
        await asyncio.sleep(0.02)


def review_request(task_id: str) -> Callable[[RecordedRequest], bool]:
    def where(record: RecordedRequest) -> bool:
        request = record.request if record.is_chat else None
        return (
            request is not None
            and REVIEWER_PROMPT_HEADER in request.system
            and f"Review task `{task_id}`" in request.last_user_text
        )

    return where


def session_of(model: ScriptedModelServer, task_id: str, *, reviewer: bool = False) -> str:
    """The session of ``task_id``'s worker (or its latest reviewer), as the model saw it."""
    found = ""
    for key, records in model.conversations().items():
        text = records[0].request.first_user_text
        review = f"Review task `{task_id}`" in text
        work = task_prompt(task_id) in text and "Review task" not in text
        if review if reviewer else work:
            found = key
    role = "reviewer" if reviewer else "worker"
    assert found, f"no {role} session of {task_id} reached the model"
    return found


async def has_file(repo: Path, branch: str, path: str) -> bool:
    process = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(repo),
        "cat-file",
        "-e",
        f"refs/heads/{branch}:{path}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0


async def checkpointed_next(repo: Path, run_id: str) -> tuple[str, ...]:
    """The nodes a resume of the run starts with.

    Usually the last checkpoint's ``next``. A kill between a node's saved
    writes and the next checkpoint leaves ``next`` empty; then the resume
    applies those writes and runs the nodes they lead to (``branch:to:<node>``).
    """
    config: Any = {"configurable": {"thread_id": run_id}}
    async with RunSqliteSaver.from_conn_string(
        str(checkpoint_path(await Repo.open(repo)))
    ) as saver:
        snapshot = await compile_graph(saver).aget_state(config)
        if snapshot.next:
            return tuple(snapshot.next)
        saved = await saver.aget_tuple(config)
    writes = saved.pending_writes if saved is not None else None
    return tuple(
        sorted(
            {
                channel.removeprefix("branch:to:")
                for _, channel, _ in writes or ()
                if channel.startswith("branch:to:")
            }
        )
    )


async def checkpointed_values(repo: Path, run_id: str) -> dict[str, Any]:
    """The run's state as last checkpointed."""
    config: Any = {"configurable": {"thread_id": run_id}}
    async with RunSqliteSaver.from_conn_string(
        str(checkpoint_path(await Repo.open(repo)))
    ) as saver:
        return dict((await compile_graph(saver).aget_state(config)).values)


async def edit_checkpoint(repo: Path, run_id: str, values: dict[str, Any], as_node: str) -> None:
    """Write ``values`` into the run's state as if node ``as_node`` had returned them."""
    config: Any = {"configurable": {"thread_id": run_id}}
    async with RunSqliteSaver.from_conn_string(
        str(checkpoint_path(await Repo.open(repo)))
    ) as saver:
        await compile_graph(saver).aupdate_state(config, values, as_node=as_node)


def hangs_of(script: Iterable[ScriptEntry]) -> list[Hang]:
    """Every :class:`Hang` reply in a script."""
    replies = []
    for entry in script:
        steps = entry.steps if isinstance(entry, Conversation) else (entry,)
        replies += [s.reply for s in steps]
    return [r for r in replies if isinstance(r, Hang)]


@dataclass
class Ctx:
    """What a kill point needs: the model, the server, the repository and the run's git side."""

    model: ScriptedModelServer
    opencode: OpenCodeClient
    repo: Path
    run: GitRun


async def session_ended(ctx: Ctx, task_id: str, *, reviewer: bool = False) -> None:
    """Wait until ``task_id``'s worker (or latest reviewer) session is no longer busy."""
    session = session_of(ctx.model, task_id, reviewer=reviewer)
    directory = await ctx.run.task_path(task_id)

    async def idle() -> bool:
        return session not in await ctx.opencode.status(directory)

    await until(f"{task_id}'s {'reviewer' if reviewer else 'worker'} session to end", idle)


# -- what every crashed run must show ----------------------------------------------


def assert_no_prompt_twice(model: ScriptedModelServer) -> None:
    """No prompt reached the model twice: not in one session, not in two."""
    for session, texts in model.prompts().items():
        repeated = [text[:60] for text, n in Counter(texts).items() if n > 1]
        assert not repeated, f"session {session} got a prompt twice: {repeated}"
    repeated = [text[:60] for text, n in Counter(model.all_prompts()).items() if n > 1]
    assert not repeated, f"prompts sent to two sessions: {repeated}"


def assert_all_merged(
    report: Mapping[str, Any], repo: Path, contents: Mapping[str, str], output: str = ""
) -> None:
    """The run completed, every task merged, each file on the integration branch.

    ``contents`` maps task ids to the content of ``<id>.txt``.
    """
    assert report["status"] == "completed", output
    assert {t["id"]: t["status"] for t in report["tasks"]} == dict.fromkeys(contents, "merged")
    for task_id, content in contents.items():
        assert git(repo, "show", f"{report['integration_branch']}:{task_id}.txt") == content


def assert_nothing_left_behind(report: Mapping[str, Any], repo: Path) -> None:
    """Every extra worktree and unmerged run branch that git shows is named in the report."""
    named = "\n".join(report["left_behind"])
    worktrees = [
        line.removeprefix("worktree ")
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    unnamed = [w for w in worktrees if Path(w) != repo and w not in named]
    integration = report["integration_branch"]
    unmerged = git(
        repo, "branch", "--format=%(refname:short)", "--no-merged", integration, "--list", "lgoc/*"
    ).split()
    unnamed += [b for b in unmerged if b not in named]
    assert not unnamed, f"left behind and not named in the report: {unnamed}"


def sessions_by_role(model: ScriptedModelServer) -> Counter[str]:
    """How many sessions reached the model: ``planner``, ``worker <id>``, ``reviewer <id>``."""
    roles: Counter[str] = Counter()
    for records in model.conversations().values():
        request = records[0].request
        if PLANNER_PROMPT_HEADER in request.system:
            roles["planner"] += 1
            continue
        role = "reviewer" if REVIEWER_PROMPT_HEADER in request.system else "worker"
        roles[f"{role} {request.first_user_text.split('`')[1]}"] += 1
    return roles
