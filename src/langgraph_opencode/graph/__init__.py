"""The orchestration graph: state, settings, and how the nodes are wired."""

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import (
    OrchestratorInput,
    OrchestratorOutput,
    OrchestratorState,
    PromptJob,
    TaskRecord,
)
from langgraph_opencode.graph.builder import build_graph, compile_graph

__all__ = [
    "OrchestratorInput",
    "OrchestratorOutput",
    "OrchestratorState",
    "PromptJob",
    "RunSettings",
    "TaskRecord",
    "build_graph",
    "compile_graph",
]
