"""One writer per thread, whole turns, bounded checkpoints.

Why this exists: a turn is a read-modify-write of the thread's checkpointed state (the graph
reads the latest checkpoint, runs, writes a new one), and so is a 👍. Two of them on one
``thread_id`` at once both read the same checkpoint and the later write silently drops the
other's update (measured: 10 turns + 10 likes at once kept 3 turns and 0-3 likes). So:

- :class:`ThreadLocks` serialises writers per thread. :class:`LocalThreadLocks` is the
  in-process table that one server needs; when replicas share one database (issue 13), a
  database-level lock (a Postgres advisory lock keyed by the thread id, held for the turn) plugs
  in behind the same one-method protocol.
- :class:`CheckpointJanitor` makes a failed turn leave no trace (the graph runs with
  ``durability="exit"``, so nothing is written mid-turn, but LangGraph still saves the partial
  state when a run raises: the janitor deletes that checkpoint) and prunes a thread's old
  checkpoints after each commit, so a long thread does not grow the database.

What is not covered: a process killed in the milliseconds between a *failed* turn's exit write
and its rollback keeps that partial checkpoint (a kill during a turn that would have succeeded
leaves nothing, as no checkpoint is written before the turn ends).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class ThreadLocks(Protocol):
    """Mutual exclusion per ``thread_id``: whoever holds a thread is its only writer.

    Implementations: :class:`LocalThreadLocks` (one process); replicas sharing a database use
    :mod:`recagents.ui.memory`'s locks (a Postgres advisory lock or a ``flock`` per thread
    held for the turn), so that they serialise too.
    """

    def hold(self, thread_id: str) -> AbstractContextManager[None]:
        """Block until ``thread_id`` is free, hold it for the ``with`` body, then release it."""
        ...


@dataclass
class _Entry:
    """One thread's lock: whether it is held, and who waits (first come, first served)."""

    held: bool = False
    users: int = 0
    waiting: deque[threading.Event] = field(default_factory=deque)


