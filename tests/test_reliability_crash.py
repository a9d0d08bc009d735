"""Reliability: a six-task run whose orchestrator is SIGKILLed at 22 points and resumed each time.

The plan fans out and in (``a``, ``b``, ``c``; ``d`` after ``a`` and ``b``; ``e``
after ``b`` and ``c``; ``f`` after ``d`` and ``e``), every task has an
acceptance check and a reviewer verdict, and ``c`` needs one rework round.

The run is held in place by model requests that hang (:class:`Hang`) until
the test releases them. So the run alternates between *quiet* states (every
running session waits on the model, the orchestrator waits in ``monitor``)
and *bursts* started by one release (``monitor`` returns, then ``review``,
``merge``, ``dispatch``, ``send``, back to ``monitor``). Each kill point
either kills a quiet run (the last checkpoint must say ``monitor`` is next),
or kills in a burst when the orchestrator prints the event of the step it is
in (the checkpoint must be at that node or a later one of the same burst).
A burst is always started after the new orchestrator is up, so its events
come from that process. Some releases happen while no orchestrator runs:
the resumed one must find those outcomes on its own.

Checked at the end: every task merged with its work on the integration
branch, no prompt sent twice, one session per agent turn as scripted (a
resumed node never makes a second reviewer session that got a prompt), and
no worktree or branch left behind that the report does not name.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from _orchestrator_child import (
    VERDICT,
    Child,
    alive,
    assert_all_merged,
    assert_no_prompt_twice,
    assert_nothing_left_behind,
    checkpointed_next,
    checkpointed_values,
    cleaning_up,
    content,
    done,
    edit_checkpoint,
    hanging,
    hangs_of,
    has_file,
    reviewer,
    session_ended,
    sessions_by_role,
    spawn,
    until,
    worker,
    write,
)
from _orchestrator_child import (
    Ctx as RunCtx,
)
from langgraph_opencode.testing import (
    Conversation,
    Hang,
    ScriptedModelServer,
    Step,
    StructuredOutput,
    ToolCall,
    ToolCalls,
    Usage,
    files_plan,
    git,
    one_task_plan,
    planner_returns,
    task_prompt,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import PLANNER_PROMPT_HEADER
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.reliability]


@pytest_asyncio.fixture(loop_scope="session")
async def opencode_server(
    make_opencode_server: Callable[..., OpenCodeServer],
) -> AsyncIterator[OpenCodeServer]:
    """A server of each test's own: the 22-kill run leaves two dozen orchestrators' work on it."""
    async with make_opencode_server() as server:
        yield server


PLAN = files_plan(
    {"a": [], "b": [], "c": [], "d": ["a", "b"], "e": ["b", "c"], "f": ["d", "e"]},
    objective="six files",
    summary="a, b, c in parallel; d after a and b; e after b and c; f after d and e",
)
TASKS = [t["id"] for t in PLAN["tasks"]]
REJECT = {"approved": False, "findings": ["c.txt is a first draft"], "feedback": "Redo c.txt."}
REWORK = f"{task_prompt('c')} needs more work"

BURST_AFTER_MONITOR = {("review",), ("merge",), ("dispatch",), ("send",), ("monitor",)}
"""Where a kill in a burst that starts in ``review`` may land."""
AFTER_MERGE = {("merge",), ("dispatch",), ("send",), ("monitor",)}
"""Where a kill may land once ``merge`` printed an event."""
AFTER_DISPATCH = {("dispatch",), ("send",), ("monitor",)}
"""Where a kill may land once ``dispatch`` printed an event."""
QUIET = {("monitor",)}


class Hangs:
    """The model requests that hold the run in place, by name."""

    def __init__(self) -> None:
        self.plan = Hang(then=StructuredOutput(PLAN))
        self.a = Hang(then=write("a"))
        self.b_last = Hang(then=done("b"))
        self.c = Hang(then=write("c"))
        self.c_rework = Hang(then=write("c", version=2))
        self.d = Hang(then=write("d"))
        self.f = Hang(then=write("f"))
        self.review_a = Hang(then=StructuredOutput(VERDICT))
        self.review_c2 = Hang(then=StructuredOutput(VERDICT))
        self.review_d = Hang(then=StructuredOutput(VERDICT))
        self.review_e = Hang(then=StructuredOutput(VERDICT))
        self.review_f = Hang(then=StructuredOutput(VERDICT))

    def script(self) -> list[Any]:
        return [
            Step(self.plan, system=PLANNER_PROMPT_HEADER, tool="StructuredOutput", name="planner"),
            # c's rework conversation comes first: its prompt also names task c.
            worker("c", first=self.c_rework, user=REWORK),
            worker("a", first=self.a),
            worker("b", last=self.b_last),
            worker("c", first=self.c),
            worker("d", first=self.d),
            worker("e"),
            worker("f", first=self.f),
            reviewer("a", reply=self.review_a),
            reviewer("b"),
            reviewer("c", reply=StructuredOutput(REJECT)),
            reviewer("c", reply=self.review_c2),
            reviewer("d", reply=self.review_d),
            reviewer("e", reply=self.review_e),
            reviewer("f", reply=self.review_f),
        ]


@dataclass
class Ctx(RunCtx):
    run_id: str
    hangs: Hangs
    child: Child | None = None

    @property
    def current(self) -> Child:
        assert self.child is not None
        return self.child


Action = Callable[[Ctx], Awaitable[None]]


async def nothing(ctx: Ctx) -> None:
    return None


@dataclass
class KillPoint:
    """Where to kill the orchestrator, and what may come before and after.

    ``before`` runs once the (resumed) orchestrator was started; ``when``
    returns once the run is where it should die; ``landed`` lists what the
    last checkpoint may run next after the kill; ``while_down`` runs before
    the next orchestrator starts.
    """

    name: str
    when: Action
    landed: set[tuple[str, ...]]
    before: Action = nothing
    while_down: Action = nothing


# -- the pieces kill points are made of ----------------------------------------------


def release(*names: str) -> Action:
    async def act(ctx: Ctx) -> None:
        for name in names:
            getattr(ctx.hangs, name).release()

    return act


def hung(*names: str) -> Action:
    async def act(ctx: Ctx) -> None:
        await hanging(*(getattr(ctx.hangs, name) for name in names))

    return act


def printed(kind: str, task: str | None = None, text: str = "") -> Action:
    """The orchestrator printed this event (it is in, or just past, the node that emits it)."""

    def where(event: dict[str, Any]) -> bool:
        return (
            event.get("kind") == kind
            and (task is None or event.get("task") == task)
            and text in event.get("message", "")
        )

    async def act(ctx: Ctx) -> None:
        await ctx.current.printed(f"a {kind} event" + (f" of {task}" if task else ""), where)

    return act


def merged(task_id: str) -> Action:
    """The integration branch has task ``task_id``'s file (its merge commit was made)."""

    async def act(ctx: Ctx) -> None:
        branch = ctx.run.integration_branch
        await until(f"{task_id} merged", lambda: has_file(ctx.repo, branch, f"{task_id}.txt"))

    return act


