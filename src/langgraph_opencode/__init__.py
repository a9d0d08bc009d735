"""Turn one coding objective into reviewed, merged work with OpenCode sessions under LangGraph."""

from langgraph_opencode.errors import (
    ConfigurationError,
    LangGraphOpenCodeError,
    OpenCodeError,
)
from langgraph_opencode.tools.opencode import OpenCodeClient, PromptOutcome

__all__ = [
    "ConfigurationError",
    "LangGraphOpenCodeError",
    "OpenCodeClient",
    "OpenCodeError",
    "PromptOutcome",
    "__version__",
]

__version__ = "0.1.0"
