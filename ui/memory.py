"""Conversation memory that several server replicas share: the checkpointer and its thread lock.

``--memory-url`` (setting ``memory_url``, ``RECAGENTS_MEMORY_URL``) names where threads live:

- empty (default): ``<home>/conversations.sqlite``, as before;
- ``sqlite:///abs/path.sqlite``: another SQLite file (WAL), one machine;
- ``postgresql://user@host:port/db``: Postgres (``langgraph-checkpoint-postgres``), replicas on
  several machines.

Why a lock beyond the checkpointer: a turn reads the thread's latest checkpoint, runs the graph
and writes a new one. Two replicas running turns on one thread at once both read the same
checkpoint and the later write silently drops the other's turn (measured for issue 13: 32-37 of
400 shared-thread turns lost, with either database). The in-process
:class:`~recagents.ui.threads.LocalThreadLocks` cannot see the other replica, so every replica
also takes a lock the database's other users see, for the whole read-run-write:

- Postgres: a session advisory lock keyed by ``hashtextextended(thread_id, 0)`` on a connection
  held for the turn (:class:`PostgresThreadLocks`). It dies with the connection, so a replica
  killed mid-turn frees the thread at once.
- SQLite: ``flock`` on one of 1,024 lock files next to the database (:class:`FileThreadLocks`);
  SQLite is one machine by nature, and the kernel releases a dead process's ``flock`` too. The
  thread id picks the file by hash: the files stay few however many threads there are, and two
  threads sharing a file merely take turns.

Both are layered under the in-process FIFO lock (:class:`LayeredThreadLocks`), so within one
replica waiting turns keep their arrival order and hold one database connection, not one each.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from recagents.config import Settings
from recagents.errors import ConfigError
from recagents.ui.threads import LocalThreadLocks, ThreadLocks

logger = logging.getLogger(__name__)

#: How many lock files a SQLite memory spreads its threads over.
LOCK_STRIPES = 1024
#: The advisory-lock key that serialises ``PostgresSaver.setup()`` among replicas starting at once
#: (its ``CREATE TABLE IF NOT EXISTS`` races otherwise: two replicas both create, one fails).
SETUP_LOCK_KEY = 0x7265636167656E74  # "recagent"


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class MemorySpec:
    """A parsed memory URL: ``kind`` (``sqlite`` | ``postgres``) and its path or URL."""

    kind: str
    target: str

    @classmethod
    def parse(cls, url: str | None, settings: Settings) -> MemorySpec:
        """Read ``url`` (empty: the home's SQLite file).

        Raises:
            ConfigError: An unknown scheme, or a SQLite URL without an absolute path.
        """
        url = (url or "").strip()
        if not url:
            return cls("sqlite", str(Path(settings.home) / "conversations.sqlite"))
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("postgresql", "postgres"):
            parts = urlsplit(url)
            if not parts.hostname and "host=" not in parts.query:
                raise ConfigError(
                    f"--memory-url {redact_url(url)} names no host: use "
                    "postgresql://user@host:port/database"
                )
            return cls("postgres", url)
        if scheme == "sqlite":
            path = url[len("sqlite://") :]
            if path.startswith("/"):  # sqlite:///abs and SQLAlchemy's sqlite:////abs alike
                path = "/" + path.lstrip("/")
            if not path.startswith("/") or path == "/":
                raise ConfigError(
                    f"--memory-url {url}: a SQLite memory needs an absolute file path, "
                    "e.g. sqlite:///srv/recagents/conversations.sqlite"
                )
            return cls("sqlite", path)
        raise ConfigError(
            f"--memory-url {redact_url(url)}: unknown kind of memory; use sqlite:///abs/path or "
            "postgresql://user@host:port/database (empty: a SQLite file under --home)"
        )


@dataclass
class Memory:
    """An open conversation memory: the checkpointer, the lock replicas share, a closer."""

    checkpointer: Any
    locks: ThreadLocks
    spec: MemorySpec
    pools: tuple[Any, ...] = ()

    def close(self) -> None:
        """Close the database connections (Postgres pools; SQLite closes with the process)."""
        for pool in self.pools:
            with contextlib.suppress(Exception):
                pool.close()


class LayeredThreadLocks:
    """An in-process FIFO lock first, then a lock other processes see (``outer``).

    Why both: the outer lock alone would let waiting turns of one replica overtake each other
    (``flock`` and advisory locks are not FIFO) and each would hold a database connection while
    it waits; the in-process lock queues them, so one connection per busy thread suffices.
    """

    def __init__(self, outer: ThreadLocks) -> None:
        self.local = LocalThreadLocks()
        self.outer = outer

    @contextlib.contextmanager
    def hold(self, thread_id: str) -> Iterator[None]:
        """Hold ``thread_id`` in this process, then across processes, for the body."""
        with self.local.hold(thread_id), self.outer.hold(thread_id):
            yield


class FileThreadLocks:
    """``flock`` on a lock file chosen by the thread id's hash, in a folder next to the database.

    Args:
        folder: Where the lock files live (``<database>.locks``); created if missing.
        stripes: How many files the threads are spread over.
    """

    def __init__(self, folder: Path, stripes: int = LOCK_STRIPES) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stripes = int(stripes)

    def path(self, thread_id: str) -> Path:
        """The lock file of ``thread_id``."""
        digest = hashlib.sha256(thread_id.encode("utf-8")).digest()
        return self.folder / f"{int.from_bytes(digest[:4], 'big') % self.stripes:04d}.lock"

    @contextlib.contextmanager
    def hold(self, thread_id: str) -> Iterator[None]:
        """Block until no other process (or open file) holds the thread's file; hold it."""
        fd = os.open(self.path(thread_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class PostgresThreadLocks:
    """``pg_advisory_lock(hashtextextended(thread_id, 0))`` on a pooled connection per turn.

    A session lock (not ``pg_advisory_xact_lock``): the turn's reads and writes go through the
    checkpointer's own connections, outside any transaction of this one, so the lock must
    outlive a transaction; it is released explicitly, and by the server if the connection dies.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @contextlib.contextmanager
    def hold(self, thread_id: str) -> Iterator[None]:
        """Hold the thread's advisory lock for the body."""
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (thread_id,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (thread_id,))


def _sqlite_memory(spec: MemorySpec) -> Memory:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(spec.target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        # WAL (which SqliteSaver turns on) makes NORMAL safe: a crash of the app loses nothing,
        # only a power cut can drop the last turns; FULL would fsync every graph step. WAL also
        # lets replicas read while one writes; the 30 s busy timeout covers a writer's commit.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"cannot open the conversation memory {path} ({exc}): fix --memory-url or --home"
        ) from None
    locks = LayeredThreadLocks(FileThreadLocks(path.with_name(path.name + ".locks")))
    return Memory(SqliteSaver(connection), locks, spec)


def _postgres_memory(spec: MemorySpec, max_connections: int) -> Memory:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    shown = redact_url(spec.target)
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    try:  # one probe connection first: a bad URL or a down server is one clear line
        with psycopg.connect(spec.target, connect_timeout=5, **kwargs) as probe:  # type: ignore[arg-type]
            probe.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
            try:
                PostgresSaver(probe).setup()  # type: ignore[arg-type]
            finally:
                probe.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))
    except (psycopg.Error, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"cannot use the conversation memory {shown} ({reason}): start Postgres there or "
            "fix --memory-url"
        ) from None

    def pool(name: str, size: int) -> Any:
        return ConnectionPool(
            spec.target,
            kwargs=kwargs,
            min_size=1,
            max_size=size,
            open=True,
            name=name,
        )

    saver_pool = pool("recagents-memory", max_connections)
    lock_pool = pool("recagents-locks", max_connections)
    locks = LayeredThreadLocks(PostgresThreadLocks(lock_pool))
    return Memory(PostgresSaver(saver_pool), locks, spec, (saver_pool, lock_pool))


def open_memory(url: str | None, settings: Settings, *, max_connections: int = 16) -> Memory:
    """Open the memory ``url`` names (:class:`MemorySpec`) with the lock its replicas share.

    Args:
        url: ``None`` or empty: ``settings.memory_url``, else the home's SQLite file.
        settings: For the home and the ``memory_url`` setting.
        max_connections: Largest Postgres pool (per pool: checkpoints, locks).

    Raises:
        ConfigError: A bad URL, or a database that cannot be reached or set up (one line, the
            password hidden).
    """
    spec = MemorySpec.parse(url if url else settings.memory_url, settings)
    if spec.kind == "postgres":
        memory = _postgres_memory(spec, max_connections)
    else:
        memory = _sqlite_memory(spec)
    logger.info("conversation memory: %s %s", spec.kind, redact_url(spec.target))
    return memory
