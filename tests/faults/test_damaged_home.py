"""``recagents serve`` over a home whose files were truncated, scrambled or killed mid-write.

Each test damages a copy of a trained home for real and starts the real server process on it.
What must hold: a damaged file is found at start and either replaced by a good copy (with one
log line saying so) or the server refuses in one line naming the file and the fix; never a
traceback, never a server that says "ok" and then answers chats with a 500.

Before these checks existed: a truncated ``conversations.sqlite``, a cut ``metrics.json`` and a
truncated ``*.safetensors`` each stopped the server with a raw traceback (the last one naming no
file), scrambled conversation pages let it start and answer every chat with a 500, and scrambled
ChromaDB pages stopped it (the store it could have rebuilt).
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.faults.conftest import (
    rounds,
    run_dir,
    scramble_pages,
    truncate,
)

pytestmark = pytest.mark.slow


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _chat_works(url: str, thread: str = "t0") -> None:
    """A turn in a saved thread is answered, and the thread kept its earlier turns."""
    reply = httpx.post(
        f"{url}/api/v1/chat",
        json={"message": "I loved Drama Story 2", "thread_id": thread},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["items"]
    saved = httpx.get(f"{url}/api/v1/threads/{thread}", timeout=30)
    assert saved.status_code == 200, saved.text
    assert len(saved.json()["messages"]) >= 2


def _all_parts_ok(health: httpx.Response) -> None:
    body = health.json()
    assert body["status"] == "ok"
    assert {name for name in body["parts"]} >= {"agents", "store", "memory", "chat_model"}
    assert all(part["status"] == "ok" for part in body["parts"].values()), body["parts"]


@pytest.mark.parametrize("damage", ["truncated", "scrambled"])
def test_damaged_conversations_refuse_in_one_line(home, serve, damage) -> None:  # type: ignore[no-untyped-def]
    db = home / "conversations.sqlite"
    if damage == "truncated":
        truncate(db)
    else:
        scramble_pages(db)
    damaged = db.read_bytes()

    served = serve(home)
    code = served.wait_exit()
    output = served.output()
    assert code == 2, output[-3000:]
    assert "Traceback" not in output
    lines = _error_lines(output)
    assert len(lines) == 1, output[-3000:]
    assert "conversations.sqlite is corrupt (" in lines[0]
    assert "move it aside" in lines[0] and "restore it from a backup" in lines[0]
    # people's threads are not ours to repair: the file is left exactly as it was found
    assert db.read_bytes() == damaged
    assert not list(home.glob("conversations.sqlite.damaged-*"))


def test_scrambled_vector_store_is_rebuilt_from_the_weights(home, serve) -> None:  # type: ignore[no-untyped-def]
    scramble_pages(home / "chroma" / "chroma.sqlite3")

    served = serve(home)
    health = served.wait_ready()
    output = served.output()
    assert health is not None, output[-3000:]
    assert "Traceback" not in output
    assert "chroma.sqlite3 is corrupt" in output and "rebuilding it from the agents'" in output
    _all_parts_ok(health)
    _chat_works(served.url)
    # the damaged folder is kept for whoever wants to look, and a fresh one serves
    assert len(list(home.glob("chroma.damaged-*"))) == 1
    assert (home / "chroma" / "chroma.sqlite3").exists()


def test_cut_metrics_json_is_restored_from_the_last_good_round(home, serve) -> None:  # type: ignore[no-untyped-def]
    metrics = run_dir(home) / "metrics.json"
    recorded = [r["round"] for r in json.loads(metrics.read_text())["rounds"]]
    truncate(metrics)

    served = serve(home)
    health = served.wait_ready()
    output = served.output()
    assert health is not None, output[-3000:]
    assert "Traceback" not in output
    assert "metrics.json is damaged (not valid JSON" in output
    assert f"restored it from round {recorded[-1]}, the last good round" in output
    _all_parts_ok(health)
    _chat_works(served.url)
    # a run history again, each round once, and the damaged file kept next to it
    again = [r["round"] for r in json.loads(metrics.read_text())["rounds"]]
    assert again == recorded
    assert len(list(run_dir(home).glob("metrics.json.damaged-*"))) == 1


def test_truncated_weights_fall_back_to_the_last_good_round(home, serve) -> None:  # type: ignore[no-untyped-def]
    finished = rounds(home)
    last = finished[-1]
    truncate(last / "item.safetensors")

    served = serve(home)
    health = served.wait_ready()
    output = served.output()
    assert health is not None, output[-3000:]
    assert "Traceback" not in output
    # the file is named, and so is the round it falls back to
    assert f"{last.name}/item.safetensors does not match its checksum" in output
    assert f"falling back to round {int(finished[-2].name.split('-')[1])}" in output
    _all_parts_ok(health)
    _chat_works(served.url)
    assert list(run_dir(home).glob(f"damaged-*/{last.name}/item.safetensors"))


def test_killed_server_restarts_with_every_saved_turn(home, serve) -> None:  # type: ignore[no-untyped-def]
    """kill -9 right after a turn (journal not checkpointed): the check at start reads the
    journal too, says nothing is wrong, and the turn is there after the restart."""
    served = serve(home)
    assert served.wait_ready() is not None, served.output()[-3000:]
    said = "I loved Western Story 25"
    reply = httpx.post(
        f"{served.url}/api/v1/chat", json={"message": said, "thread_id": "killed"}, timeout=120
    )
    assert reply.status_code == 200, reply.text
    served.kill()
    assert (home / "conversations.sqlite-wal").exists()  # the turn is in the journal only

    again = serve(home)
    health = again.wait_ready()
    output = again.output()
    assert health is not None, output[-3000:]
    assert "Traceback" not in output and "corrupt" not in output and "damaged" not in output
    _all_parts_ok(health)
    thread = httpx.get(f"{again.url}/api/v1/threads/killed", timeout=30).json()
    assert [m["text"] for m in thread["messages"] if m["role"] == "user"] == [said]


def test_cut_dataset_meta_refuses_in_one_line(home, serve) -> None:  # type: ignore[no-untyped-def]
    """Before: a JSONDecodeError traceback from the dataset loader."""
    truncate(home / "datasets" / "blocks" / "meta.json")
    served = serve(home)
    code = served.wait_exit()
    output = served.output()
    assert code == 2, output[-3000:]
    assert "Traceback" not in output
    lines = _error_lines(output)
    assert len(lines) == 1 and "meta.json is damaged (" in lines[0], output[-3000:]
    assert "run `recagents ingest` again" in lines[0]
