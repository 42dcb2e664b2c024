"""The ranking agent's scores: finite everywhere, the learned candidates always on top."""

from __future__ import annotations

import numpy as np

import recagents.agents  # noqa: F401  (registers the built-in roles)
from recagents.agents.base import ITEM, USER
from recagents.agents.registry import registry
from recagents.agents.towers import seed_user_vectors
from tests.agent_fixtures import block_context


def test_non_candidates_get_finite_scores_below_every_candidate():
    """Items outside the ranker's candidates once scored prelim - 1e9; that sentinel reached
    cards ("match score -999999999.09") when a constraint reached past the candidates."""
    context = block_context()
    ranker = registry.create("ranking", {"candidates": 6, "hidden": 8, "epochs": 20})
    peers = {USER: seed_user_vectors(context), ITEM: context.item_text}
    ranker.fit(context, peers)
    users = np.arange(context.n_users)
    scores = ranker.score(users, peers, context.train)
    cands, _, prelim = ranker.features(users, peers, context.train)
    assert np.isfinite(scores).all()
    assert np.abs(scores).max() < 1e3  # the size of learned scores, not of a sentinel
    for user in users:
        inside = np.zeros(context.n_items, dtype=bool)
        inside[cands[user]] = True
        assert scores[user, inside].min() > scores[user, ~inside].max()
        # outside the candidates, the preliminary order is kept
        rest = np.flatnonzero(~inside)
        assert (
            np.argsort(-scores[user, rest], kind="stable")
            == np.argsort(-prelim[user, rest], kind="stable")
        ).all()
