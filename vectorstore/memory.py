"""Exact in-process implementation of :class:`~recagents.vectorstore.base.EmbeddingStore`.

It exists so that agents, rounds and graphs can be unit-tested without ChromaDB, and it is held to
the same contract suite as :class:`~recagents.vectorstore.chroma.ChromaStore`, so a test that passes
here means the same thing there. Search is brute-force cosine over a normalised float32 matrix:
exact, and fast enough for tens of thousands of vectors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from recagents.errors import UnknownEntityError, VectorStoreError
from recagents.vectorstore.base import (
    Metadata,
    MetadataValue,
    QueryResult,
    ValidatingStore,
    missing_collection,
)

logger = logging.getLogger(__name__)

__all__ = ["InMemoryStore", "matches"]


def _same(stored: MetadataValue, operand: MetadataValue) -> bool:
    """ChromaDB equality: bools only equal bools, strings strings, numbers numbers (1 == 1.0)."""
    if isinstance(stored, bool) or isinstance(operand, bool):
        return isinstance(stored, bool) and isinstance(operand, bool) and stored == operand
    if isinstance(stored, str) or isinstance(operand, str):
        return isinstance(stored, str) and isinstance(operand, str) and stored == operand
    return stored == operand


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: str, stored: Any, operand: Any) -> bool:
    if op == "$eq":
        return stored is not None and _same(stored, operand)
    if op == "$ne":
        return stored is None or not _same(stored, operand)
    if op == "$in":
        return stored is not None and any(_same(stored, v) for v in operand)
    if op == "$nin":
        return stored is None or not any(_same(stored, v) for v in operand)
    if not _is_number(stored):
        return False
    if op == "$gt":
        return bool(stored > operand)
    if op == "$gte":
        return bool(stored >= operand)
    if op == "$lt":
        return bool(stored < operand)
    if op == "$lte":
        return bool(stored <= operand)
    raise VectorStoreError(f"unknown where operator {op!r}")  # normalize_where prevents this


def matches(where: Mapping[str, Any] | None, metadata: Mapping[str, MetadataValue]) -> bool:
    """Evaluate a filter in the strict form made by :func:`~.base.normalize_where`.

    Args:
        where: A normalised filter, or ``None`` (everything matches).
        metadata: One record's metadata.

    Returns:
        Whether the record passes the filter, under ChromaDB's rules (see the base module).
    """
    if where is None:
        return True
    ((key, condition),) = where.items()
    if key == "$and":
        return all(matches(part, metadata) for part in condition)
    if key == "$or":
        return any(matches(part, metadata) for part in condition)
    ((op, operand),) = condition.items()
    return _compare(op, metadata.get(key), operand)


class _Collection:
    """One collection: rows in insertion order, with a cached unit-norm copy for search."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.vectors: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self.metadatas: list[dict[str, MetadataValue]] = []
        self.dim: int | None = None
        self._unit: np.ndarray | None = None

    def unit(self) -> np.ndarray:
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = np.divide(
                self.vectors, norms, out=np.zeros_like(self.vectors), where=norms > 0
            )
        return self._unit

    def changed(self) -> None:
        self._unit = None

    def rows(self, where: Mapping[str, Any] | None) -> np.ndarray:
        if where is None:
            return np.arange(len(self.ids))
        return np.fromiter(
            (i for i, meta in enumerate(self.metadatas) if matches(where, meta)), dtype=np.int64
        )


