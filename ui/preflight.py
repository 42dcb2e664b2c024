"""What ``serve`` checks in its home before loading anything: each file it will open, once.

Damaged files used to stop the server with a raw traceback after the catalog had loaded, or
worse, let it start and answer every chat with a 500 (scrambled SQLite pages). Each file is now
checked first and handled by what it is:

* ``conversations.sqlite`` holds people's threads, which nothing else can rebuild: refuse to
  start, in one line naming the file and the two ways out (move it aside, restore a backup).
* The embedded ChromaDB folder holds only what the agents publish from their saved weights,
  and loading a run publishes them again: move the damaged folder aside, start with an empty
  store, and the load rebuilds it.
* The text-embedding cache is a cache: move it aside; the catalog is encoded again.
* The run folder: :func:`~recagents.agents.integrity.recover_run` falls back to the last good
  round, or refuses naming the file.

Everything moved is kept next to the original (``<name>.damaged-<UTC time>``), never deleted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from recagents.agents.integrity import recover_run
from recagents.config import Settings
from recagents.errors import CorruptDataError
from recagents.integrity import move_aside, sqlite_problem

logger = logging.getLogger(__name__)

#: The conversation memory under home (the SQLite checkpointer's file).
CONVERSATIONS = "conversations.sqlite"
#: Chroma's catalog of collections inside its folder.
CHROMA_SQLITE = "chroma.sqlite3"
#: The encoder's cache of text embeddings, under the cache folder.
TEXT_CACHE = "text-embeddings.sqlite"


def check_home(settings: Settings, run_dir: Path | None = None) -> list[str]:
    """Check the files ``serve`` will open; repair what can be rebuilt; one line per repair.

    Args:
        settings: The served settings (home, ChromaDB folder or server).
        run_dir: The run about to be loaded, when known.

    Raises:
        CorruptDataError: A damaged file that nothing can rebuild: the conversations, or a run
            with no good round. The message names the file and the fix.
    """
    from recagents.ui.memory import MemorySpec

    notes: list[str] = []
    memory = MemorySpec.parse(settings.memory_url, settings)  # Postgres checks its own files
    conversations = Path(memory.target) if memory.kind == "sqlite" else None
    if conversations is not None and conversations.exists():
        problem = sqlite_problem(conversations)
        if problem:
            raise CorruptDataError(
                f"{conversations} is corrupt ({problem}): move it aside (with any "
                f"{conversations.name}-wal and -shm next to it) to start with no saved threads, or "
                "restore it from a backup"
            )
    if not settings.chroma_url:  # a ChromaDB server checks its own files
        chroma = Path(settings.chroma_path)
        problem = (
            sqlite_problem(chroma / CHROMA_SQLITE) if (chroma / CHROMA_SQLITE).exists() else None
        )
        if problem:
            aside = move_aside(chroma)
            notes.append(
                f"the vector store {chroma / CHROMA_SQLITE} is corrupt ({problem}): moved the "
                f"folder to {aside.name} and rebuilding it from the agents' saved weights"
            )
    cache = Path(settings.cache_dir) / TEXT_CACHE
    if cache.exists():
        problem = sqlite_problem(cache)
        if problem:
            aside = move_aside(cache)
            notes.append(
                f"the text-embedding cache {cache} is corrupt ({problem}): moved it to "
                f"{aside.name}; the catalog's texts are encoded again"
            )
    for note in notes:
        logger.warning("%s", note)
    if run_dir is not None:
        notes += recover_run(run_dir)  # logs its own lines
    return notes


__all__ = ["check_home"]
