"""A real Postgres for tests: ``initdb`` into a temp folder, ``postgres`` on a loopback port.

Debian's ``postgresql-15`` (``/usr/lib/postgresql/<v>/bin``; ``.ci/run`` installs it when
missing). Postgres refuses to run as root, so as root it runs as the ``postgres`` user through
``runuser`` and its folder belongs to that user. It listens on 127.0.0.1 only (no Unix socket
outside the folder), trusts local connections (a throwaway cluster), and is stopped by the PID
it was started with — never by name, so a machine's other Postgres servers are left alone.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def postgres_bin() -> Path | None:
    """The newest installed Debian Postgres ``bin`` folder, or None."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p / "bin" for p in root.glob("*") if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Postgres:
    """A running throwaway server."""

    url: str
    port: int
    pid: int
    folder: Path


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a fresh cluster; yield its URL; stop it by PID and delete its folder."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("Postgres is not installed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="recagents-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            _as_owner(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
                + ["--no-sync", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        log = (folder / "postgres.log").open("wb")
        process = subprocess.Popen(
            _as_owner(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
                + ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={folder}"]
                + ["-c", "fsync=off", "-c", "max_connections=200"]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        began = time.monotonic()
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() - began > 60:
                raise RuntimeError(
                    "Postgres did not start: " + (folder / "postgres.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        # runuser forks the server as its child: the server's own PID is its postmaster.pid
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        yield Postgres(url, port, pid, folder)
    finally:
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                pid_file = data / "postmaster.pid"
                if pid_file.exists():
                    os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGINT)  # fast
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def listening(port: int) -> list[str]:
    """The local addresses something listens on at TCP ``port`` (``ss -ltn``)."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].rsplit(":", 1)[-1] == str(port):
            found.append(fields[3].rsplit(":", 1)[0])
    return found
