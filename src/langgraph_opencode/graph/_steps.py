"""What every step does around its node: the run's supervisor, and the run's event log.

Each node is wrapped by :func:`step`, which

* hands the run's supervisor (``core/supervisor.py``) the prompts the state
  has out before the node runs, so that they are followed from the first step
  a process takes, whichever it is: a resume that re-enters ``review`` in the
  middle of a long check, or an ``ask_human`` pause, follows the other
  sessions at once, not only from its next ``send`` or ``monitor``;
* moves the node's events from its update to the run's ``events.jsonl``
  (``core/run_log.py``): the state has no such key (the events would be copied
  into every checkpoint), and adds the events the supervisor noted while the
  node ran (aborts, permissions answered by policy, silent servers), streamed
  as custom events like the node's own.

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

from langgraph.config import get_config, get_stream_writer
from langgraph.runtime import get_runtime

from langgraph_opencode.core.run_log import run_log
from langgraph_opencode.core.supervisor import supervisor_for
from langgraph_opencode.nodes._common import settings_of

__all__ = ["step"]

_Node = TypeVar("_Node", bound=Callable[..., Awaitable[Any]])


def step(node: _Node) -> _Node:
    """``node``, with the run's prompts followed and its events logged (see the module)."""

    @functools.wraps(node)
    async def wrapper(state: Any, *args: Any, **kwargs: Any) -> Any:
        run_id = state.get("run_id")
        supervisor = None
        if run_id and state.get("jobs"):
            supervisor = supervisor_for(str(run_id), settings_of(get_runtime()))
            supervisor.sync(state, settings_of(get_runtime()), get_config())
        update = await node(state, *args, **kwargs)
        if not isinstance(update, dict):
            return update
        update = dict(update)
        records = list(update.pop("events", None) or [])
        if supervisor is not None and supervisor.events:
            noted = supervisor.take_events()
            writer = get_stream_writer()
            for record in noted:
                writer({"event": record})
            records += noted
        if records:
            # ``start`` names the run in its update; every later node finds it in the state.
            repo = update.get("repo") or state.get("repo")
            run_id = update.get("run_id") or run_id
            if repo and run_id:
                await (await run_log(str(repo), str(run_id))).aappend(records)
        return update

    return cast("_Node", wrapper)
