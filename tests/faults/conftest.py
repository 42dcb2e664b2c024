"""A trained home, damaged for real, and the real ``recagents serve`` started over it.

One small home per session (the ``blocks`` catalog of the train CLI test, trained to the end,
with threads saved by real chat turns): each test copies it, truncates, scrambles or kills
something in the copy, and starts the real server process on it. Copies keep the suite's cost at
one training per session.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from recagents.config import Settings
from recagents.ui.cli import main
from tests.integration.test_train_cli import _write_catalog

DATASET = "blocks"
RUN = f"{DATASET}-s2020-default"
#: Threads the base home holds, each with this many turns.
THREADS, TURNS = 3, 4


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory, torch_one_thread: None) -> Path:
    """A home with a finished run (checksummed rounds) and saved threads, closed cleanly."""
    from recagents.ui.facade import Recommender

    folder = tmp_path_factory.mktemp("fault-base")
    _write_catalog(folder)
    home = folder / "home"
    common = ["--home", str(home)]
    ingest = ["ingest", "--interactions", str(folder / "ratings.csv")]
    ingest += ["--items", str(folder / "items.csv"), "--name", DATASET]
    assert main([*common, *ingest]) == 0
    # to the end (max_rounds as serve uses it), so serve resumes without training more
    train = ["train", "--dataset", DATASET, "--rounds", "8", "--patience", "2"]
    assert main([*common, *train]) == 0
    settings = Settings.load(home=home, dataset=DATASET)
    recommender = Recommender.load(settings, llm="none")
    for thread in range(THREADS):
        for turn in range(TURNS):
            recommender.chat(f"I loved Comedy Story {turn + 1}", thread_id=f"t{thread}")
    recommender.checkpointer.conn.close()
    recommender.engine.store.close()
    # as a server stopped cleanly leaves it: every turn in the database file, no journal
    connection = sqlite3.connect(home / "conversations.sqlite")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    return home


@pytest.fixture
def home(base_home: Path, tmp_path: Path) -> Path:
    """A private copy of the base home, free to damage."""
    copy = tmp_path / "home"
    shutil.copytree(base_home, copy)
    return copy


def run_dir(home: Path) -> Path:
    """The served run's folder."""
    return home / "runs" / RUN


def rounds(home: Path) -> list[Path]:
    """The run's finished round folders, ascending."""
    return sorted(p for p in run_dir(home).glob("round-*") if (p / "DONE").exists())


def truncate(path: Path, fraction: float = 0.5) -> None:
    """Cut a file to ``fraction`` of its size (a crash or a full disk mid-copy)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def scramble_pages(path: Path, page: int = 4096, seed: int = 0) -> int:
    """Overwrite every other page in the middle of a SQLite file with random bytes.

    The first page (the header) and the last are left alone, so the file still opens as a
    database: only reading it through finds the damage. Returns the pages overwritten.
    """
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    pages = len(data) // page
    hit = 0
    for number in range(1, pages - 1, 2):
        data[number * page : (number + 1) * page] = rng.randbytes(page)
        hit += 1
    assert hit, f"{path} has too few pages to scramble"
    path.write_bytes(bytes(data))
    return hit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A ``recagents serve`` process, its URL and its combined output."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 300) -> httpx.Response | None:
        """The first 200 of ``/health``, or ``None`` when the process exits first."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                return None
            try:
                response = httpx.get(f"{self.url}/api/v1/health", timeout=10)
                if response.status_code == 200:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready nor exited in {timeout} s:\n{self.output()[-3000:]}")

    def wait_exit(self, timeout: float = 120) -> int:
        """The exit code (the process must exit on its own within ``timeout``)."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """kill -9: no shutdown, no journal checkpoint (as a crash or an OOM kill)."""
        self.process.kill()
        self.process.wait(30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start ``recagents serve`` on a home; every process started is stopped by its PID."""
    started: list[Served] = []

    def start(home: Path) -> Served:
        port = _free_port()
        command = [sys.executable, "-m", "recagents.ui.cli", "--home", str(home)]
        command += ["serve", "--dataset", DATASET, "--port", str(port), "--llm", "none"]
        log = tmp_path / f"serve-{len(started)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=os.environ
            )
        served = Served(process, f"http://127.0.0.1:{port}", log)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.terminate()
            try:
                served.process.wait(30)
            except subprocess.TimeoutExpired:
                served.process.kill()
                served.process.wait(10)