def back_in_monitor_after(task_id: str) -> Action:
    """``task_id`` is merged and the last checkpoint says ``monitor`` runs next."""

    async def act(ctx: Ctx) -> None:
        await merged(task_id)(ctx)

        async def monitoring() -> bool:
            return await checkpointed_next(ctx.repo, ctx.run_id) == ("monitor",)

        await until("the run back in monitor", monitoring)

    return act


def finish_while_down(hang: str, task_id: str, reviewer_turn: bool = False) -> Action:
    """Release a hang while no orchestrator runs, and wait until its session is idle."""

    async def act(ctx: Ctx) -> None:
        getattr(ctx.hangs, hang).release()
        await session_ended(ctx, task_id, reviewer=reviewer_turn)

    return act


KILL_POINTS = [
    # planning
    KillPoint("planner turn in flight", hung("plan"), QUIET),
    KillPoint(
        "plan accepted",
        printed("plan", text="proposed"),
        {("plan",), ("approve_plan",), ("dispatch",), ("send",), ("monitor",)},
        before=release("plan"),
    ),
    # dispatch and monitoring
    KillPoint(
        "three workers in flight, b mid-turn after a tool call",
        hung("a", "b_last", "c"),
        QUIET,
        while_down=finish_while_down("a", "a"),
    ),
    # review of a: its outcome arrived while no orchestrator ran
    KillPoint("a committed and checked", printed("checked", "a"), BURST_AFTER_MONITOR),
    KillPoint("reviewer a in flight", hung("review_a"), QUIET),
    KillPoint(
        "a approved", printed("approved", "a"), BURST_AFTER_MONITOR, before=release("review_a")
    ),
    KillPoint(
        "monitor re-entered after a merged",
        back_in_monitor_after("a"),
        QUIET,
        while_down=finish_while_down("b_last", "b"),
    ),
    # b: checked, approved at once, merged; d starts
    KillPoint("b merged", printed("merged", "b"), AFTER_MERGE),
    KillPoint("d in flight", hung("d"), QUIET),
    # c: rejected, one rework round
    KillPoint("c sent back", printed("rework", "c"), BURST_AFTER_MONITOR, before=release("c")),
    KillPoint(
        "c's rework in flight",
        hung("c_rework"),
        QUIET,
        while_down=finish_while_down("c_rework", "c"),
    ),
    KillPoint("c's rework checked", printed("checked", "c"), BURST_AFTER_MONITOR),
    KillPoint("reviewer c, round 2, in flight", hung("review_c2"), QUIET),
    KillPoint(
        "e dispatched after c merged",
        printed("dispatched", "e"),
        AFTER_DISPATCH,
        before=release("review_c2"),
    ),
    KillPoint("reviewer e in flight, d working", hung("review_e"), QUIET),
    KillPoint("d checked", printed("checked", "d"), BURST_AFTER_MONITOR, before=release("d")),
    KillPoint("reviewers d and e in flight", hung("review_d"), QUIET),
    # merge of d, then e's verdict arrives while no orchestrator runs
    KillPoint(
        "d's merge commit made",
        merged("d"),
        AFTER_MERGE,
        before=release("review_d"),
        while_down=finish_while_down("review_e", "e", reviewer_turn=True),
    ),
    KillPoint(
        "f dispatched after e merged",
        printed("dispatched", "f"),
        AFTER_DISPATCH,
    ),
    KillPoint("f in flight", hung("f"), QUIET),
    KillPoint("f checked", printed("checked", "f"), BURST_AFTER_MONITOR, before=release("f")),
    KillPoint("reviewer f in flight", hung("review_f"), QUIET),
]


