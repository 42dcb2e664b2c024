"""A registered, opt-in role: a diversity re-ranker (maximal marginal relevance, MMR).

It is the worked example of adding a role. It is registered (``registry.names()`` lists it and the
contract suite runs it) but opt-in: a run trains it only when it names it (``--roles
user_profile,item,ranking,diversity``, or ``roles=[...]``), so the default roles and their figures
do not change.

In the training rounds it reads the users' and items' latest vectors from the store and learns how
much variety the hold-out tolerates: for each trade-off on a grid it re-ranks the towers'
candidates by MMR and measures hold-out recall, then keeps the largest trade-off whose recall stays
within ``tolerance`` of the plain ranking's. In the conversation its ``converse`` hook reorders the
ranking agent's picks with that trade-off, so the list does not show five near-copies of one film.

Options: ``trade_off`` (MMR's lambda before tuning, or for good with ``tune = false``), ``tune``,
``tolerance`` (share of hold-out recall it may give up), ``candidates`` and ``k`` (list sizes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recagents.agents.base import ITEM, ITEM_BIAS, USER, Agent, AgentConfig, TrainContext
from recagents.agents.registry import register
from recagents.agents.towers import seed_user_vectors, tower_scores
from recagents.eval.metrics import top_k

#: Trade-offs tried on the hold-out, from the plain ranking (0) to mostly variety.
TRADE_OFFS = np.round(np.linspace(0.0, 0.9, 10), 2)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)


def mmr_order(scores: np.ndarray, unit: np.ndarray, trade_off: float, k: int) -> np.ndarray:
    """Maximal marginal relevance over lists, batched: positions picked, in order.

    Args:
        scores: ``lists x C`` relevance, each row scaled to ``[0, 1]``; position 0 is kept first.
        unit: ``lists x C x d`` unit vectors of the candidates.
        trade_off: 0 keeps the ranking, 1 picks by variety alone.
        k: How many to pick (at most ``C``).

    Returns:
        ``lists x k`` positions: each step takes the candidate with the best
        ``(1 - trade_off) * score - trade_off * max cosine to those already picked``
        (the first such position on ties).
    """
    n_lists, n_cand = scores.shape
    k = min(k, n_cand)
    rows = np.arange(n_lists)
    similarity = np.einsum("ucd,ued->uce", unit, unit)
    chosen = np.zeros((n_lists, k), dtype=np.int64)
    taken = np.zeros((n_lists, n_cand), dtype=bool)
    taken[:, 0] = True
    closest = similarity[:, :, 0].copy()
    for step in range(1, k):
        gain = (1 - trade_off) * scores - trade_off * closest
        gain[taken] = -np.inf
        pick = np.argmax(gain, axis=1)
        chosen[:, step] = pick
        taken[rows, pick] = True
        closest = np.maximum(closest, similarity[rows, :, pick])
    return chosen


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Each row to ``[0, 1]`` (a constant row becomes zeros)."""
    low = scores.min(axis=-1, keepdims=True)
    spread = np.ptp(scores, axis=-1, keepdims=True)
    return (scores - low) / np.where(spread > 0, spread, 1.0)


