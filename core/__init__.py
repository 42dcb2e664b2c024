"""recagents: a conversational recommender whose specialist agents learn together.

Importing the package is cheap: torch, sentence-transformers, ChromaDB and Gradio load lazily at
the edges that need them.
"""

from __future__ import annotations

from recagents.config import Settings
from recagents.errors import (
    ConfigError,
    DataError,
    ModelFitError,
    RecagentsError,
    UnknownEntityError,
    VectorStoreError,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The facade lives in the top layer (recagents.ui) and pulls torch, LangGraph and the agents:
    # load it only when asked for. This is the one import from the root package upwards.
    if name in {"Recommender", "Reply", "ReplyItem"}:
        from recagents.ui import facade

        return getattr(facade, name)
    raise AttributeError(f"module 'recagents' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DataError",
    "ModelFitError",
    "RecagentsError",
    "Recommender",
    "Reply",
    "ReplyItem",
    "Settings",
    "UnknownEntityError",
    "VectorStoreError",
    "__version__",
]
