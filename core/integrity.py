"""Is a file on disk what was written? Checksums, SQLite checks, JSON parses, and moving aside.

A server that opens a damaged file fails late and badly: a truncated SQLite file or a half
``metrics.json`` surfaced as a raw traceback after half a minute of loading, and scrambled SQLite
pages let the server start and answer every chat with a 500. These checks run before anything is
loaded, so a damaged file is found at start, named, and either replaced by a good copy (the last
good round, a rebuilt store) or reported in one line that says what to do.

Round folders carry a ``SHA256SUMS`` file in ``sha256sum`` format, so an operator can check a
backup by hand (``cd round-0003 && sha256sum -c SHA256SUMS``) with the same sums the server uses.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

#: The checksum file of a folder, in ``sha256sum`` format (``<hex>  <relative path>``).
MANIFEST = "SHA256SUMS"
#: Files a manifest does not list: itself, and the marker written after it.
UNLISTED = frozenset({MANIFEST, "DONE"})


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (weights can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> Path:
    """Write ``SHA256SUMS`` for every file under ``folder`` (before it is renamed into place)."""
    lines = [
        f"{sha256(path)}  {path.relative_to(folder).as_posix()}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in UNLISTED
    ]
    target = folder / MANIFEST
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def manifest_problem(folder: Path) -> str | None:
    """What is wrong with ``folder`` against its ``SHA256SUMS``; ``None`` when all files match.

    A folder without a manifest (written before checksums existed) has nothing to check here;
    the caller decides what else to check. A file the manifest does not list is not an error.
    """
    manifest = folder / MANIFEST
    if not manifest.exists():
        return None
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return f"{MANIFEST} cannot be read ({exc})"
    for line in lines:
        if not line.strip():
            continue
        expected, _, name = line.partition("  ")
        path = folder / name
        if len(expected) != 64 or not name:
            return f"{MANIFEST} is damaged (line {line[:80]!r})"
        if not path.is_file():
            return f"{name} is missing"
        if sha256(path) != expected:
            return f"{name} does not match its checksum (truncated or overwritten)"
    return None


def sqlite_problem(path: Path) -> str | None:
    """SQLite's own verdict on a database file (``PRAGMA quick_check``); ``None`` when sound.

    ``quick_check`` reads every page and checks the b-trees and records (not index contents),
    which finds truncation and scrambled pages in a fraction of ``integrity_check``'s time.
    The file is opened read-only, so checking never changes it.
    """
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        connection.close()
    if rows == [("ok",)]:
        return None
    first = str(rows[0][0]) if rows else "no answer"
    return " ".join(first.split())[:200]


def json_problem(path: Path) -> str | None:
    """Why ``path`` is not valid JSON (with the place it breaks); ``None`` when it parses."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return str(exc)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return None


def move_aside(path: Path, label: str = "damaged") -> Path:
    """Rename ``path`` to ``<name>.<label>-<UTC time>`` next to it, never overwriting.

    Damaged files are kept, not deleted: they may hold what a person wants to recover by hand.
    SQLite's ``-wal`` and ``-shm`` files move with their database, so the new, empty database
    never replays an old journal.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    number = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{label}-{stamp}-{number}")
        number += 1
    path.rename(target)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


__all__ = [
    "MANIFEST",
    "json_problem",
    "manifest_problem",
    "move_aside",
    "sha256",
    "sqlite_problem",
    "write_manifest",
]
