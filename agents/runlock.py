"""One training process per run: an OS file lock beside the run folder, naming its holder.

Two ``recagents train`` on one run used to interleave their rounds in one folder and one store
namespace: started 0.5 s apart the second died on a misleading "unknown vector id"; 22 s apart
both exited 0 and the saved run was silently worse. The lock makes the second stop at once with
one line naming the holder (pid, command, since when) and the lock file.

The lock is ``flock`` on ``runs/<namespace>.lock``: the kernel releases it when the holder's
process ends, however it ends, so a lock left by ``kill -9`` is never in the way. The holder
writes who it is into the file; when a new holder finds a previous holder's details there
(it died without clearing them) it takes over and logs a note saying so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recagents.errors import RecagentsError

logger = logging.getLogger(__name__)


class RunLockedError(RecagentsError):
    """Another process is training the same run."""


def _holder(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it has not written its details yet)"
    where = f" on {holder['host']}" if holder.get("host") != socket.gethostname() else ""
    return (
        f"pid {holder.get('pid')}{where} (`{holder.get('command', '?')}`) since "
        f"{holder.get('since', '?')}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextmanager
def run_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold the lock on ``lock_file`` while training ``what`` (a run's name, for messages).

    Raises:
        RunLockedError: Another process holds it; the message names that process and the file.
    """
    import fcntl  # POSIX only, like the rest of the run-time tooling

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
            raise RunLockedError(
                f"run {what} is being trained by {_describe(holder)}; wait for it to finish "
                f"or stop it (lock file {lock_file})"
            ) from None
        previous = _holder(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
        if previous:
            state = "is gone" if not _alive(int(previous.get("pid", 0))) else "released it"
            logger.warning(
                "took over the lock %s of run %s left by %s, which %s without clearing it "
                "(e.g. killed)",
                lock_file,
                what,
                _describe(previous),
                state,
            )
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean exit leaves no holder to report
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["RunLockedError", "run_lock"]
