"""Nothing lost (issue 11): concurrent writes on one thread all land, a failed turn leaves no
trace, and a long thread's checkpoints stay bounded. Real graph, real ML-100K agents."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from recagents.config import Settings
from recagents.graph.state import THREAD_CAPS
from recagents.ui.facade import Recommender, open_checkpointer
from recagents.ui.threads import LocalThreadLocks

ROOT = Path(__file__).resolve().parents[2]


def run_together(jobs: list[tuple[str, Callable[[], Any]]]) -> list[BaseException]:
    """Start every job at once (a barrier), each in a thread named by its label; join all."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def body(job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(job,), name=name) for name, job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def assert_whole_turns(messages: list[Any]) -> None:
    """The history alternates the person's message and one reply: no orphan, no double."""
    kinds = [type(m) for m in messages]
    assert kinds == [HumanMessage, AIMessage] * (len(messages) // 2), kinds


class RecordingLocks(LocalThreadLocks):
    """The per-thread locks, noting which (named) worker got the thread, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    @contextmanager
    def hold(self, thread_id: str) -> Iterator[None]:
        with super().hold(thread_id):
            self.order.append(threading.current_thread().name)
            yield


def test_ten_turns_and_ten_likes_at_once_all_land(rec) -> None:  # type: ignore[no-untyped-def]
    likes = [str(i) for i in rec.dataset.item_map.ids[100:110]]
    jobs: list[tuple[str, Callable[[], Any]]] = []
    for n in range(10):
        jobs.append((f"turn {n}", lambda n=n: rec.chat(f"comedies please, take {n}", "t")))
        jobs.append((f"like {n}", lambda n=n: rec.feedback("t", likes[n], liked=True)))
    assert run_together(jobs) == []
    state = rec.state("t")
    messages = state["messages"]
    assert_whole_turns(messages)
    asked = [m.content for m in messages if isinstance(m, HumanMessage)]
    assert sorted(asked) == sorted(f"comedies please, take {n}" for n in range(10))
    assert set(likes) <= set(state["liked"])


def test_turns_and_likes_land_in_the_order_they_got_the_thread(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    locks = RecordingLocks()
    rec = Recommender(engine, Settings.load(home=tmp_path), locks=locks)
    likes = [str(i) for i in rec.dataset.item_map.ids[200:210]]
    jobs: list[tuple[str, Callable[[], Any]]] = []
    for n in range(10):
        jobs.append((f"turn {n}", lambda n=n: rec.chat(f"a thriller, take {n}", "t")))
        jobs.append((f"like {n}", lambda n=n: rec.feedback("t", likes[n], liked=True)))
    assert run_together(jobs) == []
    state = rec.state("t")
    turns = [int(name.split()[1]) for name in locks.order if name.startswith("turn")]
    liked = [int(name.split()[1]) for name in locks.order if name.startswith("like")]
    asked = [m.content for m in state["messages"] if isinstance(m, HumanMessage)]
    assert asked == [f"a thriller, take {n}" for n in turns]
    assert [i for i in state["liked"] if i in likes] == [likes[n] for n in liked]
    assert len(locks) == 0  # the lock table keeps no entry for an idle thread


def test_a_like_sent_during_a_turn_survives(rec) -> None:  # type: ignore[no-untyped-def]
    item = str(rec.dataset.item_map.ids[42])
    for attempt in range(3):
        thread_id = f"t{attempt}"
        turn = threading.Thread(target=rec.chat, args=("something like Heat", thread_id))
        turn.start()
        time.sleep(0.01)
        rec.feedback(thread_id, item, liked=True)
        turn.join(60)
        state = rec.state(thread_id)
        assert item in state["liked"], attempt
        assert_whole_turns(state["messages"])


def test_two_turns_at_once_both_land(rec) -> None:  # type: ignore[no-untyped-def]
    for attempt in range(5):
        thread_id = f"pair{attempt}"
        jobs: list[tuple[str, Callable[[], Any]]] = [
            (f"turn {n}", lambda n=n, t=thread_id: rec.chat(f"westerns, take {n}", t))
            for n in (0, 1)
        ]
        assert run_together(jobs) == []
        messages = rec.state(thread_id)["messages"]
        assert len(messages) == 4, attempt
        assert_whole_turns(messages)


def test_a_stream_and_a_like_both_land(rec) -> None:  # type: ignore[no-untyped-def]
    item = str(rec.dataset.item_map.ids[7])
    jobs: list[tuple[str, Callable[[], Any]]] = [
        ("stream", lambda: list(rec.chat_stream("something like Heat", "s"))),
        ("like", lambda: rec.feedback("s", item, liked=True)),
    ]
    assert run_together(jobs) == []
    state = rec.state("s")
    assert item in state["liked"]
    assert_whole_turns(state["messages"])
    assert len(state["messages"]) == 2


# -- a turn commits whole or not at all ----------------------------------------------------------


class FlakyRole:
    """A conversing role (a real plug-in point, run in ``pick`` after the profile was updated)
    that raises while ``down`` is set, as a role whose store went away would."""

    name = "flaky"

    def __init__(self) -> None:
        self.down = False

    def converse(self, ranked: list[dict[str, Any]], state: Any) -> dict[str, Any]:
        if self.down:
            raise RuntimeError("flaky role: store down")
        return {}


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "chat_stream"])
def test_a_failed_turn_leaves_the_thread_as_it_was(engine, tmp_path, streamed) -> None:  # type: ignore[no-untyped-def]
    role = FlakyRole()
    settings = Settings.load(home=tmp_path)
    rec = Recommender(
        engine, settings, checkpointer=open_checkpointer("sqlite", settings), roles=[role]
    )

    def turn(message: str) -> Any:
        if streamed:
            return list(rec.chat_stream(message, "t"))[-1][1]
        return rec.chat(message, "t")

    turn("something like Heat")
    before = rec.state("t")
    role.down = True
    with pytest.raises(RuntimeError, match="store down"):
        turn("I loved Toy Story, something like it")  # update_profile runs, then pick fails
    after = rec.state("t")
    assert [m.content for m in after["messages"]] == [m.content for m in before["messages"]]
    assert after.get("liked") == before.get("liked")
    assert after.get("shown") == before.get("shown")
    role.down = False
    reply = turn("I loved Toy Story, something like it")
    assert reply.items
    state = rec.state("t")
    assert len(state["messages"]) == 4
    assert_whole_turns(state["messages"])


def test_an_abandoned_stream_leaves_the_thread_as_it_was(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.api.server import phrasing_model

    rec = Recommender(engine, Settings.load(home=tmp_path), chat_model=phrasing_model())
    rec.chat("something like Heat", "t")
    before = rec.state("t")
    turns = rec.chat_stream("I loved Toy Story, something like it", "t")
    kind, _draft = next(turns)
    assert kind == "draft"
    turns.close()  # the client went away mid-turn
    after = rec.state("t")
    assert [m.content for m in after["messages"]] == [m.content for m in before["messages"]]
    assert after.get("liked") == before.get("liked")
    rec.feedback("t", str(rec.dataset.item_map.ids[3]), liked=True)  # the thread is free again


KILLED_TURN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from recagents.config import Settings
    from recagents.ui.facade import Recommender, open_checkpointer
    from tests.api.server import block_engine

    home, marker = Path(sys.argv[1]), Path(sys.argv[2])

    class Stall:
        name = "stall"
        calls = 0
        def converse(self, ranked, state):
            self.calls += 1
            if self.calls == 2:  # the second turn: halfway (profile updated), then hang
                marker.write_text("mid-turn")
                time.sleep(600)
            return {}

    settings = Settings.load(home=home)
    rec = Recommender(block_engine(), settings, checkpointer=open_checkpointer("sqlite", settings),
                      roles=[Stall()])
    rec.chat("I loved Film 1, something like it", "t")
    rec.chat("I loved Film 9, something like it", "t")
    """
)


