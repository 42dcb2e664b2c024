"""``recagents serve`` as a person starts it: the port answers at once, the page shows progress.

A real server process on a small ingested catalog (real encoder, real embedded ChromaDB, the real
Gradio app) whose default run was trained with other roles than the ones installed now: ``serve``
must listen within seconds, answer 503 "preparing" (API) and a progress page (browser) while it
trains the run again, then serve the chat.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from recagents.ui.cli import main
from tests.integration.test_train_cli import _write_catalog

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_answer(url: str, deadline_s: float) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    while time.monotonic() - began < deadline_s:
        try:
            return httpx.get(url, timeout=5), time.monotonic() - began
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url} within {deadline_s} s")


def test_serve_listens_at_once_and_retrains_a_run_of_other_roles(tmp_path: Path) -> None:
    _write_catalog(tmp_path)
    home = tmp_path / "home"
    common = ["--home", str(home)]
    ingest = ["ingest", "--interactions", str(tmp_path / "ratings.csv")]
    ingest += ["--items", str(tmp_path / "items.csv"), "--name", "blocks"]
    assert main([*common, *ingest]) == 0
    # trained with a role the defaults do not hold (as if the defaults changed since)
    other = ["user_profile", "item", "ranking", "diversity"]
    train = ["train", "--dataset", "blocks", "--roles", ",".join(other)]
    assert main([*common, *train, "--rounds", "1", "--patience", "1"]) == 0
    metrics = home / "runs" / "blocks-s2020-default" / "metrics.json"
    assert json.loads(metrics.read_text())["roles"] == other

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "recagents.ui.cli", *common, "--log-level", "INFO"]
    command += ["serve", "--dataset", "blocks", "--port", str(port), "--llm", "none"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    try:
        first, waited = _first_answer(f"{url}/api/v1/health", 30)
        # listening as soon as Python has imported the CLI (seconds), long before it is ready
        assert waited < 30
        assert first.status_code == 503, first.text
        body = first.json()
        assert body["status"] == "preparing" and body["error"]["type"] == "Preparing"
        assert "retry in a few seconds" in body["error"]["message"]
        assert first.headers["retry-after"]
        page = httpx.get(f"{url}/", timeout=5)
        assert page.status_code == 503 and "getting ready" in page.text and "%" in page.text
        chat = httpx.post(f"{url}/api/v1/chat", json={"message": "hi"}, timeout=5)
        assert chat.status_code == 503 and chat.json()["status"] == "preparing"

        began = time.monotonic()
        ready = None
        while time.monotonic() - began < 400 and server.poll() is None:
            response = httpx.get(f"{url}/api/v1/health", timeout=5)
            if response.status_code == 200:
                ready = response
                break
            progress = response.json()["preparing"]
            assert 0.0 <= progress["progress"] <= 1.0 and progress["message"]
            time.sleep(1)
        text = log.read_text()
        assert ready is not None, text[-3000:]
        assert ready.json()["status"] == "ok" and ready.json()["dataset"] == "blocks"
        # the run was trained again with the installed roles; the log said why and how by hand
        assert "trained with roles" in text and f"recagents --home {home} train" in text
        from recagents.agents import registry

        assert json.loads(metrics.read_text())["roles"] == registry.defaults() != other
        assert f"open {url}/ in your browser" in text
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        reply = httpx.post(f"{url}/api/v1/chat", json={"message": "I loved Comedy Story 9"})
        assert reply.status_code == 200 and reply.json()["items"]
    finally:
        server.terminate()
        server.wait(30)
