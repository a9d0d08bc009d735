"""The embedded `opencode serve` (real binary, real processes) and the orchestrator config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from langgraph_opencode.errors import BinaryNotFoundError, ConfigurationError, ServerStartError
from langgraph_opencode.testing.pytest_plugin import STARTUP_TIMEOUT
from langgraph_opencode.tools.opencode import binary as binary_module
from langgraph_opencode.tools.opencode import server as server_module
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import (
    PLANNER_AGENT,
    PLANNER_PROMPT_HEADER,
    REVIEWER_AGENT,
    REVIEWER_PROMPT_HEADER,
    WORKER_AGENT,
    build_config,
    deep_merge,
)
from langgraph_opencode.tools.opencode.server import (
    BINARY_ENV_VAR,
    OPENCODE_VERSION,
    OpenCodeServer,
    find_opencode_binary,
)

SRC_DIR = Path(server_module.__file__).resolve().parents[3]


# --------------------------------------------------------------------------- helpers


def _fake_binary(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _process_gone(pid: int) -> bool:
    """True once the process is gone and reaped (no zombie left)."""
    return not Path(f"/proc/{pid}").exists()


def _dead(pid: int) -> bool:
    """True if the process is gone or a zombie (an orphan waits for init to reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _auth(server: OpenCodeServer) -> tuple[str, str]:
    return (server.username, server.password.get_secret_value())


async def _health(server: OpenCodeServer, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=60) as client:
        return await client.get("/global/health", **kwargs)


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class _RecordingModel:
    """A loopback OpenAI-compatible endpoint that answers every chat request with "ok".

    It records the JSON body of every `POST /v1/chat/completions`.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.requests.append(body)
                chunks: list[dict[str, Any]] = [
                    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]},
                    {
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                ]
                payload = b"".join(
                    b"data: "
                    + json.dumps(
                        {"id": "c1", "object": "chat.completion.chunk", "created": 0, **chunk}
                    ).encode()
                    + b"\n\n"
                    for chunk in chunks
                )
                payload += b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def provider(self) -> dict[str, Any]:
        return {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake",
                "options": {"baseURL": self.base_url, "apiKey": "x"},
                "models": {"scripted": {"name": "Scripted"}},
            }
        }


@pytest.fixture
def recording_model() -> Iterator[_RecordingModel]:
    model = _RecordingModel()
    yield model
    model.close()


# ------------------------------------------------------------------ binary discovery


def test_explicit_binary_wins_over_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _fake_binary(tmp_path / "explicit" / "opencode", "exit 0")
    from_env = _fake_binary(tmp_path / "env" / "opencode", "exit 0")
    monkeypatch.setenv(BINARY_ENV_VAR, str(from_env))
    assert find_opencode_binary(explicit) == explicit
    assert find_opencode_binary() == from_env


def test_env_var_wins_over_node_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_binary(tmp_path / "node_modules" / ".bin" / "opencode", "exit 0")
    from_env = _fake_binary(tmp_path / "env" / "opencode", "exit 0")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(BINARY_ENV_VAR, str(from_env))
    assert find_opencode_binary() == from_env


def test_node_modules_found_from_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _fake_binary(tmp_path / "node_modules" / ".bin" / "opencode", "exit 0")
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    monkeypatch.delenv(BINARY_ENV_VAR, raising=False)
    assert find_opencode_binary() == local


@pytest.mark.opencode
def test_project_node_modules_found_from_package_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BINARY_ENV_VAR, raising=False)
    found = find_opencode_binary()
    assert found == SRC_DIR.parent / "node_modules" / ".bin" / "opencode"


def test_path_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _fake_binary(tmp_path / "bin" / "opencode", "exit 0")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BINARY_ENV_VAR, raising=False)
    monkeypatch.setattr(binary_module, "__file__", str(tmp_path / "pkg" / "binary.py"))
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_opencode_binary() == on_path


def test_not_found_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BINARY_ENV_VAR, raising=False)
    monkeypatch.setattr(binary_module, "__file__", str(tmp_path / "pkg" / "binary.py"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BinaryNotFoundError) as caught:
        find_opencode_binary()
    message = str(caught.value)
    assert "npm ci" in message
    assert f"npm install opencode-ai@{OPENCODE_VERSION}" in message
    assert BINARY_ENV_VAR in message


def test_missing_explicit_binary_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BinaryNotFoundError, match="npm ci"):
        OpenCodeServer(binary=tmp_path / "nope" / "opencode")


def test_env_var_naming_nothing_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINARY_ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(BinaryNotFoundError, match=BINARY_ENV_VAR):
        find_opencode_binary()


def test_invalid_arguments_are_configuration_errors(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path / "opencode", "exit 0")
    with pytest.raises(ConfigurationError, match="port"):
        OpenCodeServer(binary=binary, port=70000)
    with pytest.raises(ConfigurationError, match="OPENCODE_SERVER_PASSWORD"):
        OpenCodeServer(binary=binary, env={"OPENCODE_SERVER_PASSWORD": "x"})
    with pytest.raises(ConfigurationError, match="JSON"):
        OpenCodeServer(binary=binary, config={"x": object()})
    # Either would take the password plugin away (see the password tests below).
    with pytest.raises(ConfigurationError, match="OPENCODE_PURE"):
        OpenCodeServer(binary=binary, env={"OPENCODE_PURE": "1"})
    with pytest.raises(ConfigurationError, match="OPENCODE_CONFIG_CONTENT"):
        OpenCodeServer(binary=binary, env={"OPENCODE_CONFIG_CONTENT": "{}"})
    with pytest.raises(ConfigurationError, match="'plugin' must be a list"):
        OpenCodeServer(binary=binary, config={"plugin": "x.js"})


# ---------------------------------------------------------------- failing start-ups


async def test_binary_that_exits_at_once_fails_fast_with_log_tail(tmp_path: Path) -> None:
    binary = _fake_binary(
        tmp_path / "opencode",
        'echo "starting up, password is $OPENCODE_SERVER_PASSWORD" >&2\necho boom >&2\nexit 3',
    )
    server = OpenCodeServer(binary=binary, password="s3cret-pw", startup_timeout=STARTUP_TIMEOUT)
    with pytest.raises(ServerStartError) as caught:
        async with server:
            pytest.fail("the server cannot have started")
    message = str(caught.value)
    assert "exited with code 3" in message  # at once: not "not healthy after ..." (the timeout)
    assert "boom" in message
    assert "s3cret-pw" not in message
    assert "**********" in message


async def test_binary_that_never_answers_times_out(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path / "opencode", "echo still thinking\nexec sleep 60")
    server = OpenCodeServer(binary=binary, startup_timeout=3)
    with pytest.raises(ServerStartError, match="not healthy after 3 s") as caught:
        await server.start()
    assert "still thinking" in str(caught.value)
    assert not server.running
    await server.close()


@pytest.mark.opencode
async def test_taken_port_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = OpenCodeServer(port=port, isolated=True, startup_timeout=STARTUP_TIMEOUT)
        with pytest.raises(ServerStartError, match=f"127.0.0.1:{port} exited"):
            async with server:
                pytest.fail("the port is taken")


_STUBBORN_SERVER = """
import http.server, signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
port = int(sys.argv[sys.argv.index("--port") + 1])
child = subprocess.Popen(["sleep", "120"])
print("child", child.pid, flush=True)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"healthy": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


async def test_stop_escalates_to_sigkill_and_takes_the_process_group(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(_STUBBORN_SERVER)
    binary = _fake_binary(tmp_path / "opencode", f'exec "{sys.executable}" "{script}" "$@"')
    log_path = tmp_path / "serve.log"
    async with OpenCodeServer(binary=binary, log_path=log_path, stop_timeout=0.5) as server:
        pid = server.pid
        assert pid is not None
        child_pid = int(log_path.read_text().split("child ")[1].split()[0])
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop()
        assert 0.5 <= loop.time() - started < 3
    assert _process_gone(pid)
    assert _dead(child_pid)


# ---------------------------------------------------------------- the real server


@pytest.mark.opencode
async def test_start_health_stop(tmp_path: Path) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    async with OpenCodeServer(isolated=True, startup_timeout=STARTUP_TIMEOUT) as server:
        assert server.running
        pid = server.pid
        assert pid is not None
        assert server.url == f"http://127.0.0.1:{server.port}"
        response = await _health(server, auth=_auth(server))
        assert response.status_code == 200
        assert response.json() == {"healthy": True, "version": OPENCODE_VERSION}
        assert server.log_path.is_file()
    assert not server.running
    assert server.pid is None
    assert _process_gone(pid)
    assert _refuses_connections(server.port)
    assert len(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.opencode
async def test_password_is_required(tmp_path: Path) -> None:
    async with OpenCodeServer(isolated=True, startup_timeout=STARTUP_TIMEOUT) as server:
        assert (await _health(server)).status_code == 401
        assert (await _health(server, auth=("opencode", "wrong"))).status_code == 401
        assert (await _health(server, auth=_auth(server))).status_code == 200


@pytest.mark.opencode
async def test_given_password_is_used_and_never_shown(tmp_path: Path) -> None:
    log_path = tmp_path / "serve.log"
    async with OpenCodeServer(
        isolated=True,
        password="correct-horse-battery",
        log_path=log_path,
        startup_timeout=STARTUP_TIMEOUT,
    ) as server:
        assert (
            await _health(server, auth=("opencode", "correct-horse-battery"))
        ).status_code == 200
        shown = [repr(server), str(server), repr(server.password), str(server.password)]
        assert all("correct-horse-battery" not in text for text in shown)
    assert "correct-horse-battery" not in log_path.read_text()


def test_random_passwords_differ(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path / "opencode", "exit 0")
    first, second = OpenCodeServer(binary=binary), OpenCodeServer(binary=binary)
    assert first.password.get_secret_value() != second.password.get_secret_value()
    assert len(first.password.get_secret_value()) >= 32


@pytest.mark.opencode
async def test_isolated_dirs_are_used_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_xdg = {
        var: tmp_path / "user" / var
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
    }
    for var, path in user_xdg.items():
        monkeypatch.setenv(var, str(path))
    async with OpenCodeServer(isolated=True, startup_timeout=STARTUP_TIMEOUT) as server:
        data_dir = server.data_dir
        assert data_dir is not None
        async with httpx.AsyncClient(base_url=server.url, auth=_auth(server)) as client:
            response = await client.post("/session", params={"directory": str(tmp_path)})
            assert response.status_code == 200
        assert (data_dir / "opencode" / "opencode.db").is_file()
        temp_root = data_dir.parents[1]
        assert server.log_path.parent == temp_root
    assert not temp_root.exists()
    assert not any(path.exists() for path in user_xdg.values())


@pytest.mark.opencode
async def test_not_isolated_uses_the_users_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "user-state"))
    log_path = tmp_path / "logs" / "serve.log"
    async with OpenCodeServer(log_path=log_path, startup_timeout=STARTUP_TIMEOUT) as server:
        assert server.data_dir is None
        assert (await _health(server, auth=_auth(server))).status_code == 200
    assert (tmp_path / "user-data" / "opencode").is_dir()
    assert "listening on" in log_path.read_text()


@pytest.mark.opencode
async def test_commands_of_a_server_on_the_inherited_config_do_not_see_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server started with config=None on a user's own settings, even one
    # asking for OPENCODE_PURE (which would turn the password plugin off).
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "user" / var))
    server_module.provide_plugin_package(tmp_path / "user" / "XDG_CONFIG_HOME" / "opencode")
    monkeypatch.setenv("OPENCODE_CONFIG_CONTENT", json.dumps({"username": "marker-31c"}))
    monkeypatch.setenv("OPENCODE_PURE", "1")
    work = tmp_path / "work"
    work.mkdir()
    command = "env > env.txt; tr '\\0' '\\n' < /proc/$OPENCODE_PID/environ > environ.txt"
    async with (
        OpenCodeServer(startup_timeout=STARTUP_TIMEOUT) as server,
        OpenCodeClient(server.url, password=server.password) as client,
    ):
        assert (await client.request("GET", "/config", directory=work))["username"] == "marker-31c"
        session = await client.create_session(work, title="env")
        await client.shell(session.id, work, command, agent=WORKER_AGENT)
        # Auth still holds, with the password the server was started with.
        assert (await _health(server)).status_code == 401
        assert (await _health(server, auth=_auth(server))).status_code == 200
        assert server.pid is not None
        ours = await asyncio.to_thread(Path(f"/proc/{server.pid}/environ").read_bytes)
    password = server.password.get_secret_value()
    assert "OPENCODE_PID=" in (work / "env.txt").read_text()
    assert "OPENCODE_SERVER_USERNAME=" in (work / "environ.txt").read_text()
    for seen in ((work / "env.txt").read_text(), (work / "environ.txt").read_text(), ours.decode()):
        assert password not in seen


