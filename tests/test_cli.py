"""The command line as a user runs it: a child process against a real ``opencode serve``.

The scripted model and the server live in this process (session fixtures); the
CLI runs as ``python -m langgraph_opencode.cli`` with ``--server`` and the
password in the environment variable named by ``--password-env``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    Hang,
    ScriptedModelServer,
    clashing_notes_plan,
    fan_in_plan,
    git,
    planner_returns,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.testing._orchestration import task_prompt
from langgraph_opencode.testing._replies import Text, ToolCall, ToolCalls
from langgraph_opencode.testing._script import Conversation, Step
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = pytest.mark.opencode

CLI = [sys.executable, "-m", "langgraph_opencode.cli"]
PASSWORD_ENV = "LGOC_CLI_TEST_PASSWORD"
TIMEOUT = 300.0
"""Bound of every wait for the CLI: a guard against hangs, not a measure of speed."""


def _env(server: OpenCodeServer) -> dict[str, str]:
    env = {**os.environ, PASSWORD_ENV: server.password.get_secret_value()}
    env.pop("OPENCODE_SERVER_PASSWORD", None)
    env["COLUMNS"] = "200"  # room for the tables of a non-terminal console
    return env


def _server_flags(server: OpenCodeServer) -> list[str]:
    return ["--server", server.url, "--password-env", PASSWORD_ENV]


async def cli(
    server: OpenCodeServer, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end (stdin is not a terminal)."""
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=_env(server),
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def _plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(fan_in_plan()))
    return path


def _three_workers(model: ScriptedModelServer, *entries: Any) -> None:
    model.script(
        *entries,
        worker_writes("a", {"a.txt": "alpha\n"}),
        worker_writes("b", {"b.txt": "beta\n"}),
        worker_writes("c", {"c.txt": "gamma\n"}),
        reviewer_says(repeat=True),
    )


def _read_report(path: str) -> RunReport:
    """The report in ``report.json``, or the ``report.json`` next to ``report.md``."""
    json_path = Path(path).with_name("report.json")
    assert Path(path).is_file(), path
    return RunReport.model_validate_json(json_path.read_text())


def _integration_branch(output: str) -> str:
    match = re.search(r"git merge (\S+)", output)
    assert match, output
    return match.group(1)


# -- run, runs, status ----------------------------------------------------------------------