@pytest.mark.timeout(1800)
async def test_killed_at_22_points_and_resumed_each_time_the_run_completes(
    model: ScriptedModelServer,
    opencode_server: OpenCodeServer,
    opencode: OpenCodeClient,
    git_repo: Path,
    tmp_path: Path,
) -> None:
    hangs = Hangs()
    script = hangs.script()
    model.script(*script)
    run_id = "crash-six"
    ctx = Ctx(model, opencode, git_repo, (await Repo.open(git_repo)).run(run_id), run_id, hangs)
    common = (str(git_repo), run_id, opencode_server.url)
    children: list[Child] = []
    landed: list[tuple[str, tuple[str, ...]]] = []
    async with cleaning_up(children, hangs_of(script)):
        for number, point in enumerate(KILL_POINTS):
            if number == 0:
                args: tuple[str, ...] = ("start", *common, "six files")
            else:
                args = ("resume", *common)
            ctx.child = await spawn(f"orchestrator {number}", tmp_path, opencode_server, *args)
            children.append(ctx.child)
            await point.before(ctx)
            await point.when(ctx)
            await ctx.child.crash()
            assert ctx.child.process.returncode == -signal.SIGKILL
            assert ctx.child.report is None, f"finished before the kill at {point.name!r}"
            where = await checkpointed_next(git_repo, run_id)
            assert where in point.landed, f"{point.name}: killed before {where}"
            landed.append((point.name, where))
            await point.while_down(ctx)

        last = await spawn("orchestrator, last", tmp_path, opencode_server, "resume", *common)
        children.append(last)
        hangs.review_f.release()
        code = await last.finish()
        assert code == 0, last.output()
        report = last.report
        assert report is not None, last.output()

    print("\n".join(f"killed at {name!r}: next {where}" for name, where in landed))  # -s
    assert len(landed) == len(KILL_POINTS) >= 20
    contents = {t: content(t, version=2 if t == "c" else 1) for t in TASKS}
    assert_all_merged(report, git_repo, contents, last.output())
    assert {t["id"]: t["rounds"] for t in report["tasks"]} == {t: int(t == "c") for t in TASKS}
    for task in report["tasks"]:  # no commit lost: each is in the integration branch
        assert task["commits"], f"{task['id']}: no commits recorded"
        for sha in task["commits"]:
            git(git_repo, "merge-base", "--is-ancestor", sha, report["integration_branch"])
    assert_no_prompt_twice(model)
    expected = {"planner": 1} | {f"worker {t}": 1 for t in TASKS}
    expected |= {f"reviewer {t}": 2 if t == "c" else 1 for t in TASKS}
    assert sessions_by_role(model) == expected
    assert_nothing_left_behind(report, git_repo)
    assert report["left_behind"] == []


