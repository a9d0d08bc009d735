from collections.abc import Iterator

import pytest
from blockbuster import blockbuster_ctx

pytest_plugins = ["langgraph_opencode.testing.pytest_plugin"]

# What runs inside the graph's nodes. LangGraph Server's development runtime
# refuses a run that makes a blocking call (file system, sleep, ...) in the
# event loop; these modules must never do so.
IN_THE_GRAPH = [
    "langgraph_opencode.graph",
    "langgraph_opencode.nodes",
    "langgraph_opencode.tools.git",
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
