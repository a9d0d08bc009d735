"""Hand permission requests that no rule decides to a person, through an interrupt.

The run pauses with ``{"type": "permission", "requests": [...]}``. Resume it
with ``Command(resume=...)`` holding, per request id, ``"once"``, ``"always"``,
``"reject"`` or ``{"reply": "reject", "message": "why"}``; a plain string
answers every request alike; an unusable answer pauses again with an ``error``.
Nothing is sent before the interrupt returns,
and an answer the server already has (a re-run after a crash) is skipped.
"""

from __future__ import annotations

import contextlib
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from langgraph_opencode.errors import ConfigurationError, NotFoundError
from langgraph_opencode.graph.services import UNREACHABLE, server_lost, services_for
from langgraph_opencode.graph.settings import RunSettings
from langgraph_opencode.graph.state import OrchestratorState
from langgraph_opencode.nodes._common import event, server_of, settings_of

__all__ = ["ask_human", "permission_answer"]

_REPLIES = ("once", "always", "reject")


def permission_answer(answers: Any, request_id: str) -> tuple[str, str | None]:
    """The reply and message that ``answers`` give one permission request.

    Raises:
        ConfigurationError: The answer is not one the server takes.
    """
    value = answers.get(request_id) if isinstance(answers, dict) else answers
    if isinstance(value, dict):
        reply, message = value.get("reply"), value.get("message")
    else:
        reply, message = value, None
    if reply not in _REPLIES:
        raise ConfigurationError(
            f"answer permission request {request_id} with 'once', 'always', 'reject' or "
            f"{{'reply': 'reject', 'message': '...'}}; got {value!r}"
        )
    return str(reply), message


async def ask_human(
    state: OrchestratorState, runtime: Runtime[RunSettings], config: RunnableConfig
) -> dict[str, Any]:
    """Ask a person about the waiting permission requests and pass the answers on."""
    waiting = state.get("waiting") or []
    if not waiting:
        return {}
    payload: dict[str, Any] = {"type": "permission", "run_id": state["run_id"], "requests": waiting}
    while True:
        # An unusable answer pauses again, saying why (raising would replay it forever).
        try:
            answers = interrupt(payload)
            replies = [permission_answer(answers, request["id"]) for request in waiting]
            break
        except ConfigurationError as exc:
            payload = {**payload, "error": str(exc)}
    settings = settings_of(runtime)
    events = []
    for request, (reply, message) in zip(waiting, replies, strict=True):
        url = server_of(request, settings)
        try:
            services = await services_for(settings, url)
            with contextlib.suppress(NotFoundError):  # already answered before a crash
                await services.tools.reply_permission.ainvoke(
                    {
                        "request_id": request["id"],
                        "directory": request["directory"],
                        "reply": reply,
                        "message": message,
                    },
                    config,
                )
        except UNREACHABLE:
            if not await server_lost(settings, url):
                raise
            continue  # the request died with its server; the monitor moves the work
        what = f"{request['permission']} {' '.join(request.get('patterns', []))}".strip()
        events.append(
            event(
                "permission",
                f"{request.get('task') or 'planner'}: {what}: {reply} by a person",
                runtime,
            )
        )
    return {"waiting": [], "events": events}
