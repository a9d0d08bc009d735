"""OpenCode operations as LangChain tools.

The graph's nodes call OpenCode through these tools, so every call shows up as
a tool run in traces (LangSmith, Studio), and the same tools can be handed to
any LangChain agent::

    toolkit = OpenCodeToolkit(client)
    agent = create_react_agent(model, toolkit.get_tools())
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.models import PermissionReply
from langgraph_opencode.tools.opencode.runs import reconcile

__all__ = ["OpenCodeToolkit"]


class _CreateSession(BaseModel):
    directory: str = Field(description="Absolute path of the project directory or worktree.")
    title: str = Field(description="A short title for the session.")
    parent_id: str | None = Field(default=None, description="Parent session id, if any.")


class _SendPrompt(BaseModel):
    session_id: str = Field(description="The session to prompt; it must be idle.")
    directory: str = Field(description="The session's directory.")
    text: str = Field(description="The prompt.")
    agent: str = Field(description="The OpenCode agent to run it, e.g. 'build'.")
    model: str | None = Field(default=None, description="'provider/model', or none for default.")
    message_id: str | None = Field(default=None, description="The user message id to use.")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON schema, to get the answer as structured output."
    )


class _SessionRef(BaseModel):
    session_id: str = Field(description="The session.")
    directory: str = Field(description="The session's directory.")


class _SessionState(_SessionRef):
    message_id: str | None = Field(default=None, description="The prompt to judge; default: last.")


class _ReplyPermission(BaseModel):
    request_id: str = Field(description="The permission request id (per_...).")
    directory: str = Field(description="The directory of the session that asked.")
    reply: PermissionReply = Field(description="'once', 'always' or 'reject'.")
    message: str | None = Field(default=None, description="Feedback with a rejection.")


class OpenCodeToolkit:
    """The OpenCode tools, bound to one client.

    Attributes:
        create_session: Make a session in a directory; returns its id.
        send_prompt: Send a prompt without waiting; returns the message id.
        session_state: Read a session's state and how its last turn ended.
        abort_session: Stop a session's running turn.
        reply_permission: Answer a permission request.
    """

    def __init__(self, client: OpenCodeClient) -> None:
        self.client = client

        async def create_session(directory: str, title: str, parent_id: str | None = None) -> str:
            session = await client.create_session(directory, title=title, parent_id=parent_id)
            return session.id

        async def send_prompt(
            session_id: str,
            directory: str,
            text: str,
            agent: str,
            model: str | None = None,
            message_id: str | None = None,
            json_schema: dict[str, Any] | None = None,
        ) -> str:
            return await client.prompt_async(
                session_id,
                directory,
                text,
                agent=agent,
                model=model or None,
                schema=json_schema,
                message_id=message_id,
            )

        async def session_state(
            session_id: str, directory: str, message_id: str | None = None
        ) -> dict[str, Any]:
            state = await reconcile(client, session_id, directory, message_id)
            return state.model_dump(mode="json")

        async def abort_session(session_id: str, directory: str) -> bool:
            return await client.abort(session_id, directory)

        async def reply_permission(
            request_id: str, directory: str, reply: PermissionReply, message: str | None = None
        ) -> bool:
            return await client.reply_permission(request_id, directory, reply, message=message)

        def tool(name: str, func: Any, schema: type[BaseModel], description: str) -> BaseTool:
            return StructuredTool.from_function(
                coroutine=func, name=name, args_schema=schema, description=description
            )

        self.create_session = tool(
            "opencode_create_session",
            create_session,
            _CreateSession,
            "Create an OpenCode session working in a directory; returns the session id.",
        )
        self.send_prompt = tool(
            "opencode_send_prompt",
            send_prompt,
            _SendPrompt,
            "Send a prompt to an idle OpenCode session without waiting; returns the message id.",
        )
        self.session_state = tool(
            "opencode_session_state",
            session_state,
            _SessionState,
            "Read whether a session is busy, and how its last (or given) prompt ended.",
        )
        self.abort_session = tool(
            "opencode_abort_session",
            abort_session,
            _SessionRef,
            "Stop an OpenCode session's running turn.",
        )
        self.reply_permission = tool(
            "opencode_reply_permission",
            reply_permission,
            _ReplyPermission,
            "Answer an OpenCode permission request: once, always or reject (with feedback).",
        )

    def get_tools(self) -> list[BaseTool]:
        """Return every tool."""
        return [
            self.create_session,
            self.send_prompt,
            self.session_state,
            self.abort_session,
            self.reply_permission,
        ]
