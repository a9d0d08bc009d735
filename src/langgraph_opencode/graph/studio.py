"""The graph as LangGraph Server and Studio load it (see ``langgraph.json``).

Compiled without a checkpointer: the server brings its own. Run settings
(``RunSettings``: server URL, models, limits, budgets, permission policy) are
the graph's context, editable in Studio; the server password is read from the
environment variable the settings name.
"""

from langgraph_opencode.graph.builder import compile_graph

__all__ = ["graph"]

graph = compile_graph()
