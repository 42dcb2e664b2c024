"""The ranking agent's sparse history model (issue 13): used past the item limit, never below."""

from __future__ import annotations

import numpy as np
import pytest

import recagents.agents  # noqa: F401  (registers the built-in roles)
from recagents.agents.base import ITEM, USER
from recagents.agents.registry import registry
from recagents.agents.towers import seed_user_vectors
from recagents.errors import ConfigError
from recagents.eval.baselines import cosine_topk, knn_weights
from tests.agent_fixtures import block_context


def test_blocked_knn_weights_equal_the_dense_reference():
    """``knn_weights`` (blocked, sparse) keeps what ``cosine_topk`` (dense) keeps, transposed."""
    rng = np.random.default_rng(0)
    import scipy.sparse as sp

    matrix = sp.csr_matrix((rng.random((60, 25)) < 0.2).astype(np.float32))
    ours = knn_weights(matrix, k=5, shrink=0.0, block=7).toarray()
    reference = cosine_topk(matrix, 5, 0.0).T.toarray()
    # ties at the k-th neighbour may keep a different item; compare where both kept one
    both = (ours != 0) & (reference != 0)
    assert both.sum() >= 0.9 * (reference != 0).sum()
    assert np.allclose(ours[both], reference[both], atol=1e-5)


def test_below_the_limit_the_history_model_stays_dense_ease():
    ranker = registry.create("ranking")
    ranker.setup(block_context())
    assert isinstance(ranker.item_item, np.ndarray)


@pytest.mark.parametrize("options", [{"item_item": "sparse"}, {"dense_items": 10}])
def test_past_the_limit_it_is_sparse_ranks_the_block_and_round_trips(tmp_path, options):
    import scipy.sparse as sp

    context = block_context()
    ranker = registry.create("ranking", {**options, "knn_k": 6, "hidden": 8, "epochs": 20})
    peers = {USER: seed_user_vectors(context), ITEM: context.item_text}
    ranker.fit(context, peers)
    assert sp.issparse(ranker.item_item)
    users = np.arange(context.n_users)
    scores = ranker.score(users, peers, context.train)
    assert np.isfinite(scores).all()
    # the known answer: the valid item (rest of the user's block) is ranked first
    valid = context.valid.toarray()
    masked = np.where(context.train.toarray() > 0, -np.inf, scores)
    assert (valid[users, masked.argmax(1)] == 1).mean() > 0.9
    ranker.save(tmp_path)
    again = registry.create("ranking", options)
    again.load(tmp_path, context)
    assert sp.issparse(again.item_item)
    assert np.allclose(again.score(users, peers, context.train), scores)
    evidence = again.explain(context.train[0].indices, 3, None, peers)
    assert evidence.because_of  # the same block: neighbours of item 3


def test_an_unknown_history_form_is_refused():
    ranker = registry.create("ranking", {"item_item": "approximate"})
    with pytest.raises(ConfigError, match="item_item"):
        ranker.setup(block_context())


def test_a_holdout_cap_trains_on_the_sample_only():
    context = block_context()
    ranker = registry.create("ranking", {"holdout_users": 10, "hidden": 8, "epochs": 5})
    metrics = ranker.fit(context, {USER: seed_user_vectors(context), ITEM: context.item_text})
    assert metrics["users"] <= 10
