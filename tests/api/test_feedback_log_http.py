"""Live conversations are logged, and a thread can be forgotten (issue 12), over real HTTP
with the real SQLite checkpointer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recagents.config import Settings
from recagents.data.feedback import FeedbackLog
from tests.api.server import LiveServer, block_recommender, json_error


@contextlib.contextmanager
def sqlite_server(home: Path) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """A live server whose threads live in ``home/conversations.sqlite``, as ``serve``'s do."""
    from recagents.ui.app import create_app
    from recagents.ui.facade import open_checkpointer

    checkpointer = open_checkpointer("sqlite", Settings.load(home=home))
    app = create_app(block_recommender(home, checkpointer=checkpointer))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield server, client


def checkpoint_rows(home: Path, thread: str) -> int:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(home / "conversations.sqlite")) as db:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", (thread,)
            ).fetchone()[0]
        )


def test_a_turn_and_a_like_land_in_the_log(tmp_path: Path) -> None:
    with sqlite_server(tmp_path) as (_, http):
        reply = http.post("/api/v1/chat", json={"message": "I loved Film 1", "thread_id": "a"})
        assert reply.status_code == 200, reply.text
        shown = [item["id"] for item in reply.json()["items"]]
        liked = http.post(
            "/api/v1/feedback", json={"thread_id": "a", "item_id": shown[0], "liked": True}
        )
        assert liked.status_code == 200, liked.text
        http.post("/api/v1/feedback", json={"thread_id": "a", "item_id": "i30", "liked": False})
    turn, like, dislike = FeedbackLog.in_home(tmp_path).entries()
    assert (turn.thread_id, turn.source, turn.message) == ("a", "turn", "I loved Film 1")
    assert turn.liked == ("i1",) and list(turn.shown) == shown and turn.catalog == "blocks"
    assert (like.source, like.liked, like.accepted) == ("feedback", (shown[0],), (shown[0],))
    assert (dislike.disliked, dislike.accepted) == (("i30",), ())


def test_a_turn_still_answers_when_the_log_cannot_be_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "feedback" / "log.jsonl").mkdir(parents=True)  # a folder where the file goes
    rec = block_recommender(tmp_path)
    with caplog.at_level(logging.WARNING):
        reply = rec.chat("I loved Film 1", thread_id="a")
    assert reply.items
    assert "entry not written" in caplog.text
    assert rec.state("a")["liked"] == ["i1"]


def test_delete_forgets_the_thread_and_its_log_entries_only(tmp_path: Path) -> None:
    with sqlite_server(tmp_path) as (_, http):
        for thread, message in (("gone", "I loved Film 1"), ("kept", "I loved Film 9")):
            assert (
                http.post(
                    "/api/v1/chat", json={"message": message, "thread_id": thread}
                ).status_code
                == 200
            )
        http.post("/api/v1/feedback", json={"thread_id": "gone", "item_id": "i2", "liked": True})
        http.post("/api/v1/chat", json={"message": "more please", "thread_id": "gone"})
        kept_before = http.get("/api/v1/threads/kept").json()
        assert checkpoint_rows(tmp_path, "gone") > 0

        deleted = http.delete("/api/v1/threads/gone")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"thread_id": "gone", "forgotten": True, "log_entries": 3}

        assert checkpoint_rows(tmp_path, "gone") == 0
        json_error(http.get("/api/v1/threads/gone"), 404)
        assert {e.thread_id for e in FeedbackLog.in_home(tmp_path).entries()} == {"kept"}
        assert http.get("/api/v1/threads/kept").json() == kept_before

        # A new turn on the same id starts fresh: no memory of Film 1 or the like.
        http.post("/api/v1/chat", json={"message": "westerns please", "thread_id": "gone"})
        fresh = http.get("/api/v1/threads/gone").json()
        assert [m["text"] for m in fresh["messages"] if m["role"] == "user"] == ["westerns please"]
        assert fresh["liked"] == []

        assert (
            json_error(http.delete("/api/v1/threads/never-used"), 404)["type"]
            == "UnknownEntityError"
        )
        json_error(http.delete("/api/v1/threads/bad%20id"), 422)


def test_a_forget_that_cannot_rewrite_the_log_forgets_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recagents.data.feedback as feedback

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    with sqlite_server(tmp_path) as (_, http):  # the server runs in this process
        http.post("/api/v1/chat", json={"message": "I loved Film 1", "thread_id": "a"})
        monkeypatch.setattr(feedback.os, "replace", disk_full)
        error = json_error(http.delete("/api/v1/threads/a"), 503)
        monkeypatch.undo()
        assert error["type"] == "RecagentsError"
        assert "a" in [e.thread_id for e in FeedbackLog.in_home(tmp_path).entries()]
        assert http.get("/api/v1/threads/a").json()["liked"] == ["i1"]  # memory kept too
        assert not list((tmp_path / "feedback").glob(".log.jsonl.*"))  # no temporary file left
        assert http.delete("/api/v1/threads/a").status_code == 200  # a retry finishes the job
