"""Smoke test: the benchmark harness runs one task through the graph (no timing is checked)."""

from __future__ import annotations

import pytest
from bench.orchestration import measure

pytestmark = pytest.mark.opencode


async def test_the_scaling_benchmark_measures_one_graph_run() -> None:
    results = await measure([1], parallel=1, modes=["graph", "review"])
    graph = results[(1, "graph")]
    assert graph["ok"] == 1
    # The worker's turn was seen ending, recorded by the supervisor, and saved by the graph.
    assert len(graph["detection_s"]) == 1
    assert len(graph["checkpoint_s"]) == 1
    assert graph["db_bytes"] > 0
    assert graph["rss_kib"] > 0
    reviewed = results[(1, "review")]
    assert reviewed["ok"] == 1
    assert len(reviewed["detection_s"]) == 2  # the worker's turn and the reviewer's
