"""ChromaDB implementation of :class:`~recagents.vectorstore.base.EmbeddingStore`.

One class covers the three ways to run ChromaDB: an embedded folder (``PersistentClient``, the
default, nothing to start), a server (``HttpClient``, so that agents in several processes share one
index), or any client the caller built (tests, Chroma Cloud).

Choices that keep it safe and predictable:

* ``chromadb`` is imported inside the class, so ``import recagents`` stays cheap.
* Collections are created and opened with ``embedding_function=None`` and every write passes
  embeddings explicitly: ChromaDB's default embedding function downloads an ONNX model on first
  use, which must never happen (offline machines, reproducibility).
* Collections use the cosine space (``configuration={"hnsw": {"space": "cosine"}}``) and distances
  are reported as similarities (``1 - distance``); opening an existing collection with another space
  is refused rather than silently returning wrong scores.
* Telemetry is off (``anonymized_telemetry=False``).
* Writes and id look-ups are split into batches below ``client.get_max_batch_size()``; a write that
  fails part-way leaves the earlier batches written (ChromaDB has no transactions).
* Every ChromaDB failure is re-raised as :class:`~recagents.errors.VectorStoreError` that says what
  to do, with the original exception chained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import numpy as np

from recagents.config import Settings
from recagents.errors import ConfigError, RecagentsError, UnknownEntityError, VectorStoreError
from recagents.vectorstore.base import (
    Metadata,
    MetadataValue,
    QueryResult,
    ValidatingStore,
    check_collection_name,
    missing_collection,
)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger(__name__)

__all__ = ["ChromaStore", "cosine_configuration", "open_store"]


def cosine_configuration() -> CreateCollectionConfiguration:
    """Configuration for new collections (ChromaDB >= 1.0 syntax).

    A fresh dict each call: ChromaDB fills in defaults in place.
    """
    return cast("CreateCollectionConfiguration", {"hnsw": {"space": "cosine"}})


def _rows(page: Any) -> dict[str, tuple[Any, dict[str, Any]]]:
    """A ``get`` page as id -> (vector, metadata), metadata copied so callers may change it."""
    return {
        id_: (vec, dict(meta or {}))
        for id_, vec, meta in zip(
            page["ids"], _column(page, "embeddings"), _column(page, "metadatas"), strict=True
        )
    }


def _column(page: Mapping[str, Any], key: str) -> list[Any]:
    """One column of a ChromaDB result (``None`` when not included) as a list."""
    value = page.get(key)
    return [] if value is None else list(value)


_LIST_PAGE = 100
_T = TypeVar("_T")


def _parse_url(url: str) -> tuple[str, int, bool]:
    """Split ``http(s)://host:port`` into what ``chromadb.HttpClient`` takes."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"chroma_url {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"chroma_url {url!r} must look like http://127.0.0.1:8000 (scheme, host and port)"
        )
    ssl = parts.scheme == "https"
    return parts.hostname, port or (443 if ssl else 8000), ssl


def _space(handle: Collection) -> str | None:
    """Distance space of a collection, read from the raw JSON configuration.

    ``handle.configuration`` would work too, but it emits a DeprecationWarning for every
    collection created without an embedding function, which is all of ours.
    """
    config = getattr(handle, "configuration_json", None) or {}
    for index in ("hnsw", "spann"):
        section = config.get(index)
        if isinstance(section, dict) and section.get("space"):
            return str(section["space"])
    legacy = handle.metadata or {}
    return str(legacy["hnsw:space"]) if "hnsw:space" in legacy else None


