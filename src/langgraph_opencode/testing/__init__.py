r"""Test helpers: a scripted OpenAI-compatible model server for OpenCode.

:class:`ScriptedModelServer` serves ``/v1/chat/completions`` on loopback from
a script, like langchain's fake chat models but over real HTTP: OpenCode uses
it as its model provider and really runs the tools the script calls, offline
and deterministically.

Example:
    ```python
    from langgraph_opencode.testing import (
        Conversation, ScriptedModelServer, Step, StructuredOutput, Text, ToolCall,
    )

    model = ScriptedModelServer(
        Conversation(
            ToolCall.write("notes.txt", "hello\n"),
            Step(Text("Created notes.txt."), after_tool="write"),
            user="Create notes.txt",
        ),
        Step(StructuredOutput({"verdict": "approve"}), system="You are the reviewer"),
    )
    with model:
        config = model.provider_config()  # put into OPENCODE_CONFIG_CONTENT
        ...
        model.assert_complete()
    ```
"""

from ._orchestration import (
    clashing_notes_plan,
    fan_in_plan,
    files_plan,
    independent_plan,
    one_task_plan,
    planner_returns,
    reviewer_says,
    task_prompt,
    worker_writes,
)
from ._postgres import PostgresServer
from ._replies import (
    DropConnection,
    ErrorResponse,
    Hang,
    MalformedChunk,
    Reply,
    ReplyLike,
    StructuredOutput,
    Text,
    ToolCall,
    ToolCalls,
    Usage,
)
from ._repo import GIT_ENV, git, make_repo
from ._request import AuxiliaryKind, ChatRequest, RecordedRequest, ToolResult
from ._script import Conversation, Match, ScriptEntry, Step, TextMatcher
from ._server import DEFAULT_AUXILIARY_REPLIES, ScriptedModelServer
from ._user import user_environment

__all__ = [
    "DEFAULT_AUXILIARY_REPLIES",
    "GIT_ENV",
    "AuxiliaryKind",
    "ChatRequest",
    "Conversation",
    "DropConnection",
    "ErrorResponse",
    "Hang",
    "MalformedChunk",
    "Match",
    "PostgresServer",
    "RecordedRequest",
    "Reply",
    "ReplyLike",
    "ScriptEntry",
    "ScriptedModelServer",
    "Step",
    "StructuredOutput",
    "Text",
    "TextMatcher",
    "ToolCall",
    "ToolCalls",
    "ToolResult",
    "Usage",
    "clashing_notes_plan",
    "fan_in_plan",
    "files_plan",
    "git",
    "independent_plan",
    "make_repo",
    "one_task_plan",
    "planner_returns",
    "reviewer_says",
    "task_prompt",
    "user_environment",
    "worker_writes",
]
