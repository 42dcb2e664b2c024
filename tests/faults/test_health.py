"""``/health`` tells which part a turn needs is failing, over a real server on a real home.

Before: ``/health`` answered ``{"status": "ok"}`` whatever state the conversation memory or the
vector store was in, and a chat whose memory failed was a 500.
"""

from __future__ import annotations

import httpx
import pytest

from recagents.config import Settings
from tests.faults.conftest import DATASET
from tests.support.server import BackgroundServer

pytestmark = pytest.mark.slow


def test_health_names_the_failing_part_and_chat_says_503_not_500(home) -> None:  # type: ignore[no-untyped-def]
    from recagents.ui.app import create_app
    from recagents.ui.facade import Recommender

    recommender = Recommender.load(Settings.load(home=home, dataset=DATASET), llm="none")
    server = BackgroundServer(create_app(recommender)).start()
    try:
        health = httpx.get(f"{server.url}/api/v1/health", timeout=30)
        assert health.status_code == 200, health.text
        parts = health.json()["parts"]
        assert set(parts) == {"agents", "store", "memory", "chat_model"}
        assert all(p["status"] == "ok" for p in parts.values()), parts

        # the conversation memory goes away under the running server (its database closed)
        recommender.checkpointer.conn.close()
        health = httpx.get(f"{server.url}/api/v1/health", timeout=30)
        assert health.status_code == 503, health.text
        body = health.json()
        assert body["status"] == "unavailable"
        assert body["parts"]["memory"]["status"] == "failing"
        assert body["parts"]["store"]["status"] == "ok"
        assert body["error"]["type"] == "NotReady" and "memory" in body["error"]["message"]
        assert str(home) not in health.text and "sqlite" not in health.text.lower()
        chat = httpx.post(
            f"{server.url}/api/v1/chat", json={"message": "hi", "thread_id": "t0"}, timeout=60
        )
        assert chat.status_code == 503, chat.text
        assert chat.json()["error"]["type"] == "MemoryUnavailable"
        assert str(home) not in chat.text

        # and the vector store too: both named, nothing internal shown
        recommender.engine.store.close()
        health = httpx.get(f"{server.url}/api/v1/health", timeout=30)
        assert health.status_code == 503
        failing = {n for n, p in health.json()["parts"].items() if p["status"] != "ok"}
        assert failing == {"memory", "store"}
        assert str(home) not in health.text and "chroma" not in health.text.lower()
    finally:
        server.stop()