def test_kill_9_mid_turn_leaves_the_last_whole_turn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from langgraph.checkpoint.sqlite import SqliteSaver

    home, marker = tmp_path / "home", tmp_path / "mid-turn"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "child.log").open("w")
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_TURN, str(home), str(marker)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), (tmp_path / "child.log").read_text()[-3000:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
        log.close()
    saver = SqliteSaver(sqlite3.connect(str(home / "conversations.sqlite")))
    saved = saver.get_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": ""}})
    assert saved is not None
    values = saved.checkpoint["channel_values"]
    assert [m.content for m in values["messages"]] == [
        "I loved Film 1, something like it",
        values["messages"][1].content,
    ]
    assert isinstance(values["messages"][1], AIMessage)
    assert values["liked"] == ["i1"]  # not i9: the killed turn's profile update is not kept


# -- bounded growth ------------------------------------------------------------------------------


def test_a_long_thread_keeps_its_checkpoints_and_state_bounded(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.load(home=tmp_path)
    rec = Recommender(engine, settings, checkpointer=open_checkpointer("sqlite", settings))
    db = sqlite3.connect(str(tmp_path / "conversations.sqlite"))
    sizes: dict[int, int] = {}
    rows: dict[int, int] = {}
    for n in range(1, 241):
        rec.chat("recommend me a movie" if n % 2 else "more like that", "long")
        if n in (120, 240):
            rows[n] = sum(
                db.execute(f"SELECT COUNT(*) FROM {t} WHERE thread_id = 'long'").fetchone()[0]
                for t in ("checkpoints", "writes")
            )
            sizes[n] = len(pickle.dumps(rec.state("long")))
    state = rec.state("long")
    assert len(state["messages"]) == THREAD_CAPS.messages
    assert_whole_turns(state["messages"])
    assert state["messages"][-2].content == "more like that"  # the latest turns are the ones kept
    assert len(state["shown"]) <= THREAD_CAPS.shown
    assert rows[240] <= rows[120] <= 2 * THREAD_CAPS.checkpoints
    assert sizes[240] <= 1.1 * sizes[120], sizes


def test_memory_threads_are_pruned_too(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    saver = InMemorySaver()
    rec = Recommender(engine, Settings.load(home=tmp_path), checkpointer=saver)
    for n in range(6):
        rec.chat(f"comedies, take {n}", "m")
        rec.feedback("m", str(rec.dataset.item_map.ids[n]), liked=True)
    assert len(saver.storage["m"][""]) <= THREAD_CAPS.checkpoints
    assert len(rec.state("m")["messages"]) == 12
    assert len(rec.state("m")["liked"]) >= 6
