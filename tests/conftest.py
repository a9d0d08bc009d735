from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from blockbuster import blockbuster_ctx

from langgraph_opencode.testing import ScriptedModelServer
from langgraph_opencode.tools.opencode.config import build_config
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytest_plugins = ["langgraph_opencode.testing.pytest_plugin"]

# What runs inside the graph's nodes. LangGraph Server's development runtime
# refuses a run that makes a blocking call (file system, sleep, ...) in the
# event loop; these modules must never do so.
IN_THE_GRAPH = [
    "langgraph_opencode.graph",
    "langgraph_opencode.nodes",
    "langgraph_opencode.tools.git",
    "langgraph_opencode.tools._child",
    "langgraph_opencode.tools.checks",
    "langgraph_opencode.tools.toolkit",
    "langgraph_opencode.tools.opencode.client",
    "langgraph_opencode.tools.opencode._transport",
    "langgraph_opencode.tools.opencode.events",
    "langgraph_opencode.tools.opencode.runs",
]


@pytest.fixture
def no_blocking_calls() -> Iterator[None]:
    """Fail on a blocking call in the event loop by the graph's code, as `langgraph dev` does."""
    with blockbuster_ctx(IN_THE_GRAPH):
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def asking_server(
    scripted_model: ScriptedModelServer, make_opencode_server: Callable[..., OpenCodeServer]
) -> AsyncIterator[OpenCodeServer]:
    """A server of the test module's whose agents (subagents too) ask before every bash command."""
    config = build_config(extra=scripted_model.provider_config(), permission={"bash": "ask"})
    async with make_opencode_server(config=config) as server:
        yield server
