"""The compiled conversation graph for ``langgraph.json`` / ``langgraph dev``.

``make_graph()`` loads the trained agents (training them on first use) and compiles the graph
without a checkpointer (the LangGraph server brings its own). The module attribute ``graph`` is
built lazily on first access, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

from recagents.config import Settings


def make_graph(settings: Settings | None = None) -> Any:
    """Compile the conversation graph over the default run's agents."""
    from recagents.api import Recommender
    from recagents.graph.builder import build_graph

    recommender = Recommender.load(settings, checkpointer="memory")
    return build_graph(recommender.deps).compile()


def __getattr__(name: str) -> Any:
    if name == "graph":
        compiled = make_graph()
        globals()["graph"] = compiled
        return compiled
    raise AttributeError(name)
