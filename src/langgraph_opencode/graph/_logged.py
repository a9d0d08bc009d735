"""The node wrapper that moves a node's events from its update to the run's log.

Nodes return ``"events": [...]`` with their update; the state has no such key
(the events would be copied into every checkpoint). :func:`logged` wraps a node
so that its events are appended to the run's ``events.jsonl``
(``core/run_log.py``) and the rest of the update goes to LangGraph.

The wrapper keeps the node's signature (``functools.wraps``: LangGraph reads
the parameters, ``runtime`` and ``config``, to inject them, and the first
parameter's annotation for the node's input), and lets whatever the node
raises through untouched: an ``interrupt()`` (``GraphInterrupt``) or an error
logs nothing, as the step is not taken.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from langgraph_opencode.core.run_log import run_log

__all__ = ["logged"]

_Node = TypeVar("_Node", bound=Callable[..., Awaitable[Any]])


def logged(node: _Node) -> _Node:
    """``node``, with the events of its update appended to the run's log instead."""

    @functools.wraps(node)
    async def wrapper(state: Any, *args: Any, **kwargs: Any) -> Any:
        update = await node(state, *args, **kwargs)
        if not isinstance(update, dict) or "events" not in update:
            return update
        update = dict(update)
        records = update.pop("events") or []
        if records:
            # ``start`` names the run in its update; every later node finds it in the state.
            repo = update.get("repo") or state.get("repo")
            run_id = update.get("run_id") or state.get("run_id")
            if repo and run_id:
                await (await run_log(str(repo), str(run_id))).aappend(records)
        return update

    return cast("_Node", wrapper)
