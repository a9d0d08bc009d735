"""An isolated ``opencode serve`` stays off the network and out of the user's files.

Each server here is isolated and wired to the scripted model. The models.dev
catalogue is pointed (``OPENCODE_MODELS_URL``) at a loopback recorder, so a
fetch of it is seen rather than failing somewhere on the network, and
``HOME`` holds a ``~/.claude/CLAUDE.md`` that OpenCode would put into every
system prompt. The control server gets the offline variables set to ``0``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from langgraph_opencode.testing import ScriptedModelServer, Step, Text
from langgraph_opencode.tools.opencode import (
    WORKER_AGENT,
    EventHub,
    OpenCodeClient,
    send_and_wait,
)
from langgraph_opencode.tools.opencode.server import OFFLINE_VARS, OpenCodeServer

pytestmark = pytest.mark.opencode

MARKER = "USER-CLAUDE-MD-MARKER"


class _Recorder(ThreadingHTTPServer):
    """A loopback HTTP server that answers 404 and records the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.asked = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.paths.append(self.path)
                recorder.asked.set()
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def models_dev() -> Iterator[_Recorder]:
    recorder = _Recorder()
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.shutdown()
        recorder.server_close()
        thread.join(5)


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "CLAUDE.md").write_text(f"Always say {MARKER}.\n")
    monkeypatch.setenv("HOME", str(home))
    return home


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


async def _system_prompt(server: OpenCodeServer, model: ScriptedModelServer, repo: Path) -> str:
    """The system prompt of one worker prompt's model request."""
    model.script(Step(Text("hi"), name="answer"))
    async with (
        OpenCodeClient(server.url, password=server.password) as client,
        EventHub(client) as hub,
    ):
        session = await client.create_session(repo, title="offline")
        outcome = await send_and_wait(client, hub, session.id, repo, "hello", agent=WORKER_AGENT)
    assert outcome.kind == "ok", outcome
    (request,) = model.chat_requests()
    return request.request.system


async def test_an_isolated_server_fetches_nothing_and_reads_no_user_claude_files(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    models_dev: _Recorder,
    user_home: Path,
    git_repo: Path,
) -> None:
    async with make_opencode_server(env={"OPENCODE_MODELS_URL": models_dev.url}) as server:
        assert server.pid is not None
        environ = _environ(server.pid)
        system = await _system_prompt(server, model, git_repo)

    assert {name: environ.get(name) for name in OFFLINE_VARS} == dict.fromkeys(OFFLINE_VARS, "1")
    assert environ["HOME"] == str(user_home)
    assert MARKER not in system
    assert models_dev.paths == []
    log = server.log_path.read_text()
    assert "models.dev" not in log
    assert models_dev.url not in log


async def test_without_the_offline_variables_the_same_server_fetches_and_reads_them(
    model: ScriptedModelServer,
    make_opencode_server: Callable[..., OpenCodeServer],
    models_dev: _Recorder,
    user_home: Path,
    git_repo: Path,
) -> None:
    # The control of the test above: its checks would see the fetch and the file.
    env = {"OPENCODE_MODELS_URL": models_dev.url, **dict.fromkeys(OFFLINE_VARS, "0")}
    async with make_opencode_server(env=env) as server:
        system = await _system_prompt(server, model, git_repo)
        assert models_dev.asked.wait(10), "no fetch of the models catalogue"

    assert MARKER in system
    assert "/api.json" in models_dev.paths