class LocalThreadLocks:
    """In-process FIFO locks keyed by thread id; an entry lives only while someone uses it.

    First come, first served (unlike a bare ``threading.Lock``), so turns and likes on one
    thread land in the order they asked. Entries are removed when their last user leaves, so
    the table holds only threads in use right now, however many threads a server has seen.
    A holder may release from another OS thread than the one that acquired (a streamed turn
    is resumed by whichever worker thread serves the next chunk).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._table: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """How many threads have a holder or a waiter now."""
        with self._guard:
            return len(self._table)

    @contextmanager
    def hold(self, thread_id: str) -> Iterator[None]:
        """Hold ``thread_id`` for the ``with`` body (waiting behind earlier callers)."""
        self._acquire(thread_id)
        try:
            yield
        finally:
            self._release(thread_id)

    def _acquire(self, thread_id: str) -> None:
        with self._guard:
            entry = self._table.setdefault(thread_id, _Entry())
            entry.users += 1
            if not entry.held:
                entry.held = True
                return
            ticket = threading.Event()
            entry.waiting.append(ticket)
        try:
            ticket.wait()
        except BaseException:  # interrupted while waiting: leave the queue, or pass the lock on
            with self._guard:
                if ticket in entry.waiting:
                    entry.waiting.remove(ticket)
                    self._leave(thread_id, entry)
                    raise
            self._release(thread_id)
            raise

    def _release(self, thread_id: str) -> None:
        with self._guard:
            entry = self._table[thread_id]
            if entry.waiting:
                entry.waiting.popleft().set()  # handed over: stays held
            else:
                entry.held = False
            self._leave(thread_id, entry)

    def _leave(self, thread_id: str, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._table[thread_id]


class CheckpointJanitor:
    """Rolls a thread back to a checkpoint, and prunes all but a thread's latest checkpoints.

    Knows LangGraph's SQLite, Postgres and in-memory savers (their storage is what they
    document as the schema / fields); another checkpointer gets no rollback and no pruning, with
    a warning once, until it gets an implementation here.

    Postgres keeps only a thread's latest checkpoint (the saver's own ``prune(keep_latest)``,
    which also drops the channel blobs no kept checkpoint refers to; a DELETE by checkpoint id
    would leave those behind) rather than ``keep`` of them: memory reads only the latest.
    """

    def __init__(self, checkpointer: Any) -> None:
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.checkpointer = checkpointer
        postgres: tuple[type, ...] = ()
        try:
            from langgraph.checkpoint.postgres import PostgresSaver

            postgres = (PostgresSaver,)
        except ImportError:  # pragma: no cover - a dependency, but the saver is optional here
            pass
        if isinstance(checkpointer, SqliteSaver):
            self.kind = "sqlite"
        elif postgres and isinstance(checkpointer, postgres):
            self.kind = "postgres"
        elif isinstance(checkpointer, InMemorySaver):
            self.kind = "memory"
        else:
            self.kind = "other"
            logger.warning(
                "checkpointer %s: failed turns are not rolled back and old checkpoints are not"
                " pruned (only SQLite and in-memory are supported)",
                type(checkpointer).__name__,
            )

    def head(self, thread_id: str) -> str | None:
        """The id of the thread's latest checkpoint, or None for a new thread."""
        found = self.checkpointer.get_tuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        )
        return None if found is None else str(found.config["configurable"]["checkpoint_id"])

    def rollback(self, thread_id: str, head: str | None) -> None:
        """Delete every checkpoint (and its writes) of the thread newer than ``head``."""
        if self.kind == "sqlite":
            with self.checkpointer.cursor() as cur:
                for table in ("checkpoints", "writes"):
                    if head is None:
                        cur.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
                    else:
                        cur.execute(
                            f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id > ?",
                            (thread_id, head),
                        )
        elif self.kind == "postgres":
            if head is None:
                self.checkpointer.delete_thread(thread_id)
                return
            with self.checkpointer._cursor() as cur:  # noqa: SLF001 - the saver's connection
                for table in ("checkpoints", "checkpoint_writes"):
                    cur.execute(
                        f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id > %s",
                        (thread_id, head),
                    )
        elif self.kind == "memory":
            self._memory_keep(thread_id, lambda ids: [i for i in ids if head and i <= head])

    def prune(self, thread_id: str, keep: int) -> None:
        """Keep only the thread's ``keep`` latest checkpoints (ids sort by time: uuid6)."""
        if self.kind == "sqlite":
            with self.checkpointer.cursor() as cur:
                rows = cur.execute(
                    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND "
                    "checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?",
                    (thread_id, keep - 1),
                ).fetchall()
                if rows:
                    oldest_kept = rows[0][0]
                    for table in ("checkpoints", "writes"):
                        cur.execute(
                            f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id < ?",
                            (thread_id, oldest_kept),
                        )
        elif self.kind == "postgres":
            self.checkpointer.prune([thread_id], strategy="keep_latest")
        elif self.kind == "memory":
            self._memory_keep(thread_id, lambda ids: sorted(ids)[-keep:])

    def _memory_keep(self, thread_id: str, choose: Any) -> None:
        """Keep the in-memory checkpoints ``choose`` picks; drop the rest, their writes, blobs."""
        saver = self.checkpointer
        for ns, checkpoints in list(saver.storage.get(thread_id, {}).items()):
            kept = set(choose(list(checkpoints)))
            for checkpoint_id in [i for i in checkpoints if i not in kept]:
                del checkpoints[checkpoint_id]
                saver.writes.pop((thread_id, ns, checkpoint_id), None)
            # Blobs are per channel version; keep those a remaining checkpoint refers to.
            used = set()
            for saved, _metadata, _parent in checkpoints.values():
                versions = saver.serde.loads_typed(saved).get("channel_versions", {})
                used.update((thread_id, ns, ch, v) for ch, v in versions.items())
            for key in [k for k in saver.blobs if k[:2] == (thread_id, ns) and k not in used]:
                del saver.blobs[key]
