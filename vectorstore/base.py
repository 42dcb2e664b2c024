"""The storage contract between agents and the vector index.

Agents never talk to ChromaDB directly: they publish and pull vectors through
:class:`EmbeddingStore`, so the same collaborative rounds run against an in-process
:class:`~recagents.vectorstore.memory.InMemoryStore` in unit tests, an embedded ChromaDB folder on a
laptop, or a ChromaDB server shared by several processes (cornac's model/index split).

The module also holds what every implementation must agree on, so that they cannot drift apart:
argument validation (ids, embeddings, metadata, ``where`` filters). Collection naming and the
item metadata layout live in :mod:`recagents.vectorstore.schema`.

Semantics shared by all implementations:

* Similarity is cosine in ``[-1, 1]``, highest first; a zero vector has similarity 0 to everything
  (what ChromaDB's cosine space does).
* ``upsert`` follows ChromaDB: the embedding is replaced; given metadata keys overwrite the stored
  ones and other stored keys are kept; a row whose metadata is ``None`` or ``{}`` keeps its stored
  metadata. Metadata values are scalars (str, int, float, bool); ``None``, lists and dicts are
  rejected rather than dropped, so that nothing disappears silently.
* A collection is created by its first ``upsert`` and keeps its dimension for life, even after all
  its vectors are deleted (ChromaDB does the same).
* ``where`` filters use ChromaDB's syntax. For convenience a mapping with several fields, or a field
  with several operators, is read as their ``$and``. A key compared with ``$ne`` or ``$nin`` also
  matches records that lack the key (ChromaDB's rule). Range operators apply to numbers only.
  Compare a key with operands of the type it is stored with: ChromaDB 1.5 truncates a float operand
  that meets an int value (``{"year": {"$lt": 1990.5}}`` misses ``1990``).
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np

from recagents.errors import VectorStoreError

logger = logging.getLogger(__name__)

MetadataValue: TypeAlias = str | int | float | bool
"""A metadata value: scalars only, as ChromaDB indexes them."""

Metadata: TypeAlias = Mapping[str, MetadataValue]
Where: TypeAlias = Mapping[str, Any]

COMPARISON_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
LOGICAL_OPERATORS = ("$and", "$or")
_RANGE_OPERATORS = frozenset({"$gt", "$gte", "$lt", "$lte"})
_LIST_OPERATORS = frozenset({"$in", "$nin"})
_RESERVED_KEYS = frozenset({"chroma:document"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


@dataclass(frozen=True)
class QueryResult:
    """Nearest neighbours of one query vector.

    Attributes:
        ids: Neighbour ids, most similar first.
        scores: Cosine similarities in ``[-1, 1]``, descending, aligned with ``ids``.
        metadatas: Stored metadata of each neighbour (``{}`` when it has none).
    """

    ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    metadatas: list[dict[str, MetadataValue]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@runtime_checkable
class EmbeddingStore(Protocol):
    """Named collections of id → (vector, scalar metadata), searched by cosine similarity.

    This is the only channel between agents, which is why it is small: anything that can store
    vectors by id and answer a filtered nearest-neighbour query can carry a training round.
    """

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        embeddings: np.ndarray,
        metadatas: Sequence[Metadata | None] | None = None,
    ) -> None:
        """Insert or replace vectors, creating the collection on first use.

        Args:
            collection: Collection name (3-512 chars of ``[a-zA-Z0-9._-]``, alphanumeric ends).
            ids: Unique ids, one per row of ``embeddings``. An empty list does nothing.
            embeddings: ``(len(ids), dim)`` finite numbers, stored as float32.
            metadatas: Optional scalar metadata per row; merged into the stored metadata.

        Raises:
            VectorStoreError: Bad ids, non-finite values, a dimension other than the collection's,
                or metadata that is not a mapping of scalars.
        """
        ...

    def get(
        self,
        collection: str,
        ids: Sequence[str] | None = None,
        where: Where | None = None,
    ) -> tuple[list[str], np.ndarray, list[dict[str, MetadataValue]]]:
        """Read vectors back.

        Args:
            collection: An existing collection.
            ids: Ids to fetch, returned in this order; ``None`` means every record (store order).
            where: Optional metadata filter; with ``ids``, ids that exist but do not match are
                left out.

        Returns:
            ``(ids, float32 matrix (n, dim), metadatas)``, rows aligned with ``ids``.

        Raises:
            UnknownEntityError: An explicitly requested id is not in the collection (kind
                ``"vector"``).
            VectorStoreError: The collection does not exist or the filter is malformed.
        """
        ...

    def query(
        self,
        collection: str,
        embedding: np.ndarray,
        k: int,
        where: Where | None = None,
    ) -> list[QueryResult]:
        """Find the ``k`` most cosine-similar vectors.

        Args:
            collection: An existing collection.
            embedding: One query vector ``(dim,)`` or a batch ``(m, dim)``.
            k: Neighbours per query; more than the collection holds returns all of them.
            where: Optional metadata filter applied before ranking.

        Returns:
            One :class:`QueryResult` per query row.

        Raises:
            VectorStoreError: Missing collection, ``k < 1``, a wrong dimension or non-finite query.
        """
        ...

    def delete(
        self,
        collection: str,
        ids: Sequence[str] | None = None,
        where: Where | None = None,
    ) -> None:
        """Remove records by id, by filter, or by both (ids that match the filter).

        Unknown ids are ignored, an empty ``ids`` list does nothing, and giving neither ``ids``
        nor ``where`` is refused (use :meth:`drop` to remove everything).

        Raises:
            VectorStoreError: The collection does not exist, or no selector was given.
        """
        ...

    def count(self, collection: str) -> int:
        """Number of records in an existing collection.

        Raises:
            VectorStoreError: The collection does not exist.
        """
        ...

    def collections(self, prefix: str = "") -> list[str]:
        """Names of the collections that start with ``prefix``, sorted."""
        ...

    def drop(self, collection: str) -> None:
        """Delete a collection and its records; dropping a missing collection does nothing."""
        ...


def check_collection_name(name: str) -> str:
    """Refuse names ChromaDB would refuse, so the in-memory store fails the same way.

    Raises:
        VectorStoreError: The name is not 3-512 chars of ``[a-zA-Z0-9._-]`` with alphanumeric ends.
    """
    if not isinstance(name, str) or _VALID_NAME.match(name) is None:
        raise VectorStoreError(
            f"invalid collection name {name!r}: use 3-512 characters from [a-zA-Z0-9._-], starting "
            "and ending with a letter or digit (collection_name() builds valid ones)"
        )
    return name


def missing_collection(name: str, existing: Sequence[str]) -> VectorStoreError:
    """The error for reading a collection that does not exist, listing the ones that do.

    The closest names come first: on a busy server the one the caller meant (a typo, another
    version) must not be cut off by the 50-name limit.
    """
    close = difflib.get_close_matches(name, list(existing), n=5, cutoff=0.5)
    ordered = close + sorted(set(existing) - set(close))
    shown = ", ".join(ordered[:50]) or "none"
    more = f" (+{len(existing) - 50} more)" if len(existing) > 50 else ""
    return VectorStoreError(
        f"collection {name!r} does not exist; existing collections: {shown}{more}. "
        "Collections are created by upsert()."
    )


# --------------------------------------------------------------------------- argument checks


def check_ids(ids: Sequence[str], what: str = "ids") -> list[str]:
    """Ids must be non-empty strings; returned as a list.

    Raises:
        VectorStoreError: A non-string or empty id, or ``ids`` given as one string.
    """
    if isinstance(ids, str | bytes):
        raise VectorStoreError(f"{what} must be a sequence of strings, not one string: wrap it")
    out = list(ids)
    for value in out:
        if not isinstance(value, str) or not value:
            raise VectorStoreError(
                f"{what} must be non-empty strings, got {value!r}; convert numeric ids with str()"
            )
    return out


def check_unique(ids: Sequence[str]) -> None:
    """Refuse duplicate ids in one write, where the outcome would depend on row order.

    Raises:
        VectorStoreError: An id occurs twice.
    """
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes: set[str] = set()
        for value in ids:
            (dupes if value in seen else seen).add(value)
        raise VectorStoreError(f"duplicate ids in one upsert: {sorted(dupes)[:10]}")


def check_embeddings(embeddings: Any, n_rows: int) -> np.ndarray:
    """Turn embeddings into a finite float32 ``(n_rows, dim)`` matrix.

    Raises:
        VectorStoreError: Wrong shape, a row count other than ``n_rows``, or NaN/inf values
            (including float64 values too large for float32).
    """
    try:
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: caught below
            matrix = np.asarray(embeddings, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise VectorStoreError(f"embeddings must be a numeric matrix: {exc}") from exc
    if matrix.ndim != 2:
        raise VectorStoreError(
            f"embeddings must be 2-D (n, dim), got shape {matrix.shape}; "
            "for one vector use vector.reshape(1, -1)"
        )
    if matrix.shape[0] != n_rows:
        raise VectorStoreError(
            f"got {n_rows} ids but {matrix.shape[0]} embedding rows; they must match one to one"
        )
    if matrix.shape[1] == 0:
        raise VectorStoreError("embeddings have dimension 0")
    if not np.isfinite(matrix).all():
        bad = int(np.argwhere(~np.isfinite(matrix))[0][0])
        raise VectorStoreError(
            f"embeddings contain NaN or infinite values (first in row {bad}); "
            "check the model that produced them (a diverged loss?)"
        )
    return matrix


def check_query(embedding: Any) -> np.ndarray:
    """Turn a query vector or batch into a finite float32 ``(m, dim)`` matrix.

    Raises:
        VectorStoreError: More than 2 dimensions, dimension 0, or NaN/inf values.
    """
    try:
        with np.errstate(over="ignore"):
            matrix = np.asarray(embedding, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise VectorStoreError(f"query embedding must be numeric: {exc}") from exc
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise VectorStoreError(
            f"query embedding must be (dim,) or (m, dim), got shape {np.shape(embedding)}"
        )
    if not np.isfinite(matrix).all():
        raise VectorStoreError("query embedding contains NaN or infinite values")
    return matrix


def check_k(k: int) -> int:
    """``k`` must be a positive integer.

    Raises:
        VectorStoreError: ``k`` is not an int or is below 1.
    """
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise VectorStoreError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _scalar(value: Any, where: str) -> MetadataValue:
    """Accept a Python or numpy scalar, returned as a plain Python value."""
    if isinstance(value, np.generic) and not isinstance(value, np.str_ | np.bytes_):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Integral):
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise VectorStoreError(f"{where}: integer {number} does not fit in 64 bits")
        return number
    if isinstance(value, Real):
        number_f = float(value)
        if not math.isfinite(number_f):
            raise VectorStoreError(f"{where}: {number_f} is not a finite number")
        return number_f
    kind = "None" if value is None else type(value).__name__
    raise VectorStoreError(
        f"{where}: value {value!r} ({kind}) is not allowed; metadata values must be str, int, "
        "float or bool. Leave a missing value out, and store a list as one flag per element "
        "(e.g. genre_drama=True)"
    )


def check_metadatas(
    metadatas: Sequence[Metadata | None] | None, n_rows: int
) -> list[dict[str, MetadataValue] | None]:
    """Validate per-row metadata and return plain dicts (``None`` for rows without metadata).

    Raises:
        VectorStoreError: A length other than ``n_rows``, a row that is not a mapping, a bad key
            or a value that is not a finite scalar.
    """
    if metadatas is None:
        return [None] * n_rows
    if isinstance(metadatas, Mapping):
        raise VectorStoreError("metadatas must be a sequence of one mapping per id, not a mapping")
    rows = list(metadatas)
    if len(rows) != n_rows:
        raise VectorStoreError(f"got {n_rows} ids but {len(rows)} metadatas; give one per id")
    out: list[dict[str, MetadataValue] | None] = []
    for i, row in enumerate(rows):
        if row is None:
            out.append(None)
            continue
        if not isinstance(row, Mapping):
            raise VectorStoreError(f"metadatas[{i}] must be a mapping, got {type(row).__name__}")
        clean: dict[str, MetadataValue] = {}
        for key, value in row.items():
            if not isinstance(key, str) or not key or key[0] in "#$" or key in _RESERVED_KEYS:
                raise VectorStoreError(
                    f"metadatas[{i}]: key {key!r} is not allowed; keys are non-empty strings that "
                    "do not start with '#' or '$'"
                )
            clean[key] = _scalar(value, f"metadatas[{i}][{key!r}]")
        out.append(clean or None)
    return out


# --------------------------------------------------------------------------- where filters


def _operand(op: str, value: Any, key: str) -> Any:
    where = f"where[{key!r}][{op!r}]"
    if op in _LIST_OPERATORS:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence | np.ndarray):
            raise VectorStoreError(f"{where} needs a non-empty list of scalars, got {value!r}")
        items = [_scalar(v, where) for v in value]
        if not items:
            raise VectorStoreError(f"{where} needs a non-empty list of scalars, got []")
        kinds = {type(v) for v in items}
        if len(kinds) > 1:
            raise VectorStoreError(
                f"{where}: all values must have one type (ChromaDB's rule), got "
                f"{sorted(k.__name__ for k in kinds)}"
            )
        return items
    scalar = _scalar(value, where)
    if op in _RANGE_OPERATORS and (isinstance(scalar, bool) or isinstance(scalar, str)):
        raise VectorStoreError(f"{where} compares numbers only, got {scalar!r}")
    return scalar


def _field(key: str, condition: Any) -> list[dict[str, Any]]:
    if not key or key.startswith("$"):
        raise VectorStoreError(
            f"unknown where operator {key!r}; logical operators are {', '.join(LOGICAL_OPERATORS)}"
        )
    if not isinstance(condition, Mapping):
        return [{key: {"$eq": _operand("$eq", condition, key)}}]
    if not condition:
        raise VectorStoreError(f"where[{key!r}] is an empty mapping; give an operator")
    out = []
    for op, value in condition.items():
        if op not in COMPARISON_OPERATORS:
            raise VectorStoreError(
                f"unknown where operator {op!r} for {key!r}; supported: "
                f"{', '.join(COMPARISON_OPERATORS)}"
            )
        out.append({key: {op: _operand(op, value, key)}})
    return out


def _combine(op: str, clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {op: clauses}


def normalize_where(where: Where | None) -> dict[str, Any] | None:
    """Validate a filter and rewrite it into the strict form ChromaDB accepts.

    Strict form: every mapping has exactly one key, every field condition is ``{op: operand}``,
    every ``$and``/``$or`` has at least two clauses. Several fields or operators in one mapping
    become an ``$and``; a one-clause ``$and``/``$or`` becomes its clause; ``{}`` means no filter.
    Both implementations evaluate this form, so they accept and reject the same filters.

    Returns:
        The strict filter, or ``None`` when there is nothing to filter on.

    Raises:
        VectorStoreError: Unknown operators, operands of the wrong type, empty lists.
    """
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise VectorStoreError(f"where must be a mapping, got {type(where).__name__}")
    clauses: list[dict[str, Any]] = []
    for key, value in where.items():
        if not isinstance(key, str):
            raise VectorStoreError(f"where keys must be strings, got {key!r}")
        if key in LOGICAL_OPERATORS:
            if isinstance(value, Mapping | str) or not isinstance(value, Sequence):
                raise VectorStoreError(f"{key} needs a list of filters, got {value!r}")
            parts = [normalize_where(part) for part in value]
            if any(part is None for part in parts) or not parts:
                raise VectorStoreError(f"{key} needs a non-empty list of non-empty filters")
            clauses.append(_combine(key, [p for p in parts if p is not None]))
        else:
            clauses.extend(_field(key, value))
    if not clauses:
        return None
    return _combine("$and", clauses)


# --------------------------------------------------------------------------- shared preamble


class ValidatingStore(ABC):
    """The protocol's public methods, validating every argument once for every implementation.

    A store subclasses this and implements the ``_upsert`` / ``_get`` / ``_query`` / ``_delete``
    hooks, which receive checked, normalised arguments: so the in-memory store and ChromaDB refuse
    the same inputs with the same messages, and neither repeats the checks.
    """

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        embeddings: np.ndarray,
        metadatas: Sequence[Metadata | None] | None = None,
    ) -> None:
        """Insert or replace vectors; see :meth:`EmbeddingStore.upsert`."""
        check_collection_name(collection)
        id_list = check_ids(ids)
        if not id_list:
            return
        check_unique(id_list)
        matrix = check_embeddings(embeddings, len(id_list))
        rows = check_metadatas(metadatas, len(id_list))
        self._upsert(collection, id_list, matrix, rows)

    def get(
        self,
        collection: str,
        ids: Sequence[str] | None = None,
        where: Where | None = None,
    ) -> tuple[list[str], np.ndarray, list[dict[str, MetadataValue]]]:
        """Read vectors back; see :meth:`EmbeddingStore.get`."""
        wanted = None if ids is None else check_ids(ids)
        return self._get(collection, wanted, normalize_where(where))

    def query(
        self,
        collection: str,
        embedding: np.ndarray,
        k: int,
        where: Where | None = None,
    ) -> list[QueryResult]:
        """Top-k cosine search; see :meth:`EmbeddingStore.query`."""
        queries = check_query(embedding)
        k = check_k(k)
        return self._query(collection, queries, k, normalize_where(where))

    def delete(
        self,
        collection: str,
        ids: Sequence[str] | None = None,
        where: Where | None = None,
    ) -> None:
        """Remove records; see :meth:`EmbeddingStore.delete`."""
        wanted = None if ids is None else check_ids(ids)
        strict = normalize_where(where)
        if wanted is not None and not wanted:
            return
        if wanted is None and strict is None:
            raise VectorStoreError(
                "delete() needs ids or a where filter; use drop() to remove a whole collection"
            )
        self._delete(collection, wanted, strict)

    @abstractmethod
    def _upsert(
        self, collection: str, ids: list[str], matrix: np.ndarray, rows: list[Metadata | None]
    ) -> None:
        """Write checked rows (unique ids, float32 matrix, one metadata or None per row)."""

    @abstractmethod
    def _get(
        self, collection: str, wanted: list[str] | None, where: dict[str, Any] | None
    ) -> tuple[list[str], np.ndarray, list[dict[str, MetadataValue]]]:
        """Read checked ids (or all) under a normalised filter."""

    @abstractmethod
    def _query(
        self, collection: str, queries: np.ndarray, k: int, where: dict[str, Any] | None
    ) -> list[QueryResult]:
        """Search with checked query rows and k under a normalised filter."""

    @abstractmethod
    def _delete(
        self, collection: str, wanted: list[str] | None, where: dict[str, Any] | None
    ) -> None:
        """Remove checked ids (or every match of a filter; never neither)."""