@pytest.mark.opencode
async def test_kill_then_start_again_on_same_port_with_same_password(tmp_path: Path) -> None:
    async with OpenCodeServer(isolated=True, startup_timeout=STARTUP_TIMEOUT) as server:
        port, password, first_pid = server.port, server.password.get_secret_value(), server.pid
        async with httpx.AsyncClient(base_url=server.url, auth=_auth(server)) as client:
            created = await client.post("/session", params={"directory": str(tmp_path)})
            session_id = created.json()["id"]
        assert first_pid is not None

        await server.kill()
        assert not server.running
        assert _process_gone(first_pid)
        assert _refuses_connections(port)

        await server.start()
        assert server.port == port
        assert server.password.get_secret_value() == password
        assert server.pid not in (None, first_pid)
        async with httpx.AsyncClient(base_url=server.url, auth=_auth(server)) as client:
            again = await client.get(f"/session/{session_id}", params={"directory": str(tmp_path)})
            assert again.status_code == 200  # an isolated server keeps its data over restarts


@pytest.mark.opencode
async def test_stop_is_idempotent_and_start_twice_is_an_error(tmp_path: Path) -> None:
    server = OpenCodeServer(isolated=True, startup_timeout=STARTUP_TIMEOUT)
    await server.stop()  # never started: nothing to do
    await server.start()
    with pytest.raises(RuntimeError, match="already running"):
        await server.start()
    pid = server.pid
    assert pid is not None
    await server.stop()
    await server.stop()
    await server.kill()
    assert _process_gone(pid)
    await server.close()
    await server.close()


