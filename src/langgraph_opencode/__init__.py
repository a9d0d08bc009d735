"""Turn one coding objective into reviewed, merged work with OpenCode sessions under LangGraph."""

from langgraph_opencode.api import aorchestrate, aresume, orchestrate, resume
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.errors import (
    ConfigurationError,
    LangGraphOpenCodeError,
    OpenCodeError,
)
from langgraph_opencode.graph.builder import build_graph, compile_graph
from langgraph_opencode.plan import Plan, Task
from langgraph_opencode.report import RunReport, TaskReport
from langgraph_opencode.tools.opencode import OpenCodeClient, PromptOutcome

__all__ = [
    "ConfigurationError",
    "LangGraphOpenCodeError",
    "OpenCodeClient",
    "OpenCodeError",
    "Plan",
    "PromptOutcome",
    "RunReport",
    "RunSettings",
    "Task",
    "TaskReport",
    "__version__",
    "aorchestrate",
    "aresume",
    "build_graph",
    "compile_graph",
    "orchestrate",
    "resume",
]

__version__ = "0.1.0"
