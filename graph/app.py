"""The compiled conversation graph for ``langgraph.json`` / ``langgraph dev``.

``make_graph`` is the factory ``langgraph.json`` names. LangGraph's server calls it with each
run's config (a ``RunnableConfig`` dict), so it takes one and loads the trained agents only once
per process (training them on first use), under ``RECAGENTS_HOME``. The graph is compiled
without a checkpointer: the LangGraph server brings its own. The module attribute ``graph`` is
built lazily on first access, so importing this module costs nothing.

The graph nodes are synchronous (numpy, torch, SQLite, ChromaDB), so ``langgraph dev`` must run
with ``--allow-blocking``; see the README.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.runnables import RunnableConfig

from recagents.config import Settings

_LOCK = threading.Lock()
_DEPS: dict[str, Any] = {}


def make_graph(config: RunnableConfig) -> Any:
    """The factory ``langgraph.json`` names: LangGraph's server passes each run's config.

    The config is unused (the agents are the same for every run); they load from
    ``RECAGENTS_HOME`` once per process.
    """
    return graph_for(None)


def graph_for(settings: Settings | None) -> Any:
    """Compile the conversation graph over the agents of ``settings``' default run."""
    from recagents.graph.builder import build_graph

    return build_graph(_deps(settings)).compile()


def _deps(settings: Settings | None) -> Any:
    """The loaded agents and parser, shared by every compiled graph of this process."""
    from recagents.env import ensure_offline
    from recagents.graph.builder import load_deps

    key = str(settings.home) if settings is not None else ""
    with _LOCK:
        if key not in _DEPS:
            ensure_offline()
            _DEPS[key] = load_deps(settings or Settings.load())
        return _DEPS[key]


def __getattr__(name: str) -> Any:
    if name == "graph":
        compiled = graph_for(None)
        globals()["graph"] = compiled
        return compiled
    raise AttributeError(name)
