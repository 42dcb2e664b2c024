"""Nothing lost over HTTP (issue 11): concurrent turns and likes on one thread all land, and a
stream the client abandons leaves the thread as it was and free for the next request."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.api.server import block_server, phrasing_model


def _thread() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_ten_turns_and_ten_likes_at_once_all_land(api_server) -> None:  # type: ignore[no-untyped-def]
    thread = _thread()
    likes = [f"i{n}" for n in range(10, 20)]

    def send(n: int) -> int:
        with httpx.Client(base_url=api_server.url, timeout=120) as client:
            if n % 2 == 0:
                body: dict[str, Any] = {"message": f"westerns please, take {n // 2}"}
                response = client.post("/api/v1/chat", json={**body, "thread_id": thread})
            else:
                response = client.post(
                    "/api/v1/feedback",
                    json={"thread_id": thread, "item_id": likes[n // 2], "liked": True},
                )
            return response.status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(send, range(20))) == [200] * 20
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        view = client.get(f"/api/v1/threads/{thread}").json()
    roles = [m["role"] for m in view["messages"]]
    assert roles == ["user", "assistant"] * 10
    asked = sorted(m["text"] for m in view["messages"] if m["role"] == "user")
    assert asked == sorted(f"westerns please, take {n}" for n in range(10))
    assert set(likes) <= set(view["liked"])


def test_a_like_sent_during_a_turn_survives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A chat model that takes half a second, as a real one takes longer: the like arrives
    # while the turn is running, which is when it used to be overwritten.
    with (
        block_server(tmp_path, chat_model=phrasing_model(delay_s=0.5)) as server,
        httpx.Client(base_url=server.url, timeout=120) as a,
        httpx.Client(base_url=server.url, timeout=120) as b,
        ThreadPoolExecutor(1) as pool,
    ):
        for _ in range(3):
            thread = _thread()
            turn = pool.submit(
                a.post, "/api/v1/chat", json={"message": "I loved Film 1", "thread_id": thread}
            )
            time.sleep(0.01)
            like = b.post(
                "/api/v1/feedback", json={"thread_id": thread, "item_id": "i3", "liked": True}
            )
            assert like.status_code == 200 and turn.result().status_code == 200
            view = a.get(f"/api/v1/threads/{thread}").json()
            assert "i3" in view["liked"]
            assert [m["role"] for m in view["messages"]] == ["user", "assistant"]


def test_an_abandoned_stream_rolls_back_and_frees_the_thread(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with (
        block_server(tmp_path, chat_model=phrasing_model(delay_s=1.5)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        thread = _thread()
        first = client.post("/api/v1/chat", json={"message": "I loved Film 1", "thread_id": thread})
        assert first.status_code == 200
        with client.stream(
            "POST", "/api/v1/chat/stream", json={"message": "I loved Film 9", "thread_id": thread}
        ) as response:
            lines = response.iter_lines()
            assert next(lines) == "event: draft"  # the picks are out; the model is still phrasing
        # The client is gone. The turn is undone (no message without a reply, no i9 liked),
        # and the thread is free: a like is served, not kept waiting behind the dead stream.
        deadline = time.monotonic() + 20
        while True:
            view = client.get(f"/api/v1/threads/{thread}").json()
            like = client.post(
                "/api/v1/feedback", json={"thread_id": thread, "item_id": "i3", "liked": True}
            )
            if len(view["messages"]) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert like.status_code == 200
        assert [m["role"] for m in view["messages"]] == ["user", "assistant"]
        assert "i9" not in view["liked"]


def _patient_model(steps: int, step_s: float) -> Any:
    """A scripted model that writes one "token" per ``step_s`` and, like the embedded one, reads
    its call's :class:`~recagents.graph.generation.CallControl` between tokens."""
    import itertools

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from recagents.graph.generation import current_call
    from tests.api.server import PHRASING

    class Patient(GenericFakeChatModel):
        supports_prefill: bool = True
        seen: dict[str, Any] = {}

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            control = current_call()
            self.seen.update(tokens=0, cancelled=False, controlled=control is not None)
            for _ in range(steps):
                if control is not None and control.cancelled:
                    self.seen["cancelled"] = True
                    break
                time.sleep(step_s)
                self.seen["tokens"] += 1
            self.seen["done"] = True
            return super()._generate(*args, **kwargs)

    return Patient(messages=itertools.repeat(AIMessage(PHRASING)))


def test_a_client_that_hangs_up_cancels_the_model_work_and_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 11: "cancel work whose caller is gone" for a plain (not streamed) chat turn."""
    model = _patient_model(steps=200, step_s=0.05)  # 10 s of phrasing if nobody stops it
    with (
        block_server(tmp_path, chat_model=model) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        thread = _thread()
        try:
            httpx.post(
                f"{server.url}/api/v1/chat",
                json={"message": "I loved Film 1", "thread_id": thread},
                timeout=1.0,
            )
            raise AssertionError("the turn answered within 1 s; the model was meant to be slow")
        except httpx.TimeoutException:
            pass  # the client hangs up
        deadline = time.monotonic() + 20
        while not model.seen.get("done") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert model.seen.get("controlled"), model.seen
        assert model.seen.get("cancelled") and model.seen["tokens"] < 100, model.seen
        # The turn itself committed with the template reasons: nothing lost, nothing half done.
        view = client.get(f"/api/v1/threads/{thread}").json()
        assert [m["role"] for m in view["messages"]] == ["user", "assistant"]
        like = client.post(
            "/api/v1/feedback", json={"thread_id": thread, "item_id": "i3", "liked": True}
        )
        assert like.status_code == 200  # and the thread is free
