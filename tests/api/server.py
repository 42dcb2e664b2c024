"""A real server on a free loopback port around the fast block-catalog recommender.

Shared by the API, gradio_client and browser tests: the agents are trained once per session on
the 32-film block catalog (films "Film 0".."Film 31", ids "i0".."i31", users "u0".."u31";
genres by block of 8: Drama, Comedy, Horror, Western), so every test knows the right answer.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from tests.support.server import BackgroundServer as LiveServer  # noqa: F401  (the tests' name)

BLOCK_GENRES = ("Drama", "Comedy", "Horror", "Western")


def block_of(item_id: str) -> int:
    """Block (0..3) of an item id ``i<n>``."""
    return int(item_id[1:]) // 8


@functools.cache
def block_engine(max_rounds: int = 2) -> Any:
    """Agents trained on the block catalog (a few seconds; cached per session)."""
    import recagents.agents  # noqa: F401  (registers the built-in roles)
    from recagents.agents.rounds import Coordinator
    from recagents.agents.trainer import TrainedAgents
    from recagents.vectorstore.memory import InMemoryStore
    from tests.agent_fixtures import block_context
    from tests.support.registries import isolated_registry

    context = block_context()
    coordinator = Coordinator(
        context,
        InMemoryStore(),
        namespace=f"srv{max_rounds}",
        registry=isolated_registry(),
        max_rounds=max_rounds,
        patience=2,
        progress=False,
    )
    return TrainedAgents(coordinator, coordinator.run(), context, 0.0)


#: What :func:`phrasing_model` continues every opening with: passes every check of the reply.
PHRASING = " it shares the same kind of mix, with the same tone as the films you liked."


def phrasing_model(delay_s: float = 0.0, token_delay_s: float = 0.0) -> Any:
    """A scripted chat model that continues the prefilled opening like the local SmolLM2.

    ``delay_s`` stands in for the seconds a real model takes, so a test can see the draft
    arrive before the phrasing; ``token_delay_s`` is the pause after each streamed word (the
    model streams word by word when a caller listens for tokens, as the local one does).
    """
    import itertools

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class Phraser(GenericFakeChatModel):
        supports_prefill: bool = True
        delay: float = 0.0

        token_delay: float = 0.0

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            time.sleep(self.delay)
            return super()._generate(*args, **kwargs)

        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            for chunk in super()._stream(*args, **kwargs):
                yield chunk
                time.sleep(self.token_delay)

    return Phraser(
        messages=itertools.repeat(AIMessage(PHRASING)), delay=delay_s, token_delay=token_delay_s
    )


def block_recommender(home: Path, checkpointer: Any = None, chat_model: Any = None) -> Any:
    """A :class:`Recommender` over the block engine with in-memory threads."""
    from recagents.config import Settings
    from recagents.ui.facade import Recommender

    return Recommender(
        block_engine(),
        Settings.load(home=home),
        chat_model=chat_model,
        checkpointer=checkpointer if checkpointer is not None else InMemorySaver(),
    )


@contextlib.contextmanager
def block_server(
    home: Path, *, chat_model: Any = None, auth_token: str | None = None
) -> Iterator[LiveServer]:
    """A live server around a fresh :func:`block_recommender` app (no trainer)."""
    from recagents.ui.app import create_app

    app = create_app(block_recommender(home, chat_model=chat_model), auth_token=auth_token)
    with LiveServer(app) as server:
        yield server


def block_trainer(home: Path, checkpointer: Any) -> Callable[[Callable[[float, str], None]], Any]:
    """A fast trainer for the UI's "train" button: one round on the block catalog."""

    def train(progress: Callable[[float, str], None]) -> Any:
        from recagents.config import Settings
        from recagents.ui.facade import Recommender

        progress(0.1, "training one round on the block catalog")
        engine = block_engine(1)
        progress(0.9, "loading the new model")
        return Recommender(engine, Settings.load(home=home), checkpointer=checkpointer)

    return train


def json_error(response: Any, status: int) -> dict:
    """The ``error`` object of a JSON error answer, checked for the shape every error has."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] and body["error"]["message"]
    return body["error"]