class InMemoryStore(ValidatingStore):
    """Exact cosine search in process memory; nothing is persisted.

    Thread-safe (one lock), so a threaded coordinator can share one instance between agents.
    Arrays are copied in and out, so callers can never mutate stored vectors by accident.

    Example:
        >>> store = InMemoryStore()
        >>> store.upsert("ra.demo.item.v0000", ["a"], np.ones((1, 3)), [{"year": 1995}])
        >>> store.query("ra.demo.item.v0000", np.ones(3), k=1)[0].ids
        ['a']
    """

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"InMemoryStore(collections={len(self._collections)})"

    def close(self) -> None:
        """Nothing to release; present so callers can treat every store alike."""

    def __enter__(self) -> InMemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _existing(self, collection: str) -> _Collection:
        try:
            return self._collections[collection]
        except KeyError:
            raise missing_collection(collection, list(self._collections)) from None

    def _upsert(
        self, collection: str, id_list: list[str], matrix: np.ndarray, rows: list[Metadata | None]
    ) -> None:
        with self._lock:
            col = self._collections.get(collection) or _Collection()
            if col.dim is not None and matrix.shape[1] != col.dim:
                raise VectorStoreError(
                    f"collection {collection!r} holds {col.dim}-dimensional vectors, got "
                    f"{matrix.shape[1]}; publish into a new collection (new version) instead"
                )
            if col.dim is None:
                col.dim = matrix.shape[1]
                col.vectors = np.zeros((0, col.dim), dtype=np.float32)
            new_rows = []
            for i, (id_, meta) in enumerate(zip(id_list, rows, strict=True)):
                at = col.index.get(id_)
                if at is None:
                    col.index[id_] = len(col.ids)
                    col.ids.append(id_)
                    col.metadatas.append(dict(meta or {}))
                    new_rows.append(i)
                else:
                    col.vectors[at] = matrix[i]
                    if meta:  # replaced, never mutated: queries may hold the old dict
                        col.metadatas[at] = {**col.metadatas[at], **meta}
            if new_rows:
                col.vectors = np.concatenate([col.vectors, matrix[new_rows]], axis=0)
            col.changed()
            self._collections[collection] = col
        logger.debug("upserted %d vectors into %s", len(id_list), collection)

    def _get(
        self, collection: str, wanted: list[str] | None, strict: dict[str, Any] | None
    ) -> tuple[list[str], np.ndarray, list[dict[str, MetadataValue]]]:
        with self._lock:
            col = self._existing(collection)
            if wanted is None:
                picked = col.rows(strict).tolist()
            else:
                picked = []
                for id_ in wanted:
                    at = col.index.get(id_)
                    if at is None:
                        raise UnknownEntityError("vector", id_, f"not in collection {collection!r}")
                    if matches(strict, col.metadatas[at]):
                        picked.append(at)
            out_ids = [col.ids[i] for i in picked]
            dim = col.dim or 0
            vectors = col.vectors[picked] if picked else np.zeros((0, dim), dtype=np.float32)
            metas = [dict(col.metadatas[i]) for i in picked]
        return out_ids, np.array(vectors, dtype=np.float32), metas

    def _query(
        self, collection: str, queries: np.ndarray, k: int, strict: dict[str, Any] | None
    ) -> list[QueryResult]:
        """Exact top-k cosine search; see :meth:`.base.EmbeddingStore.query`."""
        with self._lock:
            col = self._existing(collection)
            if col.dim is not None and queries.shape[1] != col.dim:
                raise VectorStoreError(
                    f"query has dimension {queries.shape[1]} but collection {collection!r} holds "
                    f"{col.dim}-dimensional vectors"
                )
            if strict is None:
                unit, ids, metas = col.unit(), list(col.ids), list(col.metadatas)
            else:
                candidates = col.rows(strict)
                unit = col.unit()[candidates]
                ids = [col.ids[i] for i in candidates]
                metas = [col.metadatas[i] for i in candidates]
        if not ids:
            return [QueryResult() for _ in range(len(queries))]
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        q_unit = np.divide(queries, norms, out=np.zeros_like(queries), where=norms > 0)
        scores = np.clip(q_unit @ unit.T, -1.0, 1.0)
        take = min(k, len(ids))
        results = []
        for row in scores:
            if take < len(ids):
                top = np.argpartition(-row, take - 1)[:take]
            else:
                top = np.arange(len(ids))
            order = top[np.lexsort((top, -row[top]))]  # score descending, then store order
            results.append(
                QueryResult(
                    ids=[ids[i] for i in order],
                    scores=[float(row[i]) for i in order],
                    metadatas=[dict(metas[i]) for i in order],
                )
            )
        return results

    def _delete(
        self, collection: str, wanted: list[str] | None, strict: dict[str, Any] | None
    ) -> None:
        with self._lock:
            col = self._existing(collection)
            if wanted is None:
                doomed = set(col.rows(strict).tolist())
            else:
                doomed = {
                    col.index[i]
                    for i in wanted
                    if i in col.index and matches(strict, col.metadatas[col.index[i]])
                }
            if not doomed:
                return
            keep = [i for i in range(len(col.ids)) if i not in doomed]
            col.ids = [col.ids[i] for i in keep]
            col.metadatas = [col.metadatas[i] for i in keep]
            col.vectors = col.vectors[keep]
            col.index = {id_: i for i, id_ in enumerate(col.ids)}
            col.changed()
        logger.debug("deleted %d vectors from %s", len(doomed), collection)

    def count(self, collection: str) -> int:
        """Number of records; see :meth:`.base.EmbeddingStore.count`."""
        with self._lock:
            return len(self._existing(collection).ids)

    def collections(self, prefix: str = "") -> list[str]:
        """Sorted collection names starting with ``prefix``."""
        with self._lock:
            return sorted(name for name in self._collections if name.startswith(prefix))

    def drop(self, collection: str) -> None:
        """Delete a collection; a missing one is ignored."""
        with self._lock:
            self._collections.pop(collection, None)
