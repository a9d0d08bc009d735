"""Every session is followed all the time, also while the graph runs another task's checks.

While ``review`` runs a task's acceptance checks (shell commands, up to
``check_timeout``), the other tasks' sessions go on working on the server:
their permission requests must be answered by the run's policy at once, and
a session that stalls must be aborted after ``stall_timeout``, not when the
checks are over. Task ``a``'s check marks its start and its end in files and
sleeps between them; task ``b``'s worker waits for the start mark, then asks
for a permission or stalls. Real ``opencode serve``, the scripted model,
real git.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from langgraph_opencode.api import aorchestrate
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    Conversation,
    Hang,
    ScriptedModelServer,
    Step,
    Text,
    ToolCall,
    ToolCalls,
    git,
    task_prompt,
    worker_writes,
)
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.events import EventHub
from langgraph_opencode.tools.opencode.models import Event
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.timeout(600)]
"""The guard against a hang on a busy machine; the tests take about 25 s and 55 s on a quiet one."""

CHECK_S = 20
"""How long task a's check runs: the window in which b's session must be looked after."""
STALL_S = 15.0
"""Short, yet longer than a healthy session is ever silent on a loaded machine (as in
test_graph_control): a smaller one aborts task a's worker, which is fine."""
STALL_CHECK_S = 45
"""How long task a's check runs in the stall test: b, silent from its start, is due to be
aborted after STALL_S (and a watchdog tick), with a busy machine's margin to spare."""
B_COMMAND = "echo b > b.txt"
CONNECT_TIMEOUT = 120.0


# -- helpers -----------------------------------------------------------------


@dataclass
class _Markers:
    """The files task a's check writes when it starts and when it ends (outside the repo)."""

    started: Path
    ended: Path
    seconds: int = CHECK_S

    @classmethod
    def under(cls, directory: Path, seconds: int = CHECK_S) -> _Markers:
        directory.mkdir()
        return cls(directory / "check-started", directory / "check-ended", seconds)

    def check(self) -> str:
        """A check that passes after ``seconds``, marking its start and end."""
        started, ended = shlex.quote(str(self.started)), shlex.quote(str(self.ended))
        return f"touch {started} && sleep {self.seconds} && touch {ended} && test -f a.txt"

    def ended_at(self) -> float:
        """When the check ended (its mark's modification time, seconds since the epoch)."""
        assert self.ended.exists(), "task a's check never ended"
        return self.ended.stat().st_mtime

    def started_at(self) -> float:
        assert self.started.exists(), "task a's check never started"
        return self.started.stat().st_mtime


def _plan(markers: _Markers) -> dict[str, Any]:
    def task(task_id: str, check: str) -> dict[str, Any]:
        return {
            "id": task_id,
            "title": f"Write {task_id}",
            "instructions": f"Create {task_id}.txt",
            "depends_on": [],
            "files": [f"{task_id}.txt"],
            "checks": [check],
        }

    return {
        "objective": "two files",
        "summary": "a's check runs long while b works",
        "tasks": [task("a", markers.check()), task("b", "test -f b.txt")],
    }


@dataclass
class _Run:
    report: RunReport
    repo: Path
    streamed: list[dict[str, Any]] = field(default_factory=list)


def _events(run: _Run, kind: str) -> list[dict[str, Any]]:
    """The run's events of ``kind``, in order.

    Read from what the run streamed (``on_event``). Where the run keeps its
    log in ``events.jsonl`` in its directory
    (``.git/langgraph-opencode/runs/<run_id>/``), read that file here instead.
    """
    return [e for e in run.streamed if e["kind"] == kind]


async def _run(
    server: OpenCodeServer, repo: Path, markers: _Markers, settings: RunSettings
) -> _Run:
    def on_interrupt(value: dict[str, Any]) -> str:
        raise AssertionError(f"the policy answers this, nobody should be asked: {value}")

    streamed: list[dict[str, Any]] = []
    report = await aorchestrate(
        "two files",
        repo=repo,
        plan=_plan(markers),
        server_url=server.url,
        password=server.password,
        settings=settings,
        on_interrupt=on_interrupt,
        on_event=streamed.append,
    )
    return _Run(report, repo, streamed)


def _both_merged(run: _Run) -> None:
    report = run.report
    assert report.status == "completed", report.to_markdown()
    assert {t.id: t.status for t in report.tasks} == {"a": "merged", "b": "merged"}
    assert git(run.repo, "show", f"{report.integration_branch}:a.txt") == "a\n"
    assert git(run.repo, "show", f"{report.integration_branch}:b.txt") == "b\n"


