"""Server replicas sharing chat memory and the served run (issue 13), with real processes.

Every replica is a real ``recagents serve`` process on one home trained on the 32-film block
catalog (real encoder, embedded ChromaDB). The memory is the SQLite file of the home or a real
Postgres started here on a loopback port (``tests.support.postgres``): never a fake.

What must hold:

- a thread started on replica A continues on replica B;
- two clients sending turns to ONE thread at once, through different replicas, lose nothing
  (every message is in the history, each answered once) — without the database lock the later
  write drops the other's turn;
- a new version pointer (what training writes) is served by every replica;
- ``serve --workers 2``: two processes behind one port, same guarantees;
- bad ``--workers`` / ``--memory-url`` / an unreachable Postgres: one ``error:`` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from recagents.ui.cli import main
from tests.integration.test_train_cli import _write_catalog
from tests.support.postgres import listening, postgres_bin, running_postgres

pytestmark = pytest.mark.slow

#: Turns each of the two clients sends to the shared thread.
TURNS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the block catalog and two finished runs, ``default`` and ``ui``."""
    folder = tmp_path_factory.mktemp("replicas")
    _write_catalog(folder)
    home = folder / "home"
    common = ["--home", str(home)]
    ingest = ["ingest", "--interactions", str(folder / "ratings.csv")]
    ingest += ["--items", str(folder / "items.csv"), "--name", "blocks"]
    assert main([*common, *ingest]) == 0
    for run in ("ui", "default"):  # default last: the pointer names it
        train = ["train", "--dataset", "blocks", "--run", run, "--rounds", "1", "--patience", "1"]
        assert main([*common, *train]) == 0
    return home


