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

import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from _orchestrator_child import (
    VERDICT,
    Child,
    Ctx,
    assert_all_merged,
    assert_no_prompt_twice,
    checkpointed_next,
    cleaning_up,
    content,
    done,
    hanging,
    hangs_of,
    has_file,
    requested,
    review_request,
    reviewer,
    session_ended,
    sessions_by_role,
    spawn,
    until,
    worker,
    write,
)
from langgraph_opencode.testing import (
    Hang,
    ScriptedModelServer,
    ScriptEntry,
    StructuredOutput,
    fan_in_plan,
    planner_returns,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

TASKS = ("a", "b", "c")
PLAN = fan_in_plan()


# -- the kill points --------------------------------------------------------------


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
        await session_ended(ctx, "b")

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
        # Killed in merge (not checkpointed yet), or after it in dispatch, send or monitor.
        killed_before=(("merge",), ("dispatch",), ("send",), ("monitor",)),
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
    children: list[Child] = []
    async with cleaning_up(children, hangs_of(scenario.script)):
        first = await spawn("first", tmp_path, opencode_server, "start", *common, "three files")
        children.append(first)
        await scenario.before_kill(ctx)
        await first.crash()
        assert first.process.returncode == -signal.SIGKILL
        assert first.report is None, "the first orchestrator finished before it was killed"
        killed_before = await checkpointed_next(git_repo, run_id)
        assert killed_before in scenario.killed_before, first.output()
        print(f"{kill_point}: killed before {killed_before}")  # shown with -s
        await scenario.after_kill(ctx)

        second = await spawn("resumed", tmp_path, opencode_server, "resume", *common)
        children.append(second)
        await scenario.after_resume(ctx)
        code = await second.finish()
        output = first.output() + "\n" + second.output()
        assert code == 0, output
        report = second.report
        assert report is not None, output

    # The run completed, every task merged, the integration branch has the
    # work, and no prompt reached the model twice.
    assert_all_merged(report, git_repo, {t: content(t) for t in TASKS}, output)
    assert_no_prompt_twice(model)

    # One planner, one worker and one reviewer session per task (no rework rounds).
    roles = sessions_by_role(model)
    expected = Counter(
        {"planner": 1} | {f"{r} {t}": 1 for r in ("worker", "reviewer") for t in TASKS}
    )
    assert roles == expected
    assert not model.unmatched
