"""An agent role defined outside the recagents package, as a third party would write it.

It publishes "item" vectors of its own kind (a smoothed popularity direction) and counts the rounds
it was called in; the tests check it joins the rounds through the registry alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recagents.agents.base import ITEM, USER, Agent, TrainContext


class PopularityScout(Agent):
    name = "popularity_scout"
    publishes = None
    consumes = (USER, ITEM)

    def setup(self, context: TrainContext) -> None:
        self.context = context
        self.counts = np.zeros(context.n_items, dtype=np.float32)
        self.seen_peers: list[set[str]] = []
        self.rounds_trained = 0

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        self.seen_peers.append(set(peers))
        self.counts = np.asarray(context.fit.sum(axis=0), dtype=np.float32).ravel()
        self.rounds_trained += 1
        # What it read from the store goes in the round's metrics: they outlive a restore.
        return {"loss": 0.0, "items": int((self.counts > 0).sum()), "peers": sorted(peers)}

    def converse(self, ranked: list[dict], state: Mapping) -> dict:
        """Takes part in each chat turn: flags the most popular of the picks."""
        index = self.context.dataset.item_map.index
        popular = max(ranked, key=lambda r: self.counts[index(r["item_id"])])
        return {"most_popular": popular["item_id"]}

    def state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        self.setup(context)
        self.counts = np.array(arrays["counts"])