async def test_run_with_a_plan_file_merges_and_says_where_the_work_is(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    _three_workers(model)
    result = await cli(
        opencode_server,
        "run",
        "three files",
        "--repo",
        str(git_repo),
        "--plan",
        str(_plan_file(tmp_path)),
        "--run-id",
        "cli-plan",
        "--max-parallel",
        "2",
        *_server_flags(opencode_server),
    )

    assert result.returncode == 0, _show(result)
    out = result.stdout
    assert "Run cli-plan completed: 3/3 tasks merged" in out
    branch = _integration_branch(out)
    assert branch == "lgoc/cli-plan/integration"
    assert f"The work is on branch {branch}" in out
    assert re.search(r"merged\s+a merged into lgoc/cli-plan/integration", out)
    files = re.search(r"Report:\n +(\S+)\n +(\S+)", out)
    assert files, out
    report_json, report_md = files.groups()
    assert _read_report(report_json).status == "completed"
    assert _read_report(report_md) == _read_report(report_json)
    assert git(git_repo, "show", f"{branch}:c.txt") == "gamma\n"
    assert git(git_repo, "status", "--porcelain") == ""
    assert opencode_server.password.get_secret_value() not in out + result.stderr

    listed = await cli(opencode_server, "runs", "--repo", str(git_repo))
    assert listed.returncode == 0, _show(listed)
    assert re.search(r"cli-plan\s.*finished \(completed\)\s.*3/3 merged", listed.stdout)

    shown = await cli(opencode_server, "status", "cli-plan", "--repo", str(git_repo))
    assert shown.returncode == 0, _show(shown)
    assert "# Run `cli-plan`: completed" in shown.stdout
    assert f"git merge {branch}" in shown.stdout
    latest = await cli(opencode_server, "status", cwd=git_repo)
    assert latest.stdout == shown.stdout


async def test_a_check_failing_on_the_merged_work_makes_the_run_exit_1_and_says_which(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    plan = clashing_notes_plan()
    (tmp_path / "notes-plan.json").write_text(json.dumps(plan))
    model.script(
        worker_writes("a", {"notes/a.txt": "alpha\n"}),
        worker_writes("b", {"notes/b.txt": "beta\n"}),
        reviewer_says(repeat=True),
    )

    result = await cli(
        opencode_server,
        "run",
        "two notes",
        "--repo",
        str(git_repo),
        "--plan",
        str(tmp_path / "notes-plan.json"),
        *_server_flags(opencode_server),
    )

    assert result.returncode == 1, _show(result)
    assert "2/2 tasks merged" in result.stdout
    assert "2 check(s) fail on lgoc/" in result.stdout
    for task in plan["tasks"]:
        assert task["checks"][0] in result.stdout


async def test_json_prints_only_the_report_on_stdout(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    _three_workers(model, planner_returns(fan_in_plan()))
    result = await cli(
        opencode_server,
        "run",
        "three files",
        "--repo",
        str(git_repo),
        "--json",
        *_server_flags(opencode_server),
    )

    assert result.returncode == 0, _show(result)
    report = RunReport.model_validate_json(result.stdout)
    assert report.status == "completed"
    assert [t.status for t in report.tasks] == ["merged"] * 3
    assert report.take_it == f"git merge {report.integration_branch}"
    assert "the planner proposed 3 tasks" in result.stderr
    assert "git merge" in result.stderr


# -- --events: the progress as JSON lines ------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as a JSON object (any other line fails the test)."""
    events = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(e, dict) for e in events), text
    return events


async def test_events_file_gets_every_progress_event_as_a_json_line(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    _three_workers(model, planner_returns(fan_in_plan()))
    path = tmp_path / "events.jsonl"
    path.write_text("left from before\n")
    result = await cli(
        opencode_server,
        "run",
        "three files",
        "--repo",
        str(git_repo),
        "--json",
        "--events",
        str(path),
        *_server_flags(opencode_server),
    )

    assert result.returncode == 0, _show(result)
    assert RunReport.model_validate_json(result.stdout).status == "completed"
    events = _json_lines(path.read_text())
    kinds = [e["kind"] for e in events]
    for kind in ("plan", "dispatched", "checked", "approved", "merged", "finished"):
        assert kind in kinds, kinds
    assert kinds[-1] == "finished"
    assert all(isinstance(e["time"], float) and isinstance(e["message"], str) for e in events)
    assert {e["task"] for e in events if e["kind"] == "merged"} == {"a", "b", "c"}
    # The same events as the human progress lines, in the same order.
    assert "the planner proposed 3 tasks" in result.stderr
    shown = [e["message"] for e in events if e["message"] in result.stderr]
    assert shown == [e["message"] for e in events]


async def test_events_dash_with_json_puts_only_json_lines_on_stderr_for_resume_too(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    _three_workers(model, planner_returns(fan_in_plan()))
    common = ["--repo", str(git_repo), "--json", "--events", "-", *_server_flags(opencode_server)]
    paused = await cli(
        opencode_server, "run", "three files", "--approve-plan", "--run-id", "cli-ev", *common
    )

    assert paused.returncode == 3, _show(paused)
    assert RunReport.model_validate_json(paused.stdout).status == "interrupted"
    assert [e["kind"] for e in _json_lines(paused.stderr)] == ["plan", "plan"]

    resumed = await cli(opencode_server, "resume", "cli-ev", "--answer", "approve", *common)

    assert resumed.returncode == 0, _show(resumed)
    assert RunReport.model_validate_json(resumed.stdout).status == "completed"
    kinds = [e["kind"] for e in _json_lines(resumed.stderr)]
    assert kinds.count("dispatched") == 3
    assert kinds.count("merged") == 3
    assert kinds[-1] == "finished"


# -- plan approval ----------------------------------------------------------------------------


async def test_plan_approval_without_a_terminal_pauses_and_the_printed_command_answers(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    _three_workers(model, planner_returns(fan_in_plan()))
    common = ["--repo", str(git_repo), *_server_flags(opencode_server)]
    paused = await cli(
        opencode_server, "run", "three files", "--approve-plan", "--run-id", "cli-ask", *common
    )

    assert paused.returncode == 3, _show(paused)
    assert "Run cli-ask is paused" in paused.stdout
    assert "The plan (3 tasks) waits for approval" in paused.stdout
    assert git(git_repo, "branch", "--list", "lgoc/cli-ask/a") == ""  # nothing dispatched
    listed = await cli(opencode_server, "runs", "--repo", str(git_repo))
    assert re.search(r"cli-ask\s.*paused", listed.stdout), _show(listed)
    status = await cli(opencode_server, "status", "cli-ask", "--repo", str(git_repo))
    assert "Run cli-ask: paused" in status.stdout, _show(status)
    assert "--answer approve" in status.stdout, _show(status)

    line = re.search(r"Approve it:\s+(.+)", paused.stdout)
    assert line, paused.stdout
    command = shlex.split(line.group(1))
    assert command[:3] == ["langgraph-opencode", "resume", "cli-ask"]
    assert command[-2:] == ["--answer", "approve"]
    resumed = await cli(opencode_server, *command[1:])

    assert resumed.returncode == 0, _show(resumed)
    assert "Run cli-ask completed: 3/3 tasks merged" in resumed.stdout
    again = await cli(opencode_server, *command[1:-2])
    assert again.returncode == 0, _show(again)
    assert "has already finished" in again.stdout


async def test_plan_approval_with_yes_does_not_pause(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    _three_workers(model, planner_returns(fan_in_plan()))
    result = await cli(
        opencode_server,
        "run",
        "three files",
        "--approve-plan",
        "--yes",
        "--repo",
        str(git_repo),
        *_server_flags(opencode_server),
    )

    assert result.returncode == 0, _show(result)
    assert "--yes: answered plan_approval with 'approve'" in result.stdout
    assert "completed: 3/3 tasks merged" in result.stdout


# -- bad input ----------------------------------------------------------------------------


BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "not-a-repo": (["run", "x", "--repo", "{tmp}"], "is not a git repository"),
    "empty-objective": (["run", "  ", "--repo", "{repo}"], "the objective is empty"),
    "zero-parallel": (
        ["run", "x", "--repo", "{repo}", "--max-parallel", "0"],
        "max_parallel must be greater than 0",
    ),
    "malformed-plan": (
        ["run", "x", "--repo", "{repo}", "--plan", "{tmp}/bad.yaml"],
        "bad.yaml",
    ),
    "unknown-run-resume": (["resume", "ghost", "--repo", "{repo}"], "no run 'ghost'"),
    "unknown-run-status": (["status", "ghost", "--repo", "{repo}"], "no run 'ghost'"),
    "bad-permission-rule": (
        ["run", "x", "--repo", "{repo}", "--allow", "bash"],
        "is not PERMISSION:PATTERN",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
async def test_bad_input_is_one_clear_line_and_exit_2(
    case: str, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    args, expected = BAD_INPUT[case]
    (tmp_path / "bad.yaml").write_text("tasks: [unclosed\n")
    args = [a.format(tmp=tmp_path, repo=git_repo) for a in args]
    before = git(git_repo, "for-each-ref")

    if args[0] in ("run", "resume"):
        args += _server_flags(opencode_server)
    result = await cli(opencode_server, *args)

    assert result.returncode == 2, _show(result)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert git(git_repo, "for-each-ref") == before


async def test_an_unreachable_server_is_a_usage_error(git_repo: Path) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "run", "x", "--repo", str(git_repo), "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2, _show(result)
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr


async def _run_with_a_held_worker(
    model: ScriptedModelServer,
    server: OpenCodeServer,
    git_repo: Path,
    tmp_path: Path,
    run_id: str,
    *,
    stderr: int = asyncio.subprocess.PIPE,
) -> tuple[Hang, list[str], asyncio.subprocess.Process]:
    """Start ``run`` of the fan-in plan whose worker ``a`` waits on the returned ``Hang``."""
    held = Hang(then=ToolCalls(ToolCall.write("a.txt", "alpha\n")))
    model.script(
        Conversation(
            held,
            Step(Text("Task a done."), after_tool="write"),
            user=task_prompt("a"),
            name="worker a (held)",
        ),
        worker_writes("b", {"b.txt": "beta\n"}),
        worker_writes("c", {"c.txt": "gamma\n"}),
        reviewer_says(repeat=True),
    )
    common = ["--repo", str(git_repo), *_server_flags(server)]
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        "three files",
        "--plan",
        str(_plan_file(tmp_path)),
        "--run-id",
        run_id,
        *common,
        stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=_env(server),
    )
    return held, common, process


# -- Ctrl-C --------------------------------------------------------------------------------


async def test_ctrl_c_keeps_the_checkpoint_and_resume_completes_the_run(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    held, common, process = await _run_with_a_held_worker(
        model, opencode_server, git_repo, tmp_path, "cli-sigint"
    )
    try:
        assert await asyncio.to_thread(held.wait_until_hanging, TIMEOUT), "worker a never ran"
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = stderr.decode()
    assert process.returncode == 130, stdout.decode() + err
    assert "Interrupted. Run cli-sigint is checkpointed" in err
    assert "langgraph-opencode resume cli-sigint" in err
    assert "Traceback" not in err
    listed = await cli(opencode_server, "runs", "--repo", str(git_repo))
    assert re.search(r"cli-sigint\s.*stopped", listed.stdout), _show(listed)

    held.release()
    resumed = await cli(opencode_server, "resume", "cli-sigint", *common)

    assert resumed.returncode == 0, _show(resumed)
    assert "Run cli-sigint completed: 3/3 tasks merged" in resumed.stdout
    assert git(git_repo, "show", "lgoc/cli-sigint/integration:a.txt") == "alpha\n"


async def _read_until(stream: asyncio.StreamReader, text: str) -> str:
    """What ``stream`` says up to and including the first line holding ``text``."""
    seen = ""
    async with asyncio.timeout(TIMEOUT):
        while text not in seen:
            line = await stream.readline()
            assert line, f"{text!r} never came:\n{seen}"
            seen += line.decode()
    return seen


async def test_status_json_tells_a_running_run_from_a_killed_one_and_lists_its_tasks(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    held, common, process = await _run_with_a_held_worker(
        model, opencode_server, git_repo, tmp_path, "cli-kill", stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        await _read_until(process.stdout, "b merged into lgoc/cli-kill/integration")
        assert await asyncio.to_thread(held.wait_until_hanging, TIMEOUT), "worker a never ran"
        running = await cli(
            opencode_server, "status", "cli-kill", "--json", "--repo", str(git_repo)
        )
        assert RunReport.model_validate_json(running.stdout).status == "running", _show(running)
        refused = await cli(opencode_server, "resume", "cli-kill", *common)
        assert refused.returncode == 2, _show(refused)
        assert "being driven by another orchestrator" in refused.stderr, _show(refused)
        assert f"pid {process.pid} on" in refused.stderr, _show(refused)

        process.kill()  # SIGKILL: no clean-up of any kind
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    shown = await cli(opencode_server, "status", "cli-kill", "--json", "--repo", str(git_repo))
    assert shown.returncode == 0, _show(shown)
    report = RunReport.model_validate_json(shown.stdout)
    assert report.status == "stopped"
    assert report.interrupt is None
    assert report.integration_branch == "lgoc/cli-kill/integration"
    tasks = {t.id: t for t in report.tasks}
    assert {t: r.status for t, r in tasks.items()} == {
        "a": "working",
        "b": "merged",
        "c": "pending",
    }
    assert tasks["a"].title == fan_in_plan()["tasks"][0]["title"]
    assert tasks["a"].branch == "lgoc/cli-kill/a"
    assert tasks["a"].sessions
    assert tasks["b"].merge_sha
    text = await cli(opencode_server, "status", "cli-kill", "--repo", str(git_repo))
    assert "Run cli-kill: stopped" in text.stdout, _show(text)
    assert re.search(r"\bb\s.*merged", text.stdout), _show(text)
    assert "langgraph-opencode resume cli-kill" in text.stdout

    held.release()
    resumed = await cli(opencode_server, "resume", "cli-kill", *common)

    assert resumed.returncode == 0, _show(resumed)
    assert "Run cli-kill completed: 3/3 tasks merged" in resumed.stdout


# -- at a terminal ---------------------------------------------------------------------------


class _Terminal:
    """A child process on a pseudo-terminal; everything it writes is collected."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the child closed the terminal
                data = b""
            with self._changed:
                self.output += data.decode(errors="replace")
                self._changed.notify_all()
            if not data:
                return

    def wait_for(self, text: str) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: text in self.output, TIMEOUT):
                raise AssertionError(f"{text!r} never appeared:\n{self.output}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self) -> int:
        try:
            return self.process.wait(TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(TIMEOUT)
            os.close(self.master)


def _approve_at_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    terminal = _Terminal(args, env)
    try:
        terminal.wait_for("[a]pprove")
        terminal.type("a")
        code = terminal.finish()
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
            terminal.process.wait()
    return code, terminal.output


async def test_at_a_terminal_the_plan_is_shown_and_approved_and_a_table_follows_the_tasks(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    _three_workers(model, planner_returns(fan_in_plan()))
    args = [
        *CLI,
        "run",
        "three files",
        "--approve-plan",
        "--run-id",
        "cli-tty",
        "--repo",
        str(git_repo),
        *_server_flags(opencode_server),
    ]
    code, raw = await asyncio.to_thread(_approve_at_terminal, args, _env(opencode_server))
    output = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)  # colours and cursor moves

    assert code == 0, output
    assert "Write a" in output  # the plan's table, before any work
    assert re.search(r"│ c\s+│ merged", output), output  # the live table of tasks
    assert "Run cli-tty completed: 3/3 tasks merged" in output
    assert "git merge lgoc/cli-tty/integration" in output