def _settings(**kw: Any) -> RunSettings:
    # No reviewer and no second run of the checks on the integration branch:
    # task a's check runs once, while b works.
    return RunSettings(max_parallel=2, review=False, verify_integration=False, **kw)


# -- permission requests -------------------------------------------------------------


async def test_a_permission_request_during_another_tasks_check_is_answered_by_policy_at_once(
    model: ScriptedModelServer, asking_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    markers = _Markers.under(tmp_path / "marks")
    model.script(
        worker_writes("a", {"a.txt": "a\n"}),
        Conversation(
            # Once a's check runs, b's worker runs a command OpenCode asks about.
            Hang(
                then=ToolCalls(ToolCall.bash(B_COMMAND, description="write b.txt")),
                until=markers.started,
            ),
            Step(Text("Wrote b.txt."), after_tool="bash"),
            user=task_prompt("b"),
            name="worker b: after a's check started, a command that asks",
        ),
    )
    replied: list[tuple[float, Event]] = []

    def on_server_event(ev: Event) -> None:
        if ev.type == "permission.replied":
            replied.append((time.time(), ev))

    async with (
        OpenCodeClient(asking_server.url, password=asking_server.password) as client,
        EventHub(client, on_event=on_server_event) as hub,
    ):
        await hub.wait_connected(timeout=CONNECT_TIMEOUT)
        run = await _run(
            asking_server,
            git_repo,
            markers,
            _settings(allow_permissions=["bash:echo *"], unmatched_permissions="ask"),
        )

    _both_merged(run)
    (decided,) = _events(run, "permission")
    assert decided["task"] == "b", decided
    assert B_COMMAND in decided["message"], decided
    assert decided["message"].endswith("allow by policy"), decided
    check_started, check_ended = markers.started_at(), markers.ended_at()
    assert decided["time"] < check_ended, (
        f"b's request was answered {decided['time'] - check_ended:.1f} s after a's "
        f"{CHECK_S} s check ended, not while it ran"
    )
    # The server's own word: the request was replied to while the check ran.
    ((server_time, reply),) = replied
    assert reply.properties.get("reply") == "once", reply
    assert server_time < check_ended, (
        f"the server took the reply {server_time - check_ended:.1f} s after a's check ended, "
        "not while it ran"
    )
    assert server_time > check_started  # b asked only once the check ran
    # Measured, not asserted (a busy machine is slow): on a quiet one well under a second.
    print(f"b's request answered {server_time - check_started:.2f} s after a's check started")
    assert _events(run, "aborted") == []


# -- stalls --------------------------------------------------------------------------


async def test_a_stall_during_another_tasks_check_is_aborted_on_time(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    markers = _Markers.under(tmp_path / "marks", STALL_CHECK_S)
    started = shlex.quote(str(markers.started))
    hang = Hang()
    model.script(
        worker_writes("a", {"a.txt": "a\n"}),
        Conversation(
            # A running tool is life: b is not stalled while it waits for a's check.
            ToolCall.bash(
                f"until [ -e {started} ]; do sleep 0.1; done", description="wait for a's check"
            ),
            # Then the model never answers: b's session goes silent while a's check runs.
            Step(hang, after_tool="bash", name="the model hangs"),
            user=task_prompt("b"),
            name="worker b: waits for a's check, then stalls",
        ),
        worker_writes("b", {"b.txt": "b\n"}, user=f"{task_prompt('b')} was interrupted"),
    )
    try:
        run = await _run(
            opencode_server,
            git_repo,
            markers,
            _settings(stall_timeout=STALL_S, max_stall_retries=1),
        )
    finally:
        hang.release()

    # What a user relies on: the stalled turn is aborted while a's check still runs, and b
    # is prompted again as max_stall_retries says (once): both tasks merge.
    _both_merged(run)
    (aborted,) = _events(run, "aborted")
    assert aborted["task"] == "b", aborted
    assert "stalled" in aborted["message"], aborted
    check_started, check_ended = markers.started_at(), markers.ended_at()
    silent_for = aborted["time"] - check_started
    assert aborted["time"] < check_ended, (
        f"b went silent as a's {STALL_CHECK_S} s check started and was aborted {silent_for:.1f} s "
        f"later ({aborted['time'] - check_ended:.1f} s after the check ended), not "
        f"stall_timeout ({STALL_S:g} s) later while the check ran"
    )
    assert silent_for > STALL_S, f"aborted after {silent_for:.1f} s of silence"
    print(f"b aborted {silent_for:.2f} s after it went silent (stall_timeout {STALL_S:g} s)")
