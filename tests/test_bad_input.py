"""Bad input: a clear error that says what was wrong, and the repository left as it was."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_opencode import ConfigurationError, RunSettings, aorchestrate, aresume
from langgraph_opencode.errors import (
    AuthenticationError,
    BinaryNotFoundError,
    OpenCodeConnectionError,
    PlanError,
)
from langgraph_opencode.graph.studio import graph as studio_graph
from langgraph_opencode.testing import (
    ScriptedModelServer,
    fan_in_plan,
    git,
    one_task_plan,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.opencode import OpenCodeServer

pytestmark = pytest.mark.opencode


def snapshot(repo: Path) -> dict[str, Any]:
    """Refs, HEAD, index bytes and every working-tree file."""
    files = {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    index = repo / ".git" / "index"
    return {
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "head": (repo / ".git" / "HEAD").read_text(),
        "index": hashlib.sha256(index.read_bytes()).hexdigest() if index.exists() else None,
        "files": files,
    }


@pytest.fixture
def dirty_repo(git_repo: Path) -> Path:
    (git_repo / "README.md").write_text("# local edit\n")
    (git_repo / "notes.txt").write_text("untracked\n")
    return git_repo


CLI = [sys.executable, "-m", "langgraph_opencode.cli"]
PASSWORD_ENV = "LGOC_BAD_INPUT_PASSWORD"
NO_SERVER = ["--server", "http://127.0.0.1:9"]  # refused connections: never reached


def _group_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def _run_alone(command: list[str], env: dict[str, str], stdin: str | None) -> tuple[int, str, str]:
    """Run ``command`` in a process group of its own; fail if a process of it outlives it."""
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(stdin, timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert _group_gone(process.pid), f"the CLI left processes behind:\n{out}\n{err}"
    return process.returncode, out, err


async def cli(
    *args: str,
    server: OpenCodeServer | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end (stdin is not a terminal), with ``server`` if given."""
    environ = {**os.environ, "COLUMNS": "200", **(env or {})}
    environ.pop("OPENCODE_SERVER_PASSWORD", None)
    if server is not None:
        environ[PASSWORD_ENV] = server.password.get_secret_value()
        args = (*args, "--server", server.url, "--password-env", PASSWORD_ENV)
    command = [*CLI, *args]
    code, out, err = await asyncio.to_thread(_run_alone, command, environ, stdin)
    return subprocess.CompletedProcess(command, code, out, err)


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def _one_error_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 2 and a single ``error:`` line on stderr that says ``expected``."""
    assert result.returncode == 2, _show(result)
    assert result.stderr.startswith("error: "), _show(result)
    assert len(result.stderr.strip().splitlines()) == 1, _show(result)
    assert expected in result.stderr, _show(result)
    assert "Traceback" not in result.stdout + result.stderr


def _nothing_recorded(repo: Path) -> None:
    assert not (repo / ".git" / "langgraph-opencode").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


PLAN_CASES: dict[str, tuple[str, str]] = {
    "malformed": ("tasks: [unclosed\n", "line"),
    "cycle": (
        "objective: x\ntasks:\n"
        "  - {id: a, title: A, instructions: do a, depends_on: [b]}\n"
        "  - {id: b, title: B, instructions: do b, depends_on: [a]}\n",
        "a -> b -> a",
    ),
    "unknown-dependency": (
        "objective: x\ntasks:\n  - {id: a, title: A, instructions: do a, depends_on: [ghost]}\n",
        "ghost",
    ),
}


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
async def test_bad_plan_files_are_refused_before_anything_happens(
    case: str, dirty_repo: Path, tmp_path: Path
) -> None:
    text, expected = PLAN_CASES[case]
    plan = _write(tmp_path / f"{case}.yaml", text)
    before = snapshot(dirty_repo)
    with pytest.raises(PlanError) as info:
        await aorchestrate("objective", repo=dirty_repo, plan=plan, server_url="http://127.0.0.1:9")
    assert expected in str(info.value)
    assert str(plan) in str(info.value)
    assert snapshot(dirty_repo) == before


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("", "the objective is empty"),
        ("   \n", "the objective is empty"),
        ("x" * 1_000_000, "1,000,000 characters long"),
    ],
    ids=["empty", "blank", "1MB"],
)
async def test_bad_objectives_are_refused(objective: str, message: str, dirty_repo: Path) -> None:
    before = snapshot(dirty_repo)
    with pytest.raises(ConfigurationError, match=message):
        await aorchestrate(objective, repo=dirty_repo, server_url="http://127.0.0.1:9")
    assert snapshot(dirty_repo) == before


async def test_not_a_repository_no_commits_and_missing_paths(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigurationError, match=r"not .*git repository"):
        await aorchestrate("objective", repo=plain)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    with pytest.raises(ConfigurationError, match="no commits"):
        await aorchestrate("objective", repo=empty)
    with pytest.raises(ConfigurationError, match="does not exist"):
        await aorchestrate("objective", repo=tmp_path / "nowhere")
    assert sorted(os.listdir(tmp_path)) == ["empty", "plain"]
    assert not (empty / ".git" / "langgraph-opencode").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (lambda: RunSettings(max_parallel=0), "max_parallel must be greater than 0"),
        (lambda: RunSettings(max_rework_rounds=-1), "max_rework_rounds must not be negative"),
        (lambda: RunSettings(worker_model="gpt"), "worker_model must be written 'provider/model'"),
    ],
    ids=["zero-parallel", "negative-rounds", "bad-model"],
)
def test_invalid_settings_are_named(settings: Callable[[], RunSettings], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings()


async def test_an_unreachable_server_is_reported_before_the_run_starts(dirty_repo: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    before = snapshot(dirty_repo)
    try:
        with pytest.raises(OpenCodeConnectionError, match="could not reach the OpenCode server"):
            await aorchestrate("objective", repo=dirty_repo, server_url=url)
    finally:
        closed.close()
    assert snapshot(dirty_repo) == before


async def test_a_wrong_password_is_reported_before_the_run_starts(
    opencode_server: OpenCodeServer, dirty_repo: Path
) -> None:
    before = snapshot(dirty_repo)
    with pytest.raises(AuthenticationError, match="password") as info:
        await aorchestrate(
            "objective", repo=dirty_repo, server_url=opencode_server.url, password="wrong-4c1d"
        )
    assert "wrong-4c1d" not in str(info.value)
    assert snapshot(dirty_repo) == before


async def test_a_later_run_uses_its_own_password_not_one_an_earlier_run_was_given(
    opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    plan = one_task_plan("a")
    paused = await aorchestrate(
        "first",
        repo=git_repo,
        plan=plan,
        run_id="with-password",
        server_url=opencode_server.url,
        password=opencode_server.password,
        settings=RunSettings(approve_plan=True),
    )
    assert paused.status == "interrupted"

    with pytest.raises(AuthenticationError, match=r"\$LGOC_NOT_SET_71, which is not set"):
        await aorchestrate(
            "second",
            repo=git_repo,
            plan=plan,
            run_id="without-password",
            server_url=opencode_server.url,
            settings=RunSettings(password_env="LGOC_NOT_SET_71"),
        )


async def test_an_unset_password_variable_is_named_as_unset(
    opencode_server: OpenCodeServer, dirty_repo: Path
) -> None:
    before = snapshot(dirty_repo)
    result = await cli(
        "run",
        "x",
        "--repo",
        str(dirty_repo),
        "--server",
        opencode_server.url,
        "--password-env",
        "LGOC_NOT_SET_72",
    )
    assert result.returncode == 2, _show(result)
    assert "$LGOC_NOT_SET_72, which is not set" in result.stderr, _show(result)
    assert snapshot(dirty_repo) == before


async def test_a_missing_opencode_binary_says_how_to_install_it(
    dirty_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGGRAPH_OPENCODE_BINARY", str(tmp_path / "no-opencode"))
    before = snapshot(dirty_repo)
    with pytest.raises(BinaryNotFoundError, match="npm"):
        await aorchestrate("objective", repo=dirty_repo)
    assert snapshot(dirty_repo) == before


async def test_resuming_an_unknown_run_id(dirty_repo: Path) -> None:
    before = snapshot(dirty_repo)
    with pytest.raises(ConfigurationError, match="no run 'no-such-run' is recorded"):
        await aresume("no-such-run", repo=dirty_repo, server_url="http://127.0.0.1:9")
    assert snapshot(dirty_repo) == before


def test_snapshot_sees_a_change(git_repo: Path) -> None:
    # The comparisons above would be worthless if the snapshot missed changes.
    before = snapshot(git_repo)
    (git_repo / "README.md").write_text("changed\n")
    assert snapshot(git_repo) != before
    os.remove(git_repo / "README.md")
    assert snapshot(git_repo)["files"] == {}


async def test_an_unknown_model_is_named_with_the_known_ones(
    opencode_server: OpenCodeServer, dirty_repo: Path
) -> None:
    before = snapshot(dirty_repo)
    with pytest.raises(
        ConfigurationError, match=r"unknown model scripted/nope: .*scripted/scripted"
    ):
        await aorchestrate(
            "objective",
            repo=dirty_repo,
            server_url=opencode_server.url,
            password=opencode_server.password,
            settings=RunSettings(worker_model="scripted/nope"),
        )
    assert snapshot(dirty_repo) == before


# -- run ids ---------------------------------------------------------------------------


BAD_RUN_IDS = ["../../evil", "-x", ".hidden", "_x", "a..b", "x.lock", "a/b", "x" * 65, ""]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
async def test_a_bad_run_id_is_refused_by_the_api_before_anything_is_written(
    run_id: str, dirty_repo: Path
) -> None:
    before = snapshot(dirty_repo)
    with pytest.raises(ConfigurationError, match="invalid run id"):
        await aorchestrate("objective", repo=dirty_repo, run_id=run_id, server_url=NO_SERVER[1])
    with pytest.raises(ConfigurationError, match="invalid run id"):
        await aresume(run_id, repo=dirty_repo, server_url=NO_SERVER[1])
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


async def test_a_bad_run_id_is_refused_by_the_cli_and_no_ghost_run_is_listed(
    dirty_repo: Path,
) -> None:
    before = snapshot(dirty_repo)
    result = await cli("run", "x", "--repo", str(dirty_repo), "--run-id", "../../evil", *NO_SERVER)
    _one_error_line(result, "invalid run id '../../evil'")
    resumed = await cli("resume", "../../evil", "--repo", str(dirty_repo), *NO_SERVER)
    _one_error_line(resumed, "invalid run id '../../evil'")
    listed = await cli("runs", "--repo", str(dirty_repo))
    assert listed.returncode == 0, _show(listed)
    assert "No runs are recorded" in listed.stdout
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


# -- settings of the wrong type ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"max_parallel": "abc"}, "max_parallel must be a whole number, got 'abc' (str)"),
        ({"max_parallel": 1.5}, "max_parallel must be a whole number, got 1.5 (float)"),
        ({"max_rework_rounds": True}, "max_rework_rounds must be a whole number, got True"),
        ({"check_timeout": "10"}, "check_timeout must be a number, got '10' (str)"),
        ({"run_cost_budget": float("nan")}, "run_cost_budget must be a number, got nan"),
        ({"review": "no"}, "review must be true or false, got 'no' (str)"),
        ({"allow_permissions": "bash:*"}, "allow_permissions must be a list of strings"),
        ({"deny_permissions": [1]}, "deny_permissions must be a list of strings"),
        ({"password_envs": {"http://h:1": 3}}, "password_envs must be a mapping of strings"),
        ({"worker_model": None}, "worker_model must be a string, got None"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_settings_of_the_wrong_type_are_named(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RunSettings(**given)
    assert str(info.value).startswith(f"invalid run settings: {message}")
    assert "\n" not in str(info.value)  # one problem, one line


def test_every_wrong_setting_is_listed_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        RunSettings(max_parallel="abc", check_timeout=[], approve_plan=1)  # type: ignore[arg-type]
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid run settings:"
    assert [line.split()[1] for line in lines[1:]] == [
        "max_parallel",
        "approve_plan",
        "check_timeout",
    ]


def test_whole_numbers_are_accepted_where_a_number_is_wanted() -> None:
    assert RunSettings(check_timeout=5, run_cost_budget=1).check_timeout == 5


async def test_a_dict_as_settings_and_a_number_as_objective_are_refused_by_the_api(
    dirty_repo: Path,
) -> None:
    before = snapshot(dirty_repo)
    with pytest.raises(ConfigurationError, match=r"settings must be a RunSettings, got dict"):
        await aorchestrate(
            "objective",
            repo=dirty_repo,
            settings={"max_parallel": 2},  # type: ignore[arg-type]
            server_url=NO_SERVER[1],
        )
    with pytest.raises(ConfigurationError, match=r"settings must be a RunSettings, got dict"):
        await aresume("some-run", repo=dirty_repo, settings={}, server_url=NO_SERVER[1])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"the objective must be a string.*got int"):
        await aorchestrate(123, repo=dirty_repo, server_url=NO_SERVER[1])  # type: ignore[arg-type]
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


async def test_a_studio_context_of_the_wrong_type_is_refused(dirty_repo: Path) -> None:
    # LangGraph Server turns the run's context (a dict) into RunSettings.
    before = snapshot(dirty_repo)
    with pytest.raises(ConfigurationError, match="max_parallel must be a whole number"):
        await studio_graph.ainvoke(
            {"objective": "x", "repo": str(dirty_repo)}, context={"max_parallel": "abc"}
        )
    assert snapshot(dirty_repo) == before


async def test_a_studio_input_without_repo_is_refused_not_run_in_the_servers_directory(
    dirty_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dirty_repo)  # the server's own directory, had the run used it
    before = snapshot(dirty_repo)
    for given in (
        {"objective": "x"},
        {"objective": "x", "repo": ""},
        {"objective": "x", "repo": "."},
    ):
        with pytest.raises(ConfigurationError, match="repo must be the absolute path"):
            await studio_graph.ainvoke(given, context={"server_url": NO_SERVER[1]})
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


async def test_new_input_on_a_thread_that_holds_a_run_is_refused_not_mixed(
    git_repo: Path,
) -> None:
    graph = studio_graph.copy(update={"checkpointer": InMemorySaver()})
    config: RunnableConfig = {"configurable": {"thread_id": "studio-thread"}}
    context = RunSettings(server_url=NO_SERVER[1], approve_plan=True)
    first = {"objective": "first", "repo": str(git_repo), "plan": one_task_plan("a")}
    await graph.ainvoke(first, config, context=context)  # pauses for the plan's approval
    before = await graph.aget_state(config)
    assert before.next == ("approve_plan",)

    second = {"objective": "second", "repo": str(git_repo), "plan": one_task_plan("b")}
    with pytest.raises(ConfigurationError, match="already holds run"):
        await graph.ainvoke(second, config, context=context)

    state = (await graph.aget_state(config)).values
    assert state["objective"] == "first"
    assert state["run_id"] == before.values["run_id"]
    assert state["plan"] == before.values["plan"]  # the run's own plan, not the new input's
    assert git(git_repo, "branch", "--list", "lgoc/*").count("integration") == 1


# -- names the run reserves -------------------------------------------------------------------


async def test_a_task_named_integration_is_refused_by_plan_validation(
    dirty_repo: Path, tmp_path: Path
) -> None:
    plan = _write(
        tmp_path / "plan.yaml",
        "objective: x\ntasks:\n  - {id: integration, title: I, instructions: do it}\n",
    )
    before = snapshot(dirty_repo)
    with pytest.raises(PlanError, match="'integration' is reserved"):
        await aorchestrate("objective", repo=dirty_repo, plan=plan, server_url=NO_SERVER[1])
    result = await cli("run", "x", "--repo", str(dirty_repo), "--plan", str(plan), *NO_SERVER)
    assert result.returncode == 2, _show(result)
    assert "'integration' is reserved" in result.stderr
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


@pytest.mark.parametrize("branch", ["lgoc", "lgoc/blocked"])
async def test_a_branch_in_the_way_of_the_runs_branches_is_named_up_front(
    branch: str, dirty_repo: Path, opencode_server: OpenCodeServer
) -> None:
    git(dirty_repo, "branch", branch)
    before = snapshot(dirty_repo)
    with pytest.raises(ConfigurationError, match=f"your branch '{branch}' is in the way"):
        await aorchestrate("objective", repo=dirty_repo, run_id="blocked", server_url=NO_SERVER[1])
    result = await cli(
        "run", "x", "--repo", str(dirty_repo), "--run-id", "blocked", server=opencode_server
    )
    _one_error_line(result, f"rename it (git branch -m {branch} {branch}-branch)")
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


# -- checkpoint store ----------------------------------------------------------------------


def _read_only_dir(tmp_path: Path) -> str:
    where = tmp_path / "read-only"
    where.mkdir(mode=0o555)
    if os.geteuid() == 0:
        # Root writes into any mode; not into an immutable directory.
        subprocess.run(["chattr", "+i", str(where)], check=True)
    return str(where / "x.sqlite")


def _writable_again(tmp_path: Path) -> None:
    where = tmp_path / "read-only"
    if where.exists() and os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(where)], check=True)


CHECKPOINT_CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "missing-dir": (
        lambda tmp: str(tmp / "nonexistent" / "dir" / "x.sqlite"),
        "nonexistent/dir does not exist",
    ),
    "parent-is-a-file": (lambda tmp: str(_write(tmp / "file", "") / "x.sqlite"), "does not exist"),
    "a-directory": (lambda tmp: str(tmp), "it is a directory"),
    "read-only-dir": (_read_only_dir, "is not writable"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
async def test_an_unwritable_checkpoint_path_is_named_with_what_to_do(
    case: str, dirty_repo: Path, tmp_path: Path
) -> None:
    make, message = CHECKPOINT_CASES[case]
    path = make(tmp_path)
    try:
        await _refused_checkpoint_path(path, message, dirty_repo, tmp_path)
    finally:
        _writable_again(tmp_path)


async def _refused_checkpoint_path(
    path: str, message: str, dirty_repo: Path, tmp_path: Path
) -> None:
    before = snapshot(dirty_repo)
    listed = sorted(os.listdir(tmp_path))
    with pytest.raises(ConfigurationError, match="cannot write the checkpoint file") as info:
        await aorchestrate("objective", repo=dirty_repo, checkpointer=path, server_url=NO_SERVER[1])
    assert message in str(info.value)
    assert "LANGGRAPH_OPENCODE_CHECKPOINTS" in str(info.value)
    env = {"LANGGRAPH_OPENCODE_CHECKPOINTS": path}
    result = await cli("run", "x", "--repo", str(dirty_repo), *NO_SERVER, env=env)
    _one_error_line(result, f"cannot write the checkpoint file {path}")
    assert "unexpected" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == listed
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


# -- a broken OpenCode binary -----------------------------------------------------------------


def _hanging_binary(tmp_path: Path) -> tuple[Path, Path]:
    pid_file = tmp_path / "hanging.pid"
    binary = _write(
        tmp_path / "hanging-opencode", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n"
    )
    binary.chmod(0o755)
    return binary, pid_file


def _pid_gone(pid: int, within: float = 30.0) -> bool:
    """Whether ``pid`` ends (a zombie has ended) within ``within`` s: a kill is not instant."""
    deadline = time.monotonic() + within
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rpartition(")")[2].split()[0] == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.mark.parametrize("binary", ["false", "hangs"])
async def test_a_broken_opencode_binary_offers_no_resume_of_a_run_never_recorded(
    binary: str, dirty_repo: Path, tmp_path: Path
) -> None:
    pid_file = None
    if binary == "false":
        # The server runs under its keeper, which logs how it ended.
        path, expected = Path("/bin/false"), "opencode serve exited with code 1"
    else:
        (path, pid_file), expected = _hanging_binary(tmp_path), "was not healthy after"
    before = snapshot(dirty_repo)
    result = await cli(
        "run",
        "x",
        "--repo",
        str(dirty_repo),
        env={"LANGGRAPH_OPENCODE_BINARY": str(path), "LANGGRAPH_OPENCODE_STARTUP_TIMEOUT": "10"},
    )
    assert result.returncode == 1, _show(result)
    assert result.stderr.startswith("error: opencode serve"), _show(result)
    assert expected in result.stderr
    assert "resume" not in result.stdout + result.stderr
    if pid_file is not None:
        assert _pid_gone(int(pid_file.read_text())), "the hanging server was left running"
    listed = await cli("runs", "--repo", str(dirty_repo))
    assert "No runs are recorded" in listed.stdout, _show(listed)
    assert snapshot(dirty_repo) == before


# -- command-line flags ---------------------------------------------------------------------


FLAG_CASES: dict[str, tuple[list[str], str]] = {
    "check-timeout-word": (["--check-timeout", "abc"], "--check-timeout: wants seconds"),
    "turn-timeout-zero": (["--turn-timeout", "0"], "--turn-timeout: wants seconds greater than 0"),
    "stall-timeout-nan": (["--stall-timeout", "nan"], "--stall-timeout: wants seconds"),
    "token-budget-fraction": (["--task-token-budget", "1.5"], "a whole number of tokens"),
    "cost-budget-negative": (["--run-cost-budget", "-1"], "--run-cost-budget: wants dollars"),
    "allow-colon": (["--allow", ":"], "':' has an empty permission"),
    "deny-unclosed": (["--deny", "bash:rm ["], "has a '[' without its ']'"),
    "deny-colon-bracket": (["--deny", ":["], "':[' has an empty permission"),
    "allow-no-pattern": (["--allow", "bash:"], "'bash:' has an empty pattern"),
}


@pytest.mark.parametrize("case", sorted(FLAG_CASES))
async def test_bad_flag_values_are_one_line_and_exit_2(case: str, dirty_repo: Path) -> None:
    flags, expected = FLAG_CASES[case]
    before = snapshot(dirty_repo)
    for command in (["run", "x"], ["resume", "some-run"]):
        result = await cli(*command, "--repo", str(dirty_repo), *flags, *NO_SERVER)
        _one_error_line(result, expected)
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


def test_broken_permission_rules_are_refused_by_the_settings() -> None:
    with pytest.raises(ConfigurationError) as info:
        RunSettings(allow_permissions=[":", "bash:git *"], deny_permissions=["bash:[x"])
    assert "allow_permissions: ':' has an empty permission" in str(info.value)
    assert "deny_permissions: 'bash:[x' has a '[' without its ']'" in str(info.value)
    RunSettings(allow_permissions=["bash:git [a-z]*", "edit:[[]notes]"])  # closed sets are fine


OBJECTIVE_FILE_CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "both": (lambda tmp: ["x", "--objective-file", str(_write(tmp / "o.md", "y"))], "not both"),
    "neither": (lambda tmp: [], "give the objective either as OBJECTIVE or with --objective-file"),
    "missing": (
        lambda tmp: ["--objective-file", str(tmp / "nowhere.md")],
        "nowhere.md: No such file or directory",
    ),
    "a-directory": (lambda tmp: ["--objective-file", str(tmp)], "Is a directory"),
    "empty": (
        lambda tmp: ["--objective-file", str(_write(tmp / "empty.md", " \n"))],
        "empty.md is empty",
    ),
    "not-utf8": (
        lambda tmp: ["--objective-file", str(_binary(tmp / "bin.md"))],
        "it is not UTF-8 text",
    ),
    "200KB": (
        lambda tmp: ["--objective-file", str(_write(tmp / "long.md", "x" * 200_000))],
        "long.md is 200,000 characters long; the limit is 100,000",
    ),
}


def _binary(path: Path) -> Path:
    path.write_bytes(b"\xff\xfe\x00bad")
    return path


@pytest.mark.parametrize("case", sorted(OBJECTIVE_FILE_CASES))
async def test_bad_objective_files_are_one_line_and_exit_2(
    case: str, dirty_repo: Path, tmp_path: Path
) -> None:
    make, expected = OBJECTIVE_FILE_CASES[case]
    args = make(tmp_path)
    before = snapshot(dirty_repo)
    result = await cli("run", *args, "--repo", str(dirty_repo), *NO_SERVER)
    _one_error_line(result, expected)
    assert snapshot(dirty_repo) == before
    _nothing_recorded(dirty_repo)


async def test_an_empty_objective_on_stdin_is_refused(dirty_repo: Path) -> None:
    result = await cli(
        "run", "--objective-file", "-", "--repo", str(dirty_repo), *NO_SERVER, stdin="\n"
    )
    _one_error_line(result, "the objective file stdin is empty")
    _nothing_recorded(dirty_repo)


async def test_a_given_plan_with_approve_plan_pauses_and_the_resume_keeps_the_flags(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, dirty_repo: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(fan_in_plan()))
    budgets = [
        "--check-timeout", "30", "--turn-timeout", "60", "--stall-timeout", "20",
        "--task-token-budget", "1000", "--run-cost-budget", "0.5",
    ]  # fmt: skip
    paused = await cli(
        "run",
        "--objective-file",
        "-",
        "--repo",
        str(dirty_repo),
        "--plan",
        str(plan),
        "--approve-plan",
        "--run-id",
        "given-plan",
        *budgets,
        server=opencode_server,
        stdin="three files, from stdin\n",
    )
    assert paused.returncode == 3, _show(paused)
    assert "The plan (3 tasks) waits for approval" in paused.stdout
    assert git(dirty_repo, "branch", "--list", "lgoc/given-plan/a") == ""  # nothing dispatched
    line = next(x for x in paused.stdout.splitlines() if x.startswith("Approve it:"))
    command = shlex.split(line.removeprefix("Approve it:"))
    for flag, value in zip(budgets[::2], budgets[1::2], strict=True):
        assert float(command[command.index(flag) + 1]) == float(value), line
    status = await cli("status", "given-plan", "--repo", str(dirty_repo))
    assert "> three files, from stdin" in status.stdout, _show(status)
    assert model.chat_requests() == []  # the plan was given: no planner prompt


# -- answers ------------------------------------------------------------------------------------


async def test_an_unusable_answer_to_the_plan_approval_is_refused_and_the_reason_shown(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, dirty_repo: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(fan_in_plan()))
    where = ["--repo", str(dirty_repo)]
    paused = await cli(
        "run", "three files", *where, "--plan", str(plan), "--approve-plan", "--run-id", "ask",
        server=opencode_server,
    )  # fmt: skip
    assert paused.returncode == 3, _show(paused)
    before = snapshot(dirty_repo)

    refused = await cli("resume", "ask", *where, "--answer", "approv", server=opencode_server)
    _one_error_line(refused, "unusable --answer: resume the plan approval with 'approve'")
    assert "got 'approv'" in refused.stderr
    for answer in ('{"action": "maybe"}', "[1]", "once"):
        again = await cli("resume", "ask", *where, "--answer", answer, server=opencode_server)
        _one_error_line(again, "unusable --answer")
    assert snapshot(dirty_repo) == before

    # Through the API the answer reaches the run, which pauses again saying why.
    report = await aresume(
        "ask",
        repo=dirty_repo,
        answer="approv",
        settings=RunSettings(approve_plan=True),
        server_url=opencode_server.url,
        password=opencode_server.password,
    )
    assert report.status == "interrupted"
    status = await cli("status", "ask", *where)
    assert "The last answer could not be used: resume the plan approval" in status.stdout
    assert "got 'approv'" in status.stdout, _show(status)
    assert snapshot(dirty_repo) == before


# -- terminal escape sequences ------------------------------------------------------------------


ESCAPES = "\x1b[2J\x1b]0;pwned\x07\x9b2J"
"""Clear the screen, set the window title, and a C1 CSI."""


async def test_escape_sequences_from_files_and_the_model_never_reach_the_terminal(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, dirty_repo: Path, tmp_path: Path
) -> None:
    plan = one_task_plan(file="one.txt")
    plan["summary"] = f"summary {ESCAPES}"
    plan["tasks"][0]["title"] = f"title {ESCAPES}"
    plan["tasks"][0]["checks"] = [f"test -f one.txt # {ESCAPES}"]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    where = ["--repo", str(dirty_repo), "--max-rework-rounds", "0"]
    outputs = []

    paused = await cli(
        "run", f"objective {ESCAPES}", *where, "--plan", str(plan_file), "--approve-plan",
        "--run-id", "esc", server=opencode_server,
    )  # fmt: skip
    assert paused.returncode == 3, _show(paused)
    assert "title \\x1b[2J\\x1b]0;pwned\\x07\\x9b2J" in paused.stdout  # shown, made harmless
    outputs.append(paused)
    outputs.append(await cli("status", "esc", "--repo", str(dirty_repo)))
    outputs.append(await cli("runs", "--repo", str(dirty_repo)))

    model.script(
        worker_writes("one", {"one.txt": "1\n"}),
        reviewer_says(False, task_id="one", feedback=f"feedback {ESCAPES}"),
    )
    done = await cli("resume", "esc", *where, "--answer", "approve", server=opencode_server)
    assert done.returncode == 1, _show(done)
    assert "one failed" in done.stdout, _show(done)
    outputs.append(done)
    outputs.append(await cli("status", "esc", "--repo", str(dirty_repo)))
    outputs.append(await cli("runs", "--repo", str(dirty_repo)))
    for result in outputs:
        for control in ("\x1b", "\x9b", "\x07"):
            assert control not in result.stdout + result.stderr, _show(result)
    assert "objective \\x1b[2J" in outputs[1].stdout, _show(outputs[1])
