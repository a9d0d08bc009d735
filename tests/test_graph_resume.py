"""Killed with SIGKILL mid-run, resumed: the run completes and no prompt is sent twice.

The scripted model and the real ``opencode serve`` live in this process; the
orchestrator runs in a child process (``tests/_orchestrator_process.py``) with
the default SQLite checkpoint in the repository's ``.git``. It is killed at a
point observed from outside (a model request hanging, the integration branch
advancing), then a new child resumes the run id.

Checked afterwards: the run completes with every task merged, the integration
branch holds every task's file, no session received a user prompt twice, no
prompt text went to two sessions, and each task had one worker session and one
reviewer session (the script has no rework rounds). The ``model`` fixture also
fails the test if a scripted step went unused or a request matched none: every
reviewer verdict is scripted once, so a second review prompt would not match.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_opencode.api import checkpoint_path
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
    fan_in_plan,
    git,
    planner_returns,
    task_prompt,
)
from langgraph_opencode.tools.git import GitRun, Repo
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import PLANNER_PROMPT_HEADER, REVIEWER_PROMPT_HEADER
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

HELPER = Path(__file__).with_name("_orchestrator_process.py")
PASSWORD_ENV = "LGOC_TEST_OPENCODE_PASSWORD"  # as in _orchestrator_process.py
TIMEOUT = 60.0
"""Bound of every wait for something the run does."""

TASKS = ("a", "b", "c")
PLAN = fan_in_plan()
VERDICT = {"approved": True, "findings": [], "feedback": "Looks good."}


def _content(task_id: str) -> str:
    return f"content of {task_id}\n"


def write(task_id: str) -> ToolCalls:
    """Worker ``task_id``'s first answer: write ``<id>.txt``."""
    return ToolCalls(ToolCall.write(f"{task_id}.txt", _content(task_id)))


def done(task_id: str) -> Text:
    """Worker ``task_id``'s last answer."""
    return Text(f"Task {task_id} done.")


