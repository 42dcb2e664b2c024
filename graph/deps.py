"""What the conversation's nodes share: the live objects bound when the graph is built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AnyMessage

from recagents.agents.base import ConversingRole
from recagents.agents.trainer import ProfileScores
from recagents.data import Dataset
from recagents.graph.context import MAX_MESSAGE_CHARS
from recagents.graph.engine import Engine
from recagents.graph.state import ConversationState
from recagents.graph.understand import IntentParser
from recagents.vectorstore.base import EmbeddingStore


@dataclass
class GraphDeps:
    """Live objects the nodes use; bound once when the graph is built.

    Attributes:
        engine: The serving engine over a finished run.
        parser: Deterministic turn parser.
        chat_model: LangChain chat model for phrasing (and understanding when capable), or None.
        structured_understanding: Ask the chat model for structured intents (remote models);
            the small embedded model only phrases explanations.
        roles: Extra registered roles that take part in the conversation (they implement
            ``converse(recommendations, state) -> dict``).
    """

    engine: Engine
    parser: IntentParser
    chat_model: Any = None
    structured_understanding: bool = False
    roles: list[ConversingRole] = field(default_factory=list)

    @property
    def dataset(self) -> Dataset:
        """The catalog."""
        return self.engine.dataset

    @property
    def store(self) -> EmbeddingStore:
        """The vector store the agents published to."""
        return self.engine.store

    @property
    def item_collection(self) -> str:
        """The item agent's final (serving) collection."""
        return self.engine.item_collection


def message_text(message: AnyMessage | Any) -> str:
    """Plain text of a message whatever its content shape, capped in length."""
    content = getattr(message, "content", message)
    if isinstance(content, list):
        content = " ".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content or "")[:MAX_MESSAGE_CHARS]


def unique(values: Sequence[str]) -> list[str]:
    """The values in first-seen order, without repeats."""
    return list(dict.fromkeys(values))


def profile_for(deps: GraphDeps, state: ConversationState) -> ProfileScores:
    """Every item's score for this thread's user, liked items and anchors, under its constraints.

    The constraints matter only to a short profile whose every film they exclude (see
    :meth:`recagents.graph.engine.Engine.profile_scores`); "why?" passes through here too, so it
    explains the order that was shown.
    """
    liked = unique([*(state.get("liked") or []), *(state.get("anchors") or [])])
    return deps.engine.profile_scores(
        state.get("user_id"), liked, constraints=state.get("constraints") or None
    )
