"""A first ``serve`` killed while it trains, started again: the run's history has each round once.

Real server processes on a small ingested catalog (real encoder, embedded ChromaDB). The first
is frozen (SIGSTOP) the moment round 0's checkpoint is in place, then killed (SIGKILL) there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from recagents.ui.cli import main
from tests.integration.test_serve_start import _free_port
from tests.integration.test_train_cli import _write_catalog

pytestmark = pytest.mark.slow


def _serve(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "recagents.ui.cli", "--home", str(home)]
    command += ["serve", "--dataset", "blocks", "--port", str(port), "--llm", "none"]
    with log.open("a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_serve_killed_during_training_and_started_again_records_each_round_once(
    tmp_path: Path,
) -> None:
    _write_catalog(tmp_path)
    home = tmp_path / "home"
    ingest = ["ingest", "--interactions", str(tmp_path / "ratings.csv")]
    ingest += ["--items", str(tmp_path / "items.csv"), "--name", "blocks"]
    assert main(["--home", str(home), *ingest]) == 0
    run = home / "runs" / "blocks-s2020-default"
    log = tmp_path / "serve.log"

    first = _serve(home, _free_port(), log)
    try:
        began = time.monotonic()
        while not (run / "round-0000" / "DONE").exists():
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() - began < 400, "round 0 never finished"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)
        assert not (run / "round-0001" / "DONE").exists()
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        _stop(first)
    assert not (run / "final").exists()

    port = _free_port()
    second = _serve(home, port, log)
    try:
        began, ready = time.monotonic(), False
        while time.monotonic() - began < 400 and second.poll() is None and not ready:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready, log.read_text()[-3000:]
    finally:
        _stop(second)
    rounds = [r["round"] for r in json.loads((run / "metrics.json").read_text())["rounds"]]
    assert rounds == list(range(len(rounds))) and len(rounds) > 1, rounds
