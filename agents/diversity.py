"""Example role: a diversity re-ranker (maximal marginal relevance over the item agent's vectors).

Shipped as the worked example of adding a role; it is *not* registered by default. Enable it in
your own code with ``registry.register(DiversityReranker)`` or from a package's entry point::

    [project.entry-points."recagents.agents"]
    diversity = "recagents.agents.diversity:DiversityReranker"

In the training rounds it reads the item agent's published vectors from the store and learns
nothing else; in the conversation its ``converse`` hook reorders the ranking agent's picks so the
list does not show five near-copies of one film.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recagents.agents.base import ITEM, Agent, AgentConfig, TrainContext


class DiversityReranker(Agent):
    """Re-rank with MMR: score - lambda * max cosine to the items already picked."""

    name = "diversity"
    order = 100  # after the ranking agent
    consumes = (ITEM,)

    @classmethod
    def default_config(cls) -> AgentConfig:
        """``trade_off`` is MMR's lambda: 0 keeps the ranking, 1 favours variety."""
        return AgentConfig(epochs=0, options={"trade_off": 0.3})

    def setup(self, context: TrainContext) -> None:
        """Start from the text embeddings until the item agent publishes vectors."""
        self.context = context
        self.item_vectors = context.item_text.astype(np.float32).copy()
        self.rounds_trained = 0

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Take the item agent's latest vectors (read from the store by the coordinator)."""
        if ITEM in peers:
            self.item_vectors = np.asarray(peers[ITEM], dtype=np.float32).copy()
        self.rounds_trained += 1
        return {"loss": 0.0}

    def converse(self, ranked: list[dict[str, Any]], state: Mapping[str, Any]) -> dict[str, Any]:
        """Reorder the conversation's recommendations by maximal marginal relevance."""
        assert self.context is not None
        if len(ranked) < 3:
            return {"ranked": ranked}
        index = self.context.dataset.item_map.index
        vectors = self.item_vectors[[index(r["item_id"]) for r in ranked]]
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        scores = np.array([float(r["score"]) for r in ranked])
        scores = (scores - scores.min()) / (np.ptp(scores) or 1.0)
        trade_off = float(self.config.options.get("trade_off", 0.3))
        chosen = [0]
        rest = list(range(1, len(ranked)))
        while rest:
            similarity = (vectors[rest] @ vectors[chosen].T).max(axis=1)
            mmr = (1 - trade_off) * scores[rest] - trade_off * similarity
            chosen.append(rest.pop(int(np.argmax(mmr))))
        moved = sum(1 for pos, i in enumerate(chosen) if pos != i)
        return {"ranked": [ranked[i] for i in chosen], "moved": moved}

    def state(self) -> dict[str, np.ndarray]:
        """The item vectors it last read."""
        return {"item_vectors": self.item_vectors}

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore the item vectors."""
        self.setup(context)
        self.item_vectors = np.array(arrays["item_vectors"])