async def test_tokens_spent_while_the_orchestrator_was_down_count_against_the_budget(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    # The worker's first step (1005 tokens) ends while no orchestrator runs;
    # its second step hangs. The resumed monitor must count the first step's
    # tokens from the server (no event about it will ever come) and stop the
    # task over its budget, instead of waiting for a turn that never ends.
    first = Hang(then=ToolCalls(ToolCall.write("one.txt", "1\n"), usage=Usage(prompt_tokens=1000)))
    second = Hang()
    script = [
        planner_returns(one_task_plan()),
        Conversation(first, Step(second, after_tool="write"), user=task_prompt("one")),
    ]
    model.script(*script)
    run_id = "budget-over-resume"
    common = (str(git_repo), run_id, opencode_server.url)
    settings = {"task_token_budget": 500}
    children: list[Child] = []
    async with cleaning_up(children, hangs_of(script)):
        children.append(
            await spawn(
                "first", tmp_path, opencode_server, "start", *common, "one file", settings=settings
            )
        )
        await hanging(first)
        await children[0].crash()
        assert await checkpointed_next(git_repo, run_id) == ("monitor",)
        first.release()
        await hanging(second)

        children.append(
            await spawn("resumed", tmp_path, opencode_server, "resume", *common, settings=settings)
        )
        code = await children[1].finish()
        report = children[1].report
        assert code == 0, children[1].output()
        assert report is not None, children[1].output()

    (task,) = report["tasks"]
    assert task["status"] == "failed"
    assert "token budget exceeded (1005 > 500)" in task["reason"]
    assert task["tokens"] >= 1005


async def test_a_resumed_run_times_the_turn_from_when_its_prompt_was_sent(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    # The worker's turn hangs; the orchestrator is killed; the checkpoint is
    # edited to say the prompt went out two hours ago. With a one-hour
    # turn_timeout, the resumed monitor must abort that turn at once (not an
    # hour after the resume) and prompt the worker again.
    never = Hang()
    script = [
        planner_returns(one_task_plan()),
        Step(never, user=task_prompt("one"), name="worker one, first turn (never answered)"),
        worker_writes("one", {"one.txt": "1\n"}, user=f"{task_prompt('one')} was interrupted"),
        reviewer("one"),
    ]
    model.script(*script)
    run_id = "turn-clock"
    common = (str(git_repo), run_id, opencode_server.url)
    settings = {"turn_timeout": 3600}
    children: list[Child] = []
    async with cleaning_up(children, hangs_of(script)):
        first = await spawn("first", tmp_path, opencode_server, "start", *common, "one file")
        children.append(first)
        await hanging(never)
        await first.crash()
        assert await checkpointed_next(git_repo, run_id) == ("monitor",)
        job = (await checkpointed_values(git_repo, run_id))["jobs"]["task:one"]
        assert job["sent"]
        assert job["sent_at"] <= time.time()
        two_hours_ago = {**job, "sent_at": job["sent_at"] - 7200}
        await edit_checkpoint(git_repo, run_id, {"jobs": {"task:one": two_hours_ago}}, "send")

        resumed = await spawn(
            "resumed", tmp_path, opencode_server, "resume", *common, settings=settings
        )
        children.append(resumed)
        code = await resumed.finish()
        assert code == 0, resumed.output()
        report = resumed.report
        assert report is not None, resumed.output()

    assert report["status"] == "completed", resumed.output()
    aborted = [e["message"] for e in resumed.events if e["kind"] == "aborted"]
    assert aborted == ["one: the turn ran past turn_timeout (3600 s)"]


async def test_a_check_running_when_its_orchestrator_is_killed_reaches_no_commit(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    # The check writes build output at once, then waits (the first time) for a
    # file that never comes. The orchestrator's whole process group is
    # SIGKILLed meanwhile: the check, in its own session, lives on, and a git
    # lock is left in the task's worktree. The resumed orchestrator must end
    # the check, clear the lock, throw the check's output away rather than
    # commit it, check again (this time the check writes more and ends) and
    # merge the task without any of the checks' files.
    pids, resumed, go = tmp_path / "check.pids", tmp_path / "resumed", tmp_path / "go"
    check = (
        f"echo $$ >> {pids}; echo partial > build-output.txt; "
        f"[ -e {resumed} ] || while [ ! -e {go} ]; do sleep 0.1; done; "
        "echo leaked > leaked.txt; test -f one.txt"
    )
    model.script(
        planner_returns(one_task_plan(check=check)),
        worker_writes("one", {"one.txt": "1\n"}),
        reviewer("one"),
    )
    run_id = "check-crash"
    common = (str(git_repo), run_id, opencode_server.url)
    run = (await Repo.open(git_repo)).run(run_id)
    children: list[Child] = []
    try:
        async with cleaning_up(children, []):
            first = await spawn("first", tmp_path, opencode_server, "start", *common, "one file")
            children.append(first)

            async def checking() -> bool:
                return pids.exists() and (run.run_dir / "worktrees/one/build-output.txt").exists()

            await until("the check to run", checking)
            (check_pid,) = map(int, pids.read_text().split())
            await first.cleanup()  # SIGKILL of its process group
            assert await checkpointed_next(git_repo, run_id) == ("review",)
            assert alive(check_pid), "the check died with its orchestrator's group"
            # What the kill leaves when it lands in a `git add` in the task's worktree.
            worktree = run.run_dir / "worktrees" / "one"
            gitdir = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())
            (gitdir / "index.lock").write_text("")

            resumed.touch()
            second = await spawn("resumed", tmp_path, opencode_server, "resume", *common)
            children.append(second)
            code = await second.finish()
            assert code == 0, second.output()
            report = second.report
            assert report is not None, second.output()
            assert not alive(check_pid), "the dead orchestrator's check still runs"
    finally:
        go.touch()  # a check left running ends now, whatever failed

    assert_all_merged(report, git_repo, {"one": "1\n"}, second.output())
    # Run three times: killed, again after the resume, on the merged work.
    assert len(pids.read_text().split()) == 3
    touched = git(git_repo, "log", "--all", "--format=%H", "--", "build-output.txt", "leaked.txt")
    assert touched == "", "a check's output was committed"