@pytest.mark.opencode
async def test_cancel_during_start_kills_the_process(tmp_path: Path) -> None:
    server = OpenCodeServer(isolated=True, startup_timeout=STARTUP_TIMEOUT)
    starting = asyncio.create_task(server.start())
    while server.pid is None:  # noqa: ASYNC110 - the spawn has no event to wait on
        await asyncio.sleep(0.01)
    pid = server.pid
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert not server.running
    assert _process_gone(pid)
    await server.close()


_INTERRUPTED_SCRIPT = """
import asyncio
from langgraph_opencode.tools.opencode.server import OpenCodeServer

async def main():
    server = OpenCodeServer(isolated=True, startup_timeout=120)
    starting = asyncio.ensure_future(server.start())
    while server.pid is None:
        await asyncio.sleep(0.01)
    print(server.pid, server.log_path.parent, flush=True)
    await starting
    print("healthy", flush=True)

asyncio.run(main())
"""

_FORGOTTEN_SCRIPT = """
import asyncio
from langgraph_opencode.tools.opencode.server import OpenCodeServer

async def main():
    server = OpenCodeServer(isolated=True, startup_timeout=120)
    await server.start()  # and never stopped
    print(server.pid, server.log_path.parent, flush=True)
    return server

server = asyncio.run(main())
"""