@contextlib.contextmanager
def serve(
    home: Path, log: Path, *, memory_url: str = "", workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``recagents serve`` process; yields its URL once healthy; stopped by its PID."""
    port = _free_port()
    command = [sys.executable, "-m", "recagents.ui.cli", "--home", str(home)]
    if memory_url:
        command += ["--memory-url", memory_url]
    command += ["serve", "--dataset", "blocks", "--port", str(port), "--llm", "none"]
    command += ["--workers", str(workers)]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    try:
        began = time.monotonic()
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() - began < 300, log.read_text()[-3000:]
            with contextlib.suppress(httpx.TransportError):
                healthy = httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200
                # every replica ready, not only the one that answered
                if healthy and log.read_text().count("recagents.ui.server: ready:") >= workers:
                    break
            time.sleep(0.5)
        yield url, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _history(url: str, thread_id: str) -> list[dict[str, str]]:
    response = httpx.get(f"{url}/api/v1/threads/{thread_id}", timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def _shared_thread_turns(urls: list[str], thread_id: str) -> list[str]:
    """Client c sends TURNS messages to ``thread_id`` through ``urls[c]``, all at once."""

    def client(index: int) -> list[str]:
        sent = []
        with httpx.Client(base_url=urls[index], timeout=120) as http:
            for turn in range(TURNS):
                message = f"client {index} turn {turn}: I loved Comedy Story {8 + turn}"
                response = http.post(
                    "/api/v1/chat", json={"message": message, "thread_id": thread_id}
                )
                assert response.status_code == 200, response.text
                sent.append(message)
        return sent

    with ThreadPoolExecutor(len(urls)) as pool:
        return [m for sent in pool.map(client, range(len(urls))) for m in sent]


def _check_replicas(a: str, b: str) -> None:
    # a thread started on replica A continues on replica B, which sees A's turn
    first = httpx.post(f"{a}/api/v1/chat", json={"message": "I loved Drama Story 1"}, timeout=60)
    assert first.status_code == 200, first.text
    thread_id = first.json()["thread_id"]
    second = httpx.post(
        f"{b}/api/v1/chat",
        json={"message": "more please", "thread_id": thread_id},
        timeout=60,
    )
    assert second.status_code == 200, second.text
    said = [m["text"] for m in _history(b, thread_id) if m["role"] == "user"]
    assert said == ["I loved Drama Story 1", "more please"]
    assert "m1" in httpx.get(f"{b}/api/v1/threads/{thread_id}", timeout=30).json()["liked"]
    # a 👍 on replica B is in the thread replica A reads
    liked = httpx.post(
        f"{b}/api/v1/feedback",
        json={"thread_id": thread_id, "item_id": "m9", "liked": True},
        timeout=60,
    )
    assert liked.status_code == 200, liked.text
    assert "m9" in httpx.get(f"{a}/api/v1/threads/{thread_id}", timeout=30).json()["liked"]

    # two clients, one thread, two replicas, at once: nothing lost, each answered once
    sent = _shared_thread_turns([a, b], "shared")
    history = _history(a, "shared")
    said = [m["text"] for m in history if m["role"] == "user"]
    assert sorted(said) == sorted(sent), f"lost: {sorted(set(sent) - set(said))}"
    assert len([m for m in history if m["role"] == "assistant"]) == len(sent)
    for index in range(2):  # each client's turns in the order it sent them
        own = [m for m in said if m.startswith(f"client {index} ")]
        assert own == [m for m in sent if m.startswith(f"client {index} ")]


def _serving_run(url: str) -> str:
    return str(httpx.get(f"{url}/api/v1/agents", timeout=30).json()["run"]["run_dir"])


def _rounds(metrics: Path) -> list[int]:
    return [int(r["round"]) for r in json.loads(metrics.read_text())["rounds"]]


def _check_pointer(home: Path, urls: list[str], thread_id: str) -> None:
    from recagents.config import Settings
    from recagents.ui.server import write_serving

    assert {_serving_run(u) for u in urls} == {"blocks-s2020-default"}
    write_serving(Settings.load(home=home), "blocks", "ui")  # what a finished training writes
    began = time.monotonic()
    runs: set[str] = set()
    metrics = {p: _rounds(p) for p in (home / "runs").glob("*/metrics.json")}
    while time.monotonic() - began < 120:
        runs = {_serving_run(u) for u in urls}  # each request also makes a replica look
        if runs == {"blocks-s2020-ui"}:
            break
        time.sleep(1)
    assert runs == {"blocks-s2020-ui"}
    # the threads survived the reload
    assert _history(urls[0], thread_id)
    write_serving(Settings.load(home=home), "blocks", "default")
    began = time.monotonic()
    while time.monotonic() - began < 120 and runs != {"blocks-s2020-default"}:
        runs = {_serving_run(u) for u in urls}
        time.sleep(1)
    assert runs == {"blocks-s2020-default"}
    # reloading trained nothing: no run has a new round
    assert {p: _rounds(p) for p in metrics} == metrics


def test_two_replicas_share_sqlite_memory_and_the_served_run(home: Path, tmp_path: Path) -> None:
    memory = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    with (
        serve(home, tmp_path / "a.log", memory_url=memory) as (a, _),
        serve(home, tmp_path / "b.log", memory_url=memory) as (b, _),
    ):
        _check_replicas(a, b)
        _check_pointer(home, [a, b], "shared")
    assert (tmp_path / "shared.sqlite").exists()
    assert (tmp_path / "shared.sqlite.locks").is_dir()


@pytest.mark.skipif(
    postgres_bin() is None and not os.environ.get("CI"),
    reason="needs Debian's postgresql (.ci/run installs it; under CI this test fails instead)",
)
def test_two_replicas_share_postgres_memory(home: Path, tmp_path: Path) -> None:
    with running_postgres() as pg:
        assert listening(pg.port) == ["127.0.0.1"]  # loopback only
        with (
            serve(home, tmp_path / "a.log", memory_url=pg.url) as (a, _),
            serve(home, tmp_path / "b.log", memory_url=pg.url) as (b, _),
        ):
            _check_replicas(a, b)
        assert listening(pg.port) == ["127.0.0.1"]
        # forgetting a thread reaches Postgres too
        with serve(home, tmp_path / "c.log", memory_url=pg.url) as (c, _):
            assert httpx.delete(f"{c}/api/v1/threads/shared", timeout=30).status_code == 200
            assert httpx.get(f"{c}/api/v1/threads/shared", timeout=30).status_code == 404
    assert not listening(pg.port)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def test_serve_workers_two_processes_behind_one_port(home: Path, tmp_path: Path) -> None:
    with serve(home, tmp_path / "w.log", workers=2) as (url, server):
        replicas = _children(server.pid)
        replicas = [p for p in replicas if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(replicas) == 2, replicas
        # both replicas answer (the health check of each: both ready), one port for both
        sent = _shared_thread_turns([url, url, url], "workers")
        said = [m["text"] for m in _history(url, "workers") if m["role"] == "user"]
        assert sorted(said) == sorted(sent)
        # the chat UI too: Gradio keeps a session's queue in one process, so replica 1
        # forwards UI requests to replica 0 (without that, 4 of 12 calls were cancelled)
        from gradio_client import Client

        def ui_turn(index: int) -> str:
            client = Client(url, verbose=False, download_files=False)
            reply = client.predict(
                f"I loved Comedy Story {8 + index % 8}", f"ui{index}", "", api_name="/chat"
            )
            return str(reply)

        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(ui_turn, range(12)))
        assert len(replies) == 12 and all(replies)
        for index in range(12):
            said = [m["text"] for m in _history(url, f"ui{index}") if m["role"] == "user"]
            assert said == [f"I loved Comedy Story {8 + index % 8}"]
        page = httpx.get(f"{url}/", timeout=30)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        _check_pointer(home, [url], "workers")
    log = (tmp_path / "w.log").read_text()
    assert "[replica 0]" in log and "[replica 1]" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["serve", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["--memory-url", "mysql://db", "serve"], "unknown kind of memory"),
        (["--memory-url", "sqlite://relative.db", "serve"], "needs an absolute file path"),
        (
            ["--memory-url", "postgresql://u:secret@127.0.0.1:9/db", "serve"],
            "cannot use the conversation memory postgresql://u:***@127.0.0.1:9/db",
        ),
    ],
)
def test_bad_serve_options_are_one_error_line(
    tmp_path: Path, options: list[str], expected: str
) -> None:
    command = [sys.executable, "-m", "recagents.ui.cli", "--home", str(tmp_path), *options]
    command += ["--port", str(_free_port())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "secret" not in done.stderr


def test_the_train_button_writes_the_pointer_once_per_home(home: Path) -> None:
    """What the UI's Train runs (``make_trainer``): one training per home, whichever replica;
    the finished run is announced through the pointer; the training replica does not reload."""
    from recagents.config import Settings
    from recagents.errors import ConfigError
    from recagents.graph.engine import Engine
    from recagents.ui.facade import Recommender
    from recagents.ui.server import (
        ServingWatcher,
        home_lock,
        make_trainer,
        read_serving,
        write_serving,
    )

    settings = Settings.load(home=home, dataset="blocks")
    write_serving(settings, "blocks", "default")
    last = _rounds(home / "runs" / "blocks-s2020-default" / "metrics.json")[-1]
    rec = Recommender(
        Engine.load(settings, run_name="default", max_rounds=last), settings, log=None
    )
    published: list[dict[str, str]] = []
    train = make_trainer(
        settings, lambda: rec, max_rounds=1, patience=1, published=published.append
    )
    with home_lock(settings, "train"), pytest.raises(ConfigError, match="another replica"):
        train(lambda _f, _m: None)  # another replica (here: this test) is training
    assert read_serving(settings, "blocks")["run"] == "default"

    new = train(lambda _f, _m: None)
    pointer = read_serving(settings, "blocks")
    assert new.engine.namespace.endswith("-ui") and pointer["run"] == "ui"
    assert published and published[0]["token"] == pointer["token"]
    watcher = ServingWatcher(settings, "blocks", lambda: None, seen=pointer["token"])
    watcher.poll()  # its own pointer: nothing to reload
    assert watcher._loading is None