class ChromaStore(ValidatingStore):
    """:class:`~recagents.vectorstore.base.EmbeddingStore` backed by ChromaDB.

    Give at most one of ``path``, ``url`` and ``client``. With none, the embedded store lives at
    ``Settings.load().chroma_path``.

    Args:
        path: Folder of an embedded (``PersistentClient``) store; created if missing.
        url: ``http(s)://host:port`` of a server started with ``chroma run``.
        client: A ready ChromaDB client (e.g. ``chromadb.EphemeralClient()``); the caller keeps
            ownership, so :meth:`close` leaves it open.
        batch_size: Rows per request; defaults to, and is capped at, the client's maximum
            (smaller batches bound memory and request size against a remote server).

    Raises:
        ConfigError: Several locations given, or a malformed URL.
        VectorStoreError: The server cannot be reached or the folder cannot be opened.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        url: str | None = None,
        client: ClientAPI | None = None,
        *,
        batch_size: int | None = None,
    ) -> None:
        url = url or None
        given = [n for n, v in (("path", path), ("url", url), ("client", client)) if v is not None]
        if len(given) > 1:
            raise ConfigError(f"give one of path, url or client to ChromaStore, got {given}")
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.url = url
        self.path = None if path is None else Path(path).expanduser()
        self._owns_client = client is None
        self._closed = False
        self._handles: dict[str, Collection] = {}
        if client is not None:
            self._client = client
            self.location = f"client {type(client).__name__}"
        elif url is not None:
            self._client = self._connect(url)
            self.location = url
        else:
            if self.path is None:
                self.path = Settings.load().chroma_path
            self._client = self._open_folder(self.path)
            self.location = str(self.path)
        with self._errors("read the batch size of"):
            limit = max(1, int(self._client.get_max_batch_size()))
        self._max_batch = min(limit, batch_size) if batch_size else limit

    # ------------------------------------------------------------------ connection

    @staticmethod
    def _settings() -> Any:
        from chromadb.config import Settings as ChromaSettings

        return ChromaSettings(anonymized_telemetry=False)

    def _connect(self, url: str) -> ClientAPI:
        host, port, ssl = _parse_url(url)
        import chromadb

        with self._errors("connect to"):
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=self._settings())
        logger.info("connected to ChromaDB server at %s", url)
        return client

    def _open_folder(self, path: Path) -> ClientAPI:
        import chromadb

        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorStoreError(f"cannot create the ChromaDB folder {path}: {exc}") from exc
        try:
            client = chromadb.PersistentClient(path=str(path), settings=self._settings())
        except ValueError as exc:
            if "different settings" in str(exc):
                raise VectorStoreError(
                    f"another ChromaDB client with other settings is open on {path} in this "
                    "process; open the folder through ChromaStore only, or close the other client"
                ) from exc
            raise VectorStoreError(f"cannot open the ChromaDB folder {path}: {exc}") from exc
        except Exception as exc:  # sqlite/rust errors have no common base
            raise VectorStoreError(f"cannot open the ChromaDB folder {path}: {exc}") from exc
        logger.info("opened embedded ChromaDB at %s", path)
        return client

    @property
    def client(self) -> ClientAPI:
        """The underlying ChromaDB client, for diagnostics; prefer the store's methods."""
        return self._client

    @property
    def max_batch_size(self) -> int:
        """Largest batch ChromaDB accepts in one write; larger writes are split."""
        return self._max_batch

    def close(self) -> None:
        """Release the client (and the folder's lock) if this store created it; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._handles.clear()
        if self._owns_client and hasattr(self._client, "close"):
            try:
                self._client.close()
            except Exception:  # closing must not mask the caller's own error
                logger.warning("closing the ChromaDB client at %s failed", self.location)

    def __enter__(self) -> ChromaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChromaStore({self.location})"

    # ------------------------------------------------------------------ error handling

    def _unreachable(self, exc: BaseException) -> VectorStoreError:
        host, port = "127.0.0.1", 8000
        if self.url:
            host, port, _ = _parse_url(self.url)
        return VectorStoreError(
            f"cannot reach ChromaDB at {self.url or self.location}: start it with "
            f"`chroma run --path <folder> --host {host} --port {port}`, or leave chroma_url empty "
            f"to use an embedded store ({type(exc).__name__}: {exc})"
        )

    def _translate(self, exc: Exception, action: str, collection: str | None) -> RecagentsError:
        import httpx
        from chromadb.errors import NotFoundError

        target = f" {collection!r}" if collection else ""
        if isinstance(exc, httpx.TransportError) or "Could not connect" in str(exc):
            return self._unreachable(exc)
        if isinstance(exc, NotFoundError) and collection is not None:
            return missing_collection(collection, self._names_or_empty())
        return VectorStoreError(f"ChromaDB could not {action}{target}: {exc}")

    @contextmanager
    def _errors(self, action: str, collection: str | None = None) -> Iterator[None]:
        try:
            yield
        except RecagentsError:
            raise
        except Exception as exc:  # chromadb raises ValueError, ChromaError, httpx...
            raise self._translate(exc, action, collection) from exc

    def _names_or_empty(self) -> list[str]:
        try:
            return self._names()
        except Exception:  # only used to enrich another error
            return []

    # ------------------------------------------------------------------ collections

    def _names(self) -> list[str]:
        names: list[str] = []
        offset = 0
        while True:
            page = self._client.list_collections(limit=_LIST_PAGE, offset=offset)
            names.extend(c.name for c in page)
            if len(page) < _LIST_PAGE:
                return names
            offset += _LIST_PAGE

    def _open(self, name: str, create: bool) -> Collection:
        handle = self._handles.get(name)
        if handle is not None:
            return handle
        if create:
            check_collection_name(name)
            handle = self._client.get_or_create_collection(
                name, embedding_function=None, configuration=cosine_configuration()
            )
        else:
            handle = self._client.get_collection(name, embedding_function=None)
        space = _space(handle)
        if space != "cosine":
            raise VectorStoreError(
                f"collection {name!r} uses the {space or 'default l2'} distance, but scores here "
                "are cosine similarities: drop it or publish into another collection"
            )
        self._handles[name] = handle
        return handle

    def _call(self, name: str, action: str, fn: Callable[[Collection], _T], create: bool) -> _T:
        """Run ``fn`` on the collection, reopening once if another process recreated it."""
        from chromadb.errors import NotFoundError

        if self._closed:
            raise VectorStoreError(f"{self!r} is closed; open a new store")
        with self._errors(action, name):
            try:
                return fn(self._open(name, create))
            except NotFoundError:
                if name not in self._handles:
                    raise
                self._handles.pop(name, None)  # dropped behind our back: a stale handle
                return fn(self._open(name, create))

    def _batches(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self._max_batch):
            yield slice(start, min(n, start + self._max_batch))

    # ------------------------------------------------------------------ protocol

    def _upsert(
        self, collection: str, id_list: list[str], matrix: np.ndarray, rows: list[Metadata | None]
    ) -> None:

        def write(handle: Collection) -> None:
            for part in self._batches(len(id_list)):
                metas = rows[part]
                handle.upsert(
                    ids=id_list[part],
                    embeddings=matrix[part],
                    metadatas=metas if any(m is not None for m in metas) else None,  # type: ignore[arg-type]
                )

        self._call(collection, "upsert into", write, create=True)
        logger.debug("upserted %d vectors into %s", len(id_list), collection)

    def _dimension(self, handle: Collection) -> int:
        """Dimension for an empty result: from any stored vector, else the collection record."""
        peek = handle.get(limit=1, include=["embeddings"])
        stored = peek.get("embeddings")
        if stored is not None and len(stored) > 0:
            return len(stored[0])
        fresh = self._client.get_collection(handle.name, embedding_function=None)
        return int(getattr(getattr(fresh, "_model", None), "dimension", None) or 0)

    def _get(
        self, collection: str, wanted: list[str] | None, strict: dict[str, Any] | None
    ) -> tuple[list[str], np.ndarray, list[dict[str, MetadataValue]]]:

        def read(handle: Collection) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
            found: dict[str, tuple[Any, dict[str, Any]]] = {}
            order: list[str]
            if wanted is None:
                offset = 0
                while True:
                    page = handle.get(
                        where=strict,  # type: ignore[arg-type]
                        include=["embeddings", "metadatas"],
                        limit=self._max_batch,
                        offset=offset,
                    )
                    found.update(_rows(page))
                    if len(page["ids"]) < self._max_batch:
                        break
                    offset += self._max_batch
                order = list(found)
            else:
                unique = list(dict.fromkeys(wanted))
                for part in self._batches(len(unique)):
                    page = handle.get(
                        ids=unique[part],
                        where=strict,  # type: ignore[arg-type]
                        include=["embeddings", "metadatas"],
                    )
                    found.update(_rows(page))
                self._check_exist(handle, collection, [i for i in unique if i not in found])
                order = [i for i in wanted if i in found]
            if not order:
                dim = self._dimension(handle)
                return [], np.zeros((0, dim), dtype=np.float32), []
            matrix = np.asarray([found[i][0] for i in order], dtype=np.float32)
            return order, matrix, [dict(found[i][1]) for i in order]

        return self._call(collection, "read from", read, create=False)

    def _check_exist(self, handle: Collection, collection: str, absent: list[str]) -> None:
        """Tell ids that are missing from ids that exist but did not pass the filter."""
        if not absent:
            return
        existing: set[str] = set()
        for part in self._batches(len(absent)):
            existing.update(handle.get(ids=absent[part], include=[])["ids"])
        missing = [i for i in absent if i not in existing]
        if missing:
            more = f" ({len(missing)} ids missing in all)" if len(missing) > 1 else ""
            hint = f"not in collection {collection!r}{more}"
            raise UnknownEntityError("vector", missing[0], hint)

    def _query(
        self, collection: str, queries: np.ndarray, k: int, strict: dict[str, Any] | None
    ) -> list[QueryResult]:
        """Top-k cosine search (HNSW); see :meth:`.base.EmbeddingStore.query`."""

        def search(handle: Collection) -> list[QueryResult]:
            results: list[QueryResult] = []
            for part in self._batches(len(queries)):
                found = handle.query(
                    query_embeddings=queries[part],
                    n_results=k,
                    where=strict,  # type: ignore[arg-type]
                    include=["distances", "metadatas"],
                )
                distances = found["distances"] or [[] for _ in found["ids"]]
                metadatas = found["metadatas"] or [[] for _ in found["ids"]]
                for ids, dists, metas in zip(found["ids"], distances, metadatas, strict=True):
                    results.append(
                        QueryResult(
                            ids=list(ids),
                            scores=[float(np.clip(1.0 - d, -1.0, 1.0)) for d in dists],
                            metadatas=[dict(m or {}) for m in metas],
                        )
                    )
            return results

        return self._call(collection, "query", search, create=False)

    def _delete(
        self, collection: str, wanted: list[str] | None, strict: dict[str, Any] | None
    ) -> None:

        def remove(handle: Collection) -> None:
            if wanted is None:
                handle.delete(where=strict)  # type: ignore[arg-type]
                return
            unique = list(dict.fromkeys(wanted))
            for part in self._batches(len(unique)):
                handle.delete(ids=unique[part], where=strict)  # type: ignore[arg-type]

        self._call(collection, "delete from", remove, create=False)

    def count(self, collection: str) -> int:
        """Number of records; see :meth:`.base.EmbeddingStore.count`."""
        return self._call(collection, "count", lambda handle: int(handle.count()), create=False)

    def collections(self, prefix: str = "") -> list[str]:
        """Sorted collection names starting with ``prefix``."""
        if self._closed:
            raise VectorStoreError(f"{self!r} is closed; open a new store")
        with self._errors("list collections"):
            return sorted(name for name in self._names() if name.startswith(prefix))

    def drop(self, collection: str) -> None:
        """Delete a collection; a missing one is ignored."""
        from chromadb.errors import NotFoundError

        if self._closed:
            raise VectorStoreError(f"{self!r} is closed; open a new store")
        self._handles.pop(collection, None)
        with self._errors("drop", collection):
            try:
                self._client.delete_collection(collection)
            except NotFoundError:
                return
        logger.info("dropped collection %s", collection)


def open_store(settings: Settings | None = None) -> ChromaStore:
    """The store the settings describe: a server when ``chroma_url`` is set, else a folder.

    Args:
        settings: Defaults to :meth:`Settings.load` (file, environment, defaults).

    Returns:
        A :class:`ChromaStore`; close it (or use it as a context manager) when done.
    """
    settings = settings or Settings.load()
    if settings.chroma_url:
        return ChromaStore(url=settings.chroma_url)
    return ChromaStore(path=settings.chroma_path)