def _run_python(script: str, cwd: Path, interrupt: bool) -> tuple[int, Path, str]:
    """Run a script; return the server pid and temp dir it printed, and its stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    ) as python:
        assert python.stdout is not None
        pid, temp_root = python.stdout.readline().split()
        if interrupt:
            python.send_signal(signal.SIGINT)
        _, stderr = python.communicate(timeout=300)
    return int(pid), Path(temp_root), stderr


def _wait_dead(pid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not _dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.opencode
def test_ctrl_c_during_start_kills_the_process(tmp_path: Path) -> None:
    pid, temp_root, stderr = _run_python(_INTERRUPTED_SCRIPT, tmp_path, interrupt=True)
    assert "KeyboardInterrupt" in stderr
    assert _process_gone(pid)
    assert not temp_root.exists()


@pytest.mark.opencode
def test_a_server_never_stopped_dies_with_the_interpreter(tmp_path: Path) -> None:
    pid, temp_root, _ = _run_python(_FORGOTTEN_SCRIPT, tmp_path, interrupt=False)
    assert _wait_dead(pid)  # killed at exit; its orphan is reaped by init
    assert not temp_root.exists()


# ------------------------------------------------------------- the config it serves


@pytest.mark.opencode
async def test_config_reaches_the_server(tmp_path: Path) -> None:
    config = build_config(permission={"bash": {"*": "ask", "git *": "allow"}})
    params = {"directory": str(tmp_path)}
    async with (
        OpenCodeServer(isolated=True, config=config, startup_timeout=STARTUP_TIMEOUT) as server,
        httpx.AsyncClient(base_url=server.url, auth=_auth(server), params=params) as client,
    ):
        served = (await client.get("/config")).json()
        agents = {agent["name"]: agent for agent in (await client.get("/agent")).json()}
    assert served["autoupdate"] is False
    assert served["share"] == "disabled"
    assert served["snapshot"] is False  # the server knows the key: no undo copies per step
    assert served["permission"]["question"] == "deny"
    assert served["agent"][PLANNER_AGENT]["prompt"].startswith(PLANNER_PROMPT_HEADER)

    def effective(agent: str, permission: str) -> str:
        # The last matching rule wins.
        rules = [r for r in agents[agent]["permission"] if r["permission"] in (permission, "*")]
        return str([r for r in rules if r["pattern"] == "*"][-1]["action"])

    for agent in (PLANNER_AGENT, REVIEWER_AGENT):
        assert agents[agent]["mode"] == "primary"
        for permission in ("edit", "bash", "task", "question"):
            assert effective(agent, permission) == "deny", (agent, permission)
        assert effective(agent, "read") == "allow"
    assert effective(WORKER_AGENT, "question") == "deny"
    assert effective(WORKER_AGENT, "edit") == "allow"
    assert effective(WORKER_AGENT, "bash") == "ask"


@pytest.mark.opencode
async def test_read_only_agents_get_no_write_tools(
    tmp_path: Path, recording_model: _RecordingModel
) -> None:
    config = build_config(
        model="fake/scripted", small_model="fake/scripted", providers=recording_model.provider()
    )
    params = {"directory": str(tmp_path)}
    async with (
        OpenCodeServer(isolated=True, config=config, startup_timeout=STARTUP_TIMEOUT) as server,
        httpx.AsyncClient(
            base_url=server.url, auth=_auth(server), timeout=60, params=params
        ) as client,
    ):
        for agent in (PLANNER_AGENT, REVIEWER_AGENT, WORKER_AGENT):
            session = (await client.post("/session", json={})).json()
            reply = await client.post(
                f"/session/{session['id']}/message",
                json={"agent": agent, "parts": [{"type": "text", "text": f"hello {agent}"}]},
            )
            assert reply.status_code == 200, reply.text

    def request_for(text: str) -> dict[str, Any]:
        # The agent's own request: title generation also sends the text, without tools.
        return next(
            r
            for r in recording_model.requests
            if text in json.dumps(r["messages"]) and "Generate a title" not in json.dumps(r)
        )

    def tools(request: dict[str, Any]) -> set[str]:
        return {tool["function"]["name"] for tool in request.get("tools", [])}

    def system(request: dict[str, Any]) -> str:
        return str(request["messages"][0]["content"])

    write_tools = {"write", "edit", "bash", "apply_patch", "task", "question"}
    planner = request_for(f"hello {PLANNER_AGENT}")
    reviewer = request_for(f"hello {REVIEWER_AGENT}")
    worker = request_for(f"hello {WORKER_AGENT}")
    assert system(planner).startswith(PLANNER_PROMPT_HEADER)
    assert system(reviewer).startswith(REVIEWER_PROMPT_HEADER)
    assert {"read", "grep", "glob"} <= tools(planner)
    assert not tools(planner) & write_tools
    assert not tools(reviewer) & write_tools
    assert {"write", "edit", "bash"} <= tools(worker)
    assert "question" not in tools(worker)


# ------------------------------------------------------------------- config, offline


def test_build_config_defaults() -> None:
    config = build_config()
    assert config["autoupdate"] is False
    assert config["share"] == "disabled"
    assert config["permission"] == {"question": "deny"}
    assert config["tools"] == {"question": False}
    assert set(config["agent"]) == {PLANNER_AGENT, REVIEWER_AGENT}
    assert "model" not in config
    json.dumps(config)


def test_build_config_settings() -> None:
    providers = {"fake": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "u"}}}
    config = build_config(
        model="a/b",
        small_model="a/c",
        providers=providers,
        agent_models={PLANNER_AGENT: "x/y", WORKER_AGENT: "x/z"},
        permission={"question": "allow", "*": "ask", "bash": {"git *": "allow"}},
    )
    assert config["model"] == "a/b"
    assert config["small_model"] == "a/c"
    assert config["provider"] == providers
    assert config["provider"] is not providers
    assert config["agent"][PLANNER_AGENT]["model"] == "x/y"
    assert config["agent"][PLANNER_AGENT]["permission"]["edit"] == "deny"
    assert config["agent"][WORKER_AGENT] == {"model": "x/z"}
    # question stays denied, and after the wildcard (the last matching rule wins)
    assert list(config["permission"].items())[-1] == ("question", "deny")
    assert config["permission"]["*"] == "ask"


def test_build_config_extra_is_deep_merged_last() -> None:
    config = build_config(
        model="a/b",
        extra={"model": "c/d", "agent": {PLANNER_AGENT: {"temperature": 0}}, "snapshot": False},
    )
    assert config["model"] == "c/d"
    assert config["snapshot"] is False
    assert config["agent"][PLANNER_AGENT]["temperature"] == 0
    assert config["agent"][PLANNER_AGENT]["prompt"].startswith(PLANNER_PROMPT_HEADER)


@pytest.mark.parametrize("bad", ["gpt-5", "/x", "x/", ""])
def test_build_config_rejects_malformed_models(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="provider/model"):
        build_config(model=bad)
    with pytest.raises(ConfigurationError, match="provider/model"):
        build_config(agent_models={PLANNER_AGENT: bad})


def test_build_config_rejects_unknown_permission_actions() -> None:
    with pytest.raises(ConfigurationError, match="allow, ask, deny"):
        build_config(permission={"bash": {"*": "maybe"}})  # type: ignore[dict-item]


def test_deep_merge_does_not_modify_inputs() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    override = {"a": {"b": 2}, "e": {"f": 1}}
    merged = deep_merge(base, override)
    assert merged == {"a": {"b": 2, "c": [1]}, "d": 1, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}
    merged["e"]["f"] = 2
    assert override["e"] == {"f": 1}
