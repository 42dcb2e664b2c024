"""Vector storage for agent embeddings: one protocol, a ChromaDB and an in-memory implementation.

Agents publish and read vectors only through :class:`EmbeddingStore`; each training round writes
into its own collection named by :func:`collection_name` (``ra.<namespace>.<agent>.v<round>``).
ChromaDB is imported only when a :class:`ChromaStore` is created.
"""

from recagents.vectorstore.base import (
    EmbeddingStore,
    Metadata,
    MetadataValue,
    QueryResult,
    Where,
)
from recagents.vectorstore.chroma import ChromaStore, open_store
from recagents.vectorstore.memory import InMemoryStore
from recagents.vectorstore.schema import (
    COLLECTION_PREFIX,
    collection_name,
    latest_version,
    parse_collection_name,
    versions,
)

__all__ = [
    "COLLECTION_PREFIX",
    "ChromaStore",
    "EmbeddingStore",
    "InMemoryStore",
    "Metadata",
    "MetadataValue",
    "QueryResult",
    "Where",
    "collection_name",
    "latest_version",
    "open_store",
    "parse_collection_name",
    "versions",
]
