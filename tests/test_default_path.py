"""The path users take: the CLI with no ``--server``, output piped, Ctrl-C and ``resume``.

Every test runs ``langgraph-opencode`` as a child process in a user's home of
its own whose OpenCode config names the scripted model, so the command starts
its embedded ``opencode serve`` exactly as it does for a user: with the user's
config and the user's OpenCode data. Nothing here passes ``--server``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _orchestrator_child import alive, assert_no_prompt_twice, sessions_by_role
from langgraph_opencode import RunSettings, aorchestrate, aresume
from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    Hang,
    ScriptedModelServer,
    git,
    independent_plan,
    planner_returns,
    reviewer_says,
    task_prompt,
    user_environment,
    worker_writes,
)
from langgraph_opencode.testing._replies import Text, ToolCall
from langgraph_opencode.testing._script import Conversation, Step
from langgraph_opencode.tools.opencode.config import deep_merge

pytestmark = pytest.mark.opencode

CLI = [sys.executable, "-m", "langgraph_opencode.cli"]
TIMEOUT = 300.0
"""Guards against a hang only: a loaded machine may take long."""


class User:
    """A user with a home of their own, running the CLI in one repository."""

    def __init__(self, home: Path, repo: Path, model: ScriptedModelServer, **config: Any) -> None:
        self.repo = repo
        self.env = user_environment(home, model, config=config)
        self.env["COLUMNS"] = "200"

    def run_dir(self, run_id: str) -> Path:
        return self.repo / ".git" / "langgraph-opencode" / "runs" / run_id

    def runtime(self, run_id: str) -> dict[str, Any] | None:
        path = self.run_dir(run_id) / "server" / "runtime.json"
        return json.loads(path.read_text()) if path.exists() else None

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI to its end, output piped, no terminal."""
        return await asyncio.to_thread(
            subprocess.run,
            [*CLI, *args, "--repo", str(self.repo)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=self.env,
            timeout=TIMEOUT,
            check=False,
        )

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *CLI,
            *args,
            "--repo",
            str(self.repo),
            stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )

    async def server_stopped(self, run_id: str, pgid: int) -> None:
        """The run's server is stopped (its whole group) and its runtime file is gone."""
        assert self.runtime(run_id) is None
        await _until("the run's server to stop", lambda: not _group_alive(pgid), 30)

    def report(self, run_id: str) -> RunReport:
        return RunReport.model_validate_json((self.run_dir(run_id) / "report.json").read_text())


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def _group_alive(pgid: int) -> bool:
    """Whether any live process is left in process group ``pgid`` (a server and its keeper)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


async def _until(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _plan_file(tmp_path: Path, plan: dict[str, Any]) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def _held_worker(task_id: str, hold: Hang) -> Conversation:
    """A worker that waits on ``hold``, then writes ``<task_id>.txt`` and says it is done."""
    return Conversation(
        hold,
        ToolCall.write(f"{task_id}.txt", f"{task_id}\n"),
        Step(Text(f"Task {task_id} done."), after_tool="write"),
        user=task_prompt(task_id),
        name=f"worker {task_id} (held)",
    )


async def _stop_when(
    process: asyncio.subprocess.Process, ready: Callable[[], bool], sig: int = signal.SIGKILL
) -> str:
    """Send ``sig`` to the CLI once ``ready()`` (blocking) is true; return what it printed."""
    try:
        assert await asyncio.to_thread(ready), "the CLI never got there"
        process.send_signal(sig)
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return stdout.decode() + stderr.decode()


def _wait_for_file(path: Path) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _hanging(hold: Hang) -> Callable[[], bool]:
    return lambda: hold.wait_until_hanging(TIMEOUT)


def _no_moves(output: str) -> None:
    assert "server_lost" not in output, output
    assert "went away" not in output, output
    assert "moved" not in output, output


# -- a permission request answered from a script ------------------------------------------

COMMAND = "echo asked > asked.txt"


def _bash_plan() -> dict[str, Any]:
    return {
        "objective": "write asked.txt with a command",
        "tasks": [
            {
                "id": "asked",
                "title": "Write asked.txt with a command",
                "instructions": f"Run `{COMMAND}`",
                "depends_on": [],
                "files": ["asked.txt"],
                "checks": ["grep -qx asked asked.txt"],
            }
        ],
    }


async def test_permission_pause_answered_by_resume_runs_the_command_in_the_first_session(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model, permission={"bash": "ask"})
    model.script(_bash_worker(), reviewer_says(repeat=True))
    plan = str(_plan_file(tmp_path, _bash_plan()))

    paused = await user.cli("run", "write asked.txt", "--plan", plan, "--run-id", "ask")

    assert paused.returncode == 3, _show(paused)
    assert "langgraph-opencode resume ask" in paused.stdout, _show(paused)
    assert "--answer" in paused.stdout, _show(paused)
    # The turn that asked still waits in the run's server, which lingers for the answer.
    runtime = user.runtime("ask")
    assert runtime is not None, "the paused run's server is not kept"
    assert alive(runtime["pid"])

    done = await user.cli("resume", "ask", "--answer", "once")

    assert done.returncode == 0, _show(done)
    _no_moves(done.stdout + done.stderr)
    report = user.report("ask")
    (task,) = report.tasks
    assert task.status == "merged"
    assert task.moves == 0
    assert sessions_by_role(model)["worker asked"] == 1  # the turn that asked, answered in place
    assert git(git_repo, "show", f"{report.integration_branch}:asked.txt") == "asked\n"
    # The model saw the command's own result, not a rejection.
    (after,) = [r for r in model.chat_requests() if r.request.tool_results]
    assert "rejected" not in after.request.tool_results[0].content.lower()
    # The run ended: its server stopped and its runtime file is gone.
    await user.server_stopped("ask", runtime["pid"])


# -- the agents do not hold the server's password -----------------------------------------

# What a prompt-injected worker would run to find the password: its own
# environment and the server's (OPENCODE_PID is the server's pid). Lines are cut
# short so that the long OPENCODE_CONFIG_CONTENT cannot push the rest out of the
# tool output.
ENV_COMMAND = (
    "env | cut -c1-200; "
    "tr '\\0' '\\n' < /proc/$OPENCODE_PID/environ | cut -c1-200; "
    "echo seen > seen.txt"
)


async def test_a_worker_running_env_does_not_see_the_servers_password(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model, permission={"external_directory": "allow"})
    hold = Hang(then=None)
    model.script(
        Conversation(
            hold,
            ToolCall.bash(ENV_COMMAND, description="print the environment"),
            Step(Text("Printed the environment."), after_tool="bash"),
            user=task_prompt("env"),
            name="worker env",
        ),
        reviewer_says(repeat=True),
    )
    plan = {
        "objective": "print the environment",
        "tasks": [
            {
                "id": "env",
                "title": "Print the environment",
                "instructions": f"Run `{ENV_COMMAND}`",
                "depends_on": [],
                "files": ["seen.txt"],
                "checks": ["grep -qx seen seen.txt"],
            }
        ],
    }
    process = await user.start(
        "run", "print the environment", "--plan", str(_plan_file(tmp_path, plan)), "--run-id", "env"
    )
    try:
        assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
        runtime = user.runtime("env")
        assert runtime is not None
        password = runtime["password"]
        hold.release()
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    # Auth still works: the run went through to the end on its server.
    assert process.returncode == 0, stdout.decode() + stderr.decode()
    assert [t.status for t in user.report("env").tasks] == ["merged"]
    (after,) = [r for r in model.chat_requests() if r.request.tool_results]
    output = after.request.tool_results[0].content
    # Both commands ran: the variable is in the worker's environment and the server's.
    assert output.count("OPENCODE_CONFIG_CONTENT=") == 2, output
    assert password not in output
    await user.server_stopped("env", runtime["pid"])


# -- Ctrl-C and resume, three times ------------------------------------------------------


async def test_ctrl_c_then_resume_three_times_keeps_the_server_and_every_session(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model)
    ids = ["a", "b", "c"]
    holds = {task_id: Hang(then=None) for task_id in ids}
    model.script(*[_held_worker(t, holds[t]) for t in ids], reviewer_says(repeat=True))
    plan = str(_plan_file(tmp_path, independent_plan(ids)))
    url = None
    outputs = []
    for index, task_id in enumerate(ids):
        args = (
            ["run", "three files", "--plan", plan, "--run-id", "ctrlc", "--max-parallel", "1"]
            if index == 0
            else ["resume", "ctrlc", "--max-parallel", "1"]
        )
        process = await user.start(*args)
        output = await _stop_when(process, _hanging(holds[task_id]), signal.SIGINT)
        assert process.returncode == 130, output
        assert "langgraph-opencode resume ctrlc" in output, output
        runtime = user.runtime("ctrlc")
        assert runtime is not None, "the server did not linger"
        assert alive(runtime["pid"]), "the server did not linger"
        assert url in (None, runtime["url"]), "a resume started a new server"
        url = runtime["url"]
        outputs.append(output)
        holds[task_id].release()  # the turn goes on while nobody watches

    done = await user.cli("resume", "ctrlc", "--max-parallel", "1")

    assert done.returncode == 0, _show(done)
    assert f"opencode serve at {url}: adopted" in done.stdout, _show(done)
    for output in [*outputs, done.stdout + done.stderr]:
        _no_moves(output)
    report = user.report("ctrlc")
    assert {t.id: (t.status, t.moves) for t in report.tasks} == dict.fromkeys(ids, ("merged", 0))
    roles = sessions_by_role(model)
    assert [roles[f"worker {task_id}"] for task_id in ids] == [1, 1, 1]
    for task_id in ids:
        assert git(git_repo, "show", f"{report.integration_branch}:{task_id}.txt") == f"{task_id}\n"
    assert_no_prompt_twice(model)
    await user.server_stopped("ctrlc", runtime["pid"])


# -- a plan rejected from a script -------------------------------------------------------


async def test_plan_rejection_feedback_from_a_script_reaches_the_next_planner_prompt(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model)
    feedback = "Split the work one task per file, please (marker 7d1f)."
    model.script(
        planner_returns(independent_plan(["a"])),
        planner_returns(independent_plan(["a", "b"]), user=feedback),
        worker_writes("a", {"a.txt": "a\n"}),
        worker_writes("b", {"b.txt": "b\n"}),
        reviewer_says(repeat=True),
    )

    paused = await user.cli("run", "two files", "--approve-plan", "--run-id", "rej")
    assert paused.returncode == 3, _show(paused)
    answer = json.dumps({"action": "reject", "feedback": feedback})
    again = await user.cli("resume", "rej", "--answer", answer)
    assert again.returncode == 3, _show(again)  # the new plan waits for approval too
    done = await user.cli("resume", "rej", "--answer", "approve")

    assert done.returncode == 0, _show(done)
    planner_prompts = [
        text for texts in model.prompts().values() for text in texts if feedback in text
    ]
    assert planner_prompts, "the planner never saw the feedback"
    assert {t.id for t in user.report("rej").tasks} == {"a", "b"}
    _no_moves(paused.stdout + again.stdout + done.stdout + done.stderr)


# -- killed mid-turn ---------------------------------------------------------------------


async def test_sigkill_mid_turn_then_resume_adopts_the_server_and_reads_the_finished_turn(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model)
    hold = Hang(then=None)
    model.script(_held_worker("a", hold), reviewer_says(repeat=True))
    plan = str(_plan_file(tmp_path, independent_plan(["a"])))
    process = await user.start("run", "one file", "--plan", plan, "--run-id", "kill")
    await _stop_when(process, _hanging(hold))
    runtime = user.runtime("kill")
    assert runtime is not None
    assert alive(runtime["pid"])
    hold.release()
    # The turn finishes while no orchestrator runs.
    written = user.run_dir("kill") / "worktrees" / "a" / "a.txt"
    await _until("the worker to write a.txt", written.exists)

    done = await user.cli("resume", "kill")

    assert done.returncode == 0, _show(done)
    assert f"opencode serve at {runtime['url']}: adopted" in done.stdout, _show(done)
    _no_moves(done.stdout + done.stderr)
    (task,) = user.report("kill").tasks
    assert (task.status, task.moves) == ("merged", 0)
    assert sessions_by_role(model)["worker a"] == 1
    assert_no_prompt_twice(model)
    await _until("the run's server to stop", lambda: not _group_alive(runtime["pid"]), 30)


async def test_a_server_left_by_a_killed_orchestrator_stops_after_the_linger_time(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model)
    hold = Hang(then=None)
    model.script(
        Conversation(hold, Step(Text("Task a done.")), user=task_prompt("a"), name="worker a"),
    )
    plan = str(_plan_file(tmp_path, independent_plan(["a"])))
    process = await user.start(
        "run", "one file", "--plan", plan, "--run-id", "linger", "--embedded-linger", "2"
    )
    await _stop_when(process, _hanging(hold))
    runtime = user.runtime("linger")
    assert runtime is not None
    assert _group_alive(runtime["pid"]), "it should outlive the kill"

    await _until("the orphaned server to stop", lambda: not _group_alive(runtime["pid"]), 60)

    assert user.runtime("linger") is None
    hold.release()
    model.reset()  # the held turn died with its server: nothing more is asked of the model


# -- one driver per run ------------------------------------------------------------------


async def test_a_second_driver_of_a_run_is_refused_naming_the_holder(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model)
    hold = Hang(then=None)
    model.script(_held_worker("a", hold), reviewer_says(repeat=True))
    plan = str(_plan_file(tmp_path, independent_plan(["a"])))
    first = await user.start("run", "one file", "--plan", plan, "--run-id", "one")
    try:
        assert await asyncio.to_thread(hold.wait_until_hanging, TIMEOUT)
        listed = await user.cli("runs")
        assert re.search(r"one\s.*running", listed.stdout), _show(listed)

        second = await user.cli("resume", "one")
        again = await user.cli("run", "one file", "--plan", plan, "--run-id", "one")

        assert second.returncode == 2, _show(second)
        assert f"pid {first.pid}" in second.stderr, _show(second)
        assert "driven by another orchestrator" in second.stderr
        assert again.returncode == 2, _show(again)
        assert "already exists" in again.stderr, _show(again)
        assert "resume one" in again.stderr, _show(again)
        hold.release()
        stdout, stderr = await asyncio.wait_for(first.communicate(), TIMEOUT)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert first.returncode == 0, stdout.decode() + stderr.decode()
    assert_no_prompt_twice(model)  # the refused drivers sent nothing
    listed = await user.cli("runs")
    assert re.search(r"one\s.*finished", listed.stdout), _show(listed)


def test_user_environment_keeps_the_callers_opencode_settings_out(tmp_path: Path) -> None:
    with ScriptedModelServer() as model:
        env = user_environment(
            tmp_path, model, base={"OPENCODE_CONFIG_CONTENT": "{}", "PATH": os.environ["PATH"]}
        )
    assert "OPENCODE_CONFIG_CONTENT" not in env
    assert env["XDG_CONFIG_HOME"] == str(tmp_path / ".config")
    config = json.loads((tmp_path / ".config" / "opencode" / "opencode.json").read_text())
    assert config["model"].endswith("/" + model.model_id)


# -- a person's time ---------------------------------------------------------------------


def _bash_worker(*, user: str | None = None) -> Conversation:
    return Conversation(
        ToolCall.bash(COMMAND, description="write asked.txt"),
        Step(Text("Wrote asked.txt."), after_tool="bash"),
        user=user or task_prompt("asked"),
        name="worker asked: bash",
    )


@pytest.mark.parametrize("answered", ["in-process", "on resume"])
async def test_an_answer_after_the_turn_timeout_is_no_timeout(
    model: ScriptedModelServer, git_repo: Path, answered: str
) -> None:
    model.script(_bash_worker(), reviewer_says(repeat=True))
    wait = 20.0
    settings = RunSettings(turn_timeout=15, stall_timeout=15, unmatched_permissions="ask")
    events: list[dict[str, Any]] = []
    common: dict[str, Any] = {
        "repo": git_repo,
        "settings": settings,
        "isolated": True,
        "opencode_config": deep_merge(model.provider_config(), {"permission": {"bash": "ask"}}),
        "on_event": events.append,
    }

    async def slowly(value: dict[str, Any]) -> str:
        assert value["type"] == "permission"
        await asyncio.sleep(wait)
        return "once"

    if answered == "in-process":
        report = await aorchestrate(
            "write asked.txt", plan=_bash_plan(), run_id="slow", on_interrupt=slowly, **common
        )
    else:
        paused = await aorchestrate("write asked.txt", plan=_bash_plan(), run_id="slow", **common)
        assert paused.status == "interrupted"
        await asyncio.sleep(wait)
        report = await aresume("slow", answer="once", **common)

    assert report.status == "completed", report.to_markdown()
    assert [e["message"] for e in events if e["kind"] == "aborted"] == []
    assert git(git_repo, "show", f"{report.integration_branch}:asked.txt") == "asked\n"


async def test_an_answer_to_a_request_that_died_with_the_server_is_given_when_it_asks_again(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model, permission={"bash": "ask"})
    first = Conversation(
        ToolCall.bash(COMMAND, description="write asked.txt"),
        user=task_prompt("asked"),
        name="worker asked: bash (its server stops while it asks)",
    )
    model.script(first, _bash_worker(user="was interrupted"), reviewer_says(repeat=True))
    plan = str(_plan_file(tmp_path, _bash_plan()))
    paused = await user.cli(
        "run", "write asked.txt", "--plan", plan, "--run-id", "died", "--embedded-linger", "1"
    )
    assert paused.returncode == 3, _show(paused)
    runtime = user.runtime("died")
    assert runtime is not None
    await _until("the paused run's server to stop", lambda: not _group_alive(runtime["pid"]), 60)

    done = await user.cli("resume", "died", "--answer", "once")

    assert done.returncode == 0, _show(done)  # no second pause: the answer was kept
    assert "kept for when its turn asks again" in done.stdout, _show(done)
    assert "answered before its server restarted" in done.stdout, _show(done)
    assert sessions_by_role(model)["worker asked"] == 1  # the same session carried on
    report = user.report("died")
    assert report.tasks[0].moves == 0
    assert git(git_repo, "show", f"{report.integration_branch}:asked.txt") == "asked\n"


async def test_a_run_killed_before_its_first_checkpoint_says_how_to_start_it_again(
    model: ScriptedModelServer, git_repo: Path, tmp_path: Path
) -> None:
    user = User(tmp_path / "home", git_repo, model)
    started = tmp_path / "started"
    hanging = tmp_path / "hanging-opencode"
    hanging.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 600\n")
    hanging.chmod(0o755)
    real_env = dict(user.env)
    user.env["LANGGRAPH_OPENCODE_BINARY"] = str(hanging)  # never becomes healthy
    plan = str(_plan_file(tmp_path, independent_plan(["a"])))
    process = await user.start(
        "run", "one file", "--plan", plan, "--run-id", "early", "--embedded-linger", "1"
    )
    await _stop_when(process, lambda: _wait_for_file(started))
    user.env = real_env

    resumed = await user.cli("resume", "early")

    assert resumed.returncode == 2, _show(resumed)
    assert "stopped before its first checkpoint" in resumed.stderr, _show(resumed)
    assert "--run-id early" in resumed.stderr, _show(resumed)
    model.script(worker_writes("a", {"a.txt": "a\n"}), reviewer_says(repeat=True))
    again = await user.cli("run", "one file", "--plan", plan, "--run-id", "early")
    assert again.returncode == 0, _show(again)
