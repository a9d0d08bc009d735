"""Pytest fixtures: a real ``opencode serve`` wired to a scripted model.

Enable them in a ``conftest.py``::

    pytest_plugins = ["langgraph_opencode.testing.pytest_plugin"]

The scripted model is started once per test session; the OpenCode server once
per test module (it takes about two seconds to start, and a long-lived server
grows: one that served a whole suite reached gigabytes and stopped answering,
so no module inherits what an earlier one left on it). Each test gets the model
with an empty script, its own git repository, and a fresh client and event hub.
Async fixtures run in the session's event loop, so configure pytest-asyncio with
``asyncio_default_fixture_loop_scope = "session"`` and
``asyncio_default_test_loop_scope = "session"``.

Waits are sized for a loaded machine: servers get ``STARTUP_TIMEOUT`` seconds
to become healthy, and the event hub as long to connect.

Fixtures:
    scripted_model: The session's :class:`ScriptedModelServer` (shared).
    model: The same server with its script and records cleared for this test.
    opencode_config: The OpenCode config the servers get (orchestrator agents
        plus the scripted provider).
    opencode_server: The test module's isolated :class:`OpenCodeServer`.
    make_opencode_server: Start another isolated server wired to the model,
        e.g. for a test that kills it or runs many sessions:
        ``async with make_opencode_server() as s``.
    opencode: An :class:`OpenCodeClient` for ``opencode_server``.
    opencode_events: A connected :class:`EventHub` for ``opencode``.
    git_repo: A new git repository with one commit, in ``tmp_path``.
    postgres: A throwaway PostgreSQL server (:class:`PostgresServer`) shared
        by the test session, for checkpoints in a real database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from langgraph_opencode.testing._postgres import PostgresServer
from langgraph_opencode.testing._repo import make_repo
from langgraph_opencode.testing._server import ScriptedModelServer
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.config import build_config
from langgraph_opencode.tools.opencode.events import EventHub
from langgraph_opencode.tools.opencode.server import OpenCodeServer

__all__ = [
    "git_repo",
    "make_opencode_server",
    "model",
    "opencode",
    "opencode_config",
    "opencode_events",
    "opencode_server",
    "postgres",
    "scripted_model",
]

STARTUP_TIMEOUT = 120.0
"""Seconds a test's server may take to start: ~2 s on a quiet machine, far more on a busy one."""


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModelServer]:
    """The scripted model server shared by the test session."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> Iterator[ScriptedModelServer]:
    """The scripted model, cleared for this test; unused steps fail it at teardown."""
    scripted_model.reset()
    yield scripted_model
    scripted_model.assert_complete()


@pytest.fixture(scope="session")
def opencode_config(scripted_model: ScriptedModelServer) -> dict[str, Any]:
    """The orchestrator's OpenCode config, with the scripted model as provider."""
    return build_config(extra=scripted_model.provider_config())


@pytest.fixture(scope="session")
def make_opencode_server(
    opencode_config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., OpenCodeServer]:
    """Return a factory of isolated servers wired to the scripted model."""

    def make(**kwargs: Any) -> OpenCodeServer:
        kwargs.setdefault("config", opencode_config)
        kwargs.setdefault("isolated", True)
        kwargs.setdefault("startup_timeout", STARTUP_TIMEOUT)
        kwargs.setdefault("log_path", tmp_path_factory.mktemp("opencode") / "serve.log")
        return OpenCodeServer(**kwargs)

    return make


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def opencode_server(
    make_opencode_server: Callable[..., OpenCodeServer],
) -> AsyncIterator[OpenCodeServer]:
    """The isolated ``opencode serve`` shared by the tests of one module.

    Stopped when the module's tests are done, so that the sessions one module
    left on it (and the memory they hold) never slow down the next module.
    """
    async with make_opencode_server() as server:
        yield server
        # Its data is thrown away: no graceful exit to wait for (after a module's
        # sessions, SIGTERM takes the whole stop_timeout, 5 s, per module).
        await server.kill()


@pytest_asyncio.fixture(loop_scope="session")
async def opencode(opencode_server: OpenCodeServer) -> AsyncIterator[OpenCodeClient]:
    """A client of the module's server."""
    async with OpenCodeClient(opencode_server.url, password=opencode_server.password) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def opencode_events(opencode: OpenCodeClient) -> AsyncIterator[EventHub]:
    """A connected event hub of the module's server."""
    async with EventHub(opencode) as hub:
        await hub.wait_connected(timeout=STARTUP_TIMEOUT)
        yield hub


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A git repository with one commit on ``main``."""
    return make_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test session's own, on loopback."""
    with PostgresServer() as server:
        yield server