def worker(task_id: str, *, first: Reply | None = None, last: Reply | None = None) -> Conversation:
    """Worker ``task_id`` writes ``<id>.txt``, then says it is done (either reply replaced)."""
    return Conversation(
        first or write(task_id),
        Step(last or done(task_id), after_tool="write"),
        user=task_prompt(task_id),
        name=f"worker {task_id}",
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

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

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

    async def finish(self, timeout: float) -> int:
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.cleanup()
            pytest.fail(f"{self.name} did not finish within {timeout} s\n{self.output()}")
        if self.reader is not None:
            await self.reader
        return code


async def spawn(name: str, tmp_path: Path, server: OpenCodeServer, *args: str) -> Child:
    """Start the orchestrator helper; the password goes through the environment."""
    env = {**os.environ, PASSWORD_ENV: server.password.get_secret_value()}
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


# -- waiting for the run, from outside --------------------------------------------


async def hanging(hang: Hang) -> None:
    """Wait until a model request hangs on ``hang``."""
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


def worker_session(model: ScriptedModelServer, task_id: str) -> str:
    for key, records in model.conversations().items():
        if task_prompt(task_id) in records[0].request.first_user_text:
            return key
    raise AssertionError(f"no worker session of task {task_id} reached the model")


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
    """The nodes the run's last checkpoint would run next (what a resume starts with)."""
    async with AsyncSqliteSaver.from_conn_string(
        str(checkpoint_path(await Repo.open(repo)))
    ) as saver:
        snapshot = await compile_graph(saver).aget_state({"configurable": {"thread_id": run_id}})
    return tuple(snapshot.next)


# -- the kill points --------------------------------------------------------------


@dataclass
class Ctx:
    """What a kill point needs."""

    model: ScriptedModelServer
    opencode: OpenCodeClient
    repo: Path
    run: GitRun


@dataclass
class KillPoint:
    """A scenario: the script, when to kill, and what to do before and after resuming.

    ``before_kill`` returns once the run is where it should be killed;
    ``after_kill`` runs while no orchestrator is alive; ``after_resume`` runs
    once the new orchestrator has started.
    """

    script: list[ScriptEntry]
    before_kill: Callable[[Ctx], Awaitable[None]]
    after_kill: Callable[[Ctx], Awaitable[None]]
    after_resume: Callable[[Ctx], Awaitable[None]]
    killed_before: tuple[tuple[str, ...], ...] = (("monitor",),)
    """What the last checkpoint may run next when the first process is killed."""


def two_workers_mid_turn() -> KillPoint:
    """Killed while monitoring: worker a waits for its first answer, b for its last.

    b's answer then arrives while no orchestrator runs (the resumed monitor
    must find it on entry); a is released only once the resumed run has asked
    for b's review, so a's outcome arrives while the new process listens.
    """
    a_first, b_last = Hang(then=write("a")), Hang(then=done("b"))

    async def before_kill(ctx: Ctx) -> None:
        await hanging(a_first)
        await hanging(b_last)

    async def after_kill(ctx: Ctx) -> None:
        b_last.release()
        session = worker_session(ctx.model, "b")
        directory = await ctx.run.task_path("b")

        async def b_idle() -> bool:
            return session not in await ctx.opencode.status(directory)

        await until("worker b's session to end", b_idle)

    async def after_resume(ctx: Ctx) -> None:
        await requested(ctx.model, review_request("b"))
        a_first.release()

    return KillPoint(
        [
            planner_returns(PLAN),
            worker("a", first=a_first),
            worker("b", last=b_last),
            worker("c"),
            *(reviewer(t) for t in TASKS),
        ],
        before_kill,
        after_kill,
        after_resume,
    )


def reviewer_mid_turn() -> KillPoint:
    """Killed while monitoring a reviewer session (a's review waits for its answer)."""
    review_a = Hang(then=StructuredOutput(VERDICT))

    async def before_kill(ctx: Ctx) -> None:
        await hanging(review_a)

    async def nothing(ctx: Ctx) -> None:
        return None

    async def after_resume(ctx: Ctx) -> None:
        review_a.release()

    return KillPoint(
        [
            planner_returns(PLAN),
            *(worker(t) for t in TASKS),
            reviewer("a", reply=review_a),
            reviewer("b"),
            reviewer("c"),
        ],
        before_kill,
        nothing,
        after_resume,
        # b's verdict arrives about when a's review starts hanging: the kill
        # may land while b's verdict is handled, b merged, or the monitor waits.
        killed_before=(("monitor",), ("review",), ("merge",), ("dispatch",), ("send",)),
    )


def after_merge() -> KillPoint:
    """Killed right after the merge that unblocks c (the integration branch has a and b).

    The kill lands in ``merge``, ``dispatch`` (c's worktree and session) or
    ``send`` (c's prompt); c's first request hangs until the run is resumed.
    """
    c_first = Hang(then=write("c"))

    async def before_kill(ctx: Ctx) -> None:
        branch = ctx.run.integration_branch

        async def merged() -> bool:
            return await has_file(ctx.repo, branch, "a.txt") and await has_file(
                ctx.repo, branch, "b.txt"
            )

        await until("a and b merged", merged)

    async def nothing(ctx: Ctx) -> None:
        return None

    async def after_resume(ctx: Ctx) -> None:
        c_first.release()

    return KillPoint(
        [
            planner_returns(PLAN),
            worker("a"),
            worker("b"),
            worker("c", first=c_first),
            *(reviewer(t) for t in TASKS),
        ],
        before_kill,
        nothing,
        after_resume,
        # Killed in merge (not checkpointed yet), or after it in dispatch, send or
        # monitor; or between merge's saved writes and the next checkpoint, when
        # no node is pending and a resume applies those writes and goes on.
        killed_before=(("merge",), ("dispatch",), ("send",), ("monitor",), ()),
    )


KILL_POINTS = {
    "two-workers-mid-turn": two_workers_mid_turn,
    "reviewer-mid-turn": reviewer_mid_turn,
    "after-merge": after_merge,
}


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
async def test_killed_orchestrator_resumes_without_sending_a_prompt_twice(
    kill_point: str,
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    opencode: OpenCodeClient,
    git_repo: Path,
    tmp_path: Path,
) -> None:
    scenario = KILL_POINTS[kill_point]()
    model.script(*scenario.script)
    run_id = f"resume-{kill_point}"
    run = (await Repo.open(git_repo)).run(run_id)
    ctx = Ctx(model, opencode, git_repo, run)
    common = (str(git_repo), run_id, opencode_server.url)
    first: Child | None = None
    second: Child | None = None
    try:
        first = await spawn("first", tmp_path, opencode_server, "start", *common, "three files")
        await scenario.before_kill(ctx)
        await first.crash()
        assert first.process.returncode == -signal.SIGKILL
        assert first.report is None, "the first orchestrator finished before it was killed"
        killed_before = await checkpointed_next(git_repo, run_id)
        assert killed_before in scenario.killed_before, first.output()
        print(f"{kill_point}: killed before {killed_before}")  # shown with -s
        await scenario.after_kill(ctx)

        second = await spawn("resumed", tmp_path, opencode_server, "resume", *common)
        await scenario.after_resume(ctx)
        code = await second.finish(timeout=120)
        output = first.output() + "\n" + second.output()
        assert code == 0, output
        report = second.report
        assert report is not None, output
    except BaseException:
        for child in (first, second):
            if child is not None:
                await child.cleanup()
                print(child.output())  # shown in the failure report
        raise
    finally:
        for hang in _hangs(scenario.script):
            hang.release()  # a failed test must not leave OpenCode waiting on the model
        for child in (first, second):
            if child is not None:
                await child.cleanup()

    # The run completed, every task merged, and the integration branch has the work.
    assert report["status"] == "completed", output
    assert {t["id"]: t["status"] for t in report["tasks"]} == dict.fromkeys(TASKS, "merged")
    for task_id in TASKS:
        assert git(git_repo, "show", f"{report['integration_branch']}:{task_id}.txt") == _content(
            task_id
        )

    # No prompt reached the model twice: not in one session, not in two.
    prompts = model.prompts()
    for session, texts in prompts.items():
        repeated = [text[:60] for text, n in Counter(texts).items() if n > 1]
        assert not repeated, f"session {session} got a prompt twice: {repeated}"
    repeated = [text[:60] for text, n in Counter(model.all_prompts()).items() if n > 1]
    assert not repeated, f"prompts sent to two sessions: {repeated}"

    # One planner, one worker and one reviewer session per task (no rework rounds).
    roles: Counter[str] = Counter()
    for records in model.conversations().values():
        request = records[0].request
        if PLANNER_PROMPT_HEADER in request.system:
            roles["planner"] += 1
        elif REVIEWER_PROMPT_HEADER in request.system:
            task_id = request.first_user_text.split("`")[1]
            roles[f"reviewer {task_id}"] += 1
        else:
            task_id = request.first_user_text.split("`")[1]
            roles[f"worker {task_id}"] += 1
    expected = Counter(
        {"planner": 1} | {f"{r} {t}": 1 for r in ("worker", "reviewer") for t in TASKS}
    )
    assert roles == expected
    assert not model.unmatched


def _hangs(script: list[ScriptEntry]) -> list[Hang]:
    replies = []
    for entry in script:
        steps = entry.steps if isinstance(entry, Conversation) else (entry,)
        replies += [s.reply for s in steps]
    return [r for r in replies if isinstance(r, Hang)]