@register
class DiversityReranker(Agent):
    """Re-rank with MMR: score - lambda * max cosine to the items already picked."""

    name = "diversity"
    order = 100  # after the ranking agent
    consumes = (USER, ITEM)
    opt_in = True

    @classmethod
    def default_config(cls) -> AgentConfig:
        """Give up at most 5% of hold-out recall@10 for variety, among 30 candidates."""
        return AgentConfig(
            epochs=0,
            options={"trade_off": 0.3, "tune": True, "tolerance": 0.05, "candidates": 30, "k": 10},
        )

    def setup(self, context: TrainContext) -> None:
        """Text embeddings and the configured trade-off, until the rounds say otherwise."""
        self.context = context
        self.item_vectors = context.item_text.astype(np.float32).copy()
        self.trade_off = float(self.config.options.get("trade_off", 0.3))
        self.holdout_recall = np.zeros(len(TRADE_OFFS), dtype=np.float64)
        self.rounds_trained = 0

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Take the latest item vectors, measure hold-out recall per trade-off, keep the best.

        The candidates are the towers' top unseen items (the peers' user x item scores on
        ``fit``); recall is of the hold-out items within the first ``k`` after MMR.
        """
        if ITEM in peers:
            self.item_vectors = np.asarray(peers[ITEM], dtype=np.float32).copy()
        users = np.flatnonzero(np.diff(context.holdout.indptr))
        if len(users):
            self.holdout_recall = self._recall_per_trade_off(context, peers, users)
        if self.config.options.get("tune", True) and len(users):
            floor = (1 - float(self.config.options.get("tolerance", 0.05))) * self.holdout_recall[0]
            self.trade_off = float(TRADE_OFFS[np.flatnonzero(self.holdout_recall >= floor)[-1]])
        self.rounds_trained += 1
        return {
            "loss": 0.0,
            "trade_off": self.trade_off,
            "holdout_recall": [round(float(r), 4) for r in self.holdout_recall],
        }

    def _recall_per_trade_off(
        self, context: TrainContext, peers: Mapping[str, np.ndarray], users: np.ndarray
    ) -> np.ndarray:
        user_vectors = peers.get(USER)
        if user_vectors is None:
            user_vectors = seed_user_vectors(context)
        scores = tower_scores(user_vectors[users], self.item_vectors, peers.get(ITEM_BIAS))
        scores = np.where(context.fit[users].toarray() > 0, -np.inf, scores)
        unseen = int(np.isfinite(scores).sum(axis=1).min())  # candidates are never seen items
        n_cand = max(1, min(int(self.config.options.get("candidates", 30)), unseen))
        cands = top_k(scores, n_cand)
        relevance = _scaled(np.take_along_axis(scores, cands, axis=1))
        unit = _unit(self.item_vectors)[cands]
        held = context.holdout[users]
        hits_of = np.asarray(held[np.arange(len(users))[:, None], cands].todense()) > 0
        total = np.maximum(np.asarray(held.sum(axis=1)).ravel(), 1.0)
        k = int(self.config.options.get("k", 10))
        recall = []
        for trade_off in TRADE_OFFS:
            picked = mmr_order(relevance, unit, float(trade_off), k)
            hits = np.take_along_axis(hits_of, picked, axis=1).sum(axis=1)
            recall.append(float(np.mean(hits / total)))
        return np.array(recall)

    def converse(self, ranked: list[dict[str, Any]], state: Mapping[str, Any]) -> dict[str, Any]:
        """Reorder the conversation's recommendations by maximal marginal relevance.

        Returns the same items (a permutation, the top pick first) and how many changed place.
        """
        assert self.context is not None
        if len(ranked) < 3:
            return {"ranked": ranked}
        index = self.context.dataset.item_map.index
        unit = _unit(self.item_vectors[[index(r["item_id"]) for r in ranked]])
        scores = _scaled(np.array([float(r["score"]) for r in ranked]))
        chosen = mmr_order(scores[None, :], unit[None], self.trade_off, len(ranked))[0]
        moved = sum(1 for pos, i in enumerate(chosen) if pos != i)
        return {"ranked": [ranked[i] for i in chosen], "moved": moved}

    def state(self) -> dict[str, np.ndarray]:
        """The item vectors it last read, its trade-off and the hold-out recall behind it."""
        return {
            "item_vectors": self.item_vectors,
            "trade_off": np.array([self.trade_off]),
            "holdout_recall": self.holdout_recall,
        }

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state` saved."""
        self.setup(context)
        self.item_vectors = np.array(arrays["item_vectors"])
        self.trade_off = float(np.asarray(arrays["trade_off"])[0])
        self.holdout_recall = np.array(arrays["holdout_recall"])
