r"""The orchestration graph.

```
start -> plan -> approve_plan -> dispatch -> send -> monitor -> review -> merge -> dispatch ...
          ^  \\______________________________/  |         \\-> ask_human -> monitor
          |            (planner prompts)        |
          +------- (plan rejected) -------------+                      ... -> finalize
```

Each edge after ``review`` goes to the next step with something to do
(``merge`` only with approved work, ``dispatch`` only with tasks pending,
``send`` only with prompts recorded): a step that would change nothing is
not taken, so it saves no checkpoint. The sessions are followed meanwhile by
the run's supervisor (``core.supervisor``), not by these steps.

``start`` goes to ``refuse`` instead of ``plan`` when new input arrives on a
thread that holds a run already (it raises, saying so).

``build_graph()`` returns the uncompiled ``StateGraph`` to embed or compile
with any checkpointer; ``compile_graph(checkpointer)`` compiles it.

Every node is wrapped by ``step`` (``graph/_steps.py``): the events a node
returns go to the run's log file, not into the checkpointed state, and the
run's supervisor follows the prompts out from the first step a process takes.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from langgraph_opencode.core.jobs import outstanding, unsent
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.state import (
    TERMINAL_STATUSES,
    OrchestratorInput,
    OrchestratorOutput,
    OrchestratorState,
)
from langgraph_opencode.graph._steps import step
from langgraph_opencode.nodes._common import settings_of
from langgraph_opencode.nodes.approval import approve_plan
from langgraph_opencode.nodes.dispatcher import dispatch, dispatch_due, send
from langgraph_opencode.nodes.finalize import finalize
from langgraph_opencode.nodes.human import ask_human
from langgraph_opencode.nodes.merge import merge
from langgraph_opencode.nodes.monitor import monitor
from langgraph_opencode.nodes.planner import plan, refuse, start
from langgraph_opencode.nodes.reviewer import review

__all__ = ["build_graph", "compile_graph"]


def _after_start(state: OrchestratorState) -> Literal["plan", "refuse"]:
    # New input on a thread that holds a run: refused, never mixed with it.
    return "refuse" if state.get("refused") else "plan"


def _after_plan(state: OrchestratorState) -> Literal["approve_plan", "send", "finalize"]:
    if state.get("error"):
        return "finalize"
    if state.get("plan"):
        return "approve_plan"
    return "send"


def _after_approval(state: OrchestratorState) -> Literal["dispatch", "plan", "approve_plan"]:
    if not state.get("plan"):
        return "plan"
    if not state.get("tasks"):
        return "approve_plan"  # an invalid edit: ask again, showing the problems
    return "dispatch"


# Each edge goes to the next step that has something to do: a step that would
# change nothing is not taken (each step taken is a checkpoint saved).

_Onward = Literal["dispatch", "send", "monitor", "finalize"]


def _onward(state: OrchestratorState, runtime: Runtime[RunSettings]) -> _Onward:
    """Where the loop goes once the ended prompts are handled and the approved work merged."""
    tasks = state.get("tasks") or {}
    if tasks and all(record.get("status") in TERMINAL_STATUSES for record in tasks.values()):
        return "finalize"
    if dispatch_due(state, settings_of(runtime)):
        return "dispatch"  # a slot is free for a ready task, or a task is blocked now
    if unsent(state):
        return "send"
    if outstanding(state):
        return "monitor"
    return "dispatch"  # nothing out and nothing to send: the dispatcher sorts out the rest


def _after_monitor(state: OrchestratorState) -> Literal["ask_human", "plan", "review"]:
    # The monitor returns once the supervisor holds something: an ended prompt
    # to review, or requests for a person.
    if state.get("waiting"):
        return "ask_human"
    if not state.get("plan"):
        return "plan"
    return "review"


def _after_review(
    state: OrchestratorState, runtime: Runtime[RunSettings]
) -> Literal["merge", "dispatch", "send", "monitor", "finalize"]:
    tasks = state.get("tasks") or {}
    if any(record.get("status") == "approved" for record in tasks.values()):
        return "merge"
    return _onward(state, runtime)


def _after_merge(state: OrchestratorState, runtime: Runtime[RunSettings]) -> _Onward:
    return _onward(state, runtime)


def _after_dispatch(state: OrchestratorState) -> Literal["send", "monitor", "merge"]:
    tasks = state.get("tasks") or {}
    # Nothing running and nothing to start: every task is done, failed or blocked.
    if all(record.get("status") in TERMINAL_STATUSES for record in tasks.values()):
        return "merge"
    if unsent(state):
        return "send"
    return "monitor" if outstanding(state) else "merge"


def build_graph() -> StateGraph[Any, Any, Any, Any]:
    """Return the orchestration graph, not compiled (to embed it or pick a checkpointer)."""
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(
        OrchestratorState,
        context_schema=RunSettings,
        input_schema=OrchestratorInput,
        output_schema=OrchestratorOutput,
    )
    graph.add_node("start", step(start))
    graph.add_node("refuse", step(refuse))
    graph.add_node("plan", step(plan))
    graph.add_node("approve_plan", step(approve_plan))
    graph.add_node("dispatch", step(dispatch))
    graph.add_node("send", step(send))  # type: ignore[arg-type]  # (state, runtime, config)
    graph.add_node("monitor", step(monitor))  # type: ignore[arg-type]  # (state, runtime, config)
    graph.add_node("ask_human", step(ask_human))  # type: ignore[arg-type]  # (state, runtime, config)
    graph.add_node("review", step(review))
    graph.add_node("merge", step(merge))
    graph.add_node("finalize", step(finalize))

    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", _after_start)
    graph.add_conditional_edges("plan", _after_plan)
    graph.add_conditional_edges("approve_plan", _after_approval)
    graph.add_conditional_edges("dispatch", _after_dispatch)
    graph.add_edge("send", "monitor")
    graph.add_conditional_edges("monitor", _after_monitor)
    graph.add_edge("ask_human", "monitor")
    graph.add_conditional_edges("review", _after_review)
    graph.add_conditional_edges("merge", _after_merge)
    graph.add_edge("finalize", END)
    return graph


def compile_graph(
    checkpointer: Checkpointer = None, *, name: str = "langgraph-opencode"
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the graph with a checkpointer (``None``: the parent's, when embedded)."""
    return build_graph().compile(checkpointer=checkpointer, name=name)
