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

__all__ = [
    "ConfigError",
    "DataError",
    "ModelFitError",
    "RecagentsError",
    "Settings",
    "UnknownEntityError",
    "VectorStoreError",
    "__version__",
]
