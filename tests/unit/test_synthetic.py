"""The synthetic generator (issue 13): seeded, split cleanly, with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from recagents.agents.synthetic import synthetic_context
from recagents.data.synthetic import HELD_OUT, generate
from recagents.eval.metrics import evaluate_ranking


def test_the_same_seed_draws_the_same_catalog_and_another_seed_does_not():
    first, again, other = (generate(300, 120, seed=s) for s in (4, 4, 5))
    assert (first.fit != again.fit).nnz == 0
    assert (first.valid != again.valid).nnz == 0
    assert np.array_equal(first.item_text, again.item_text)
    assert (first.fit != other.fit).nnz > 0


def test_each_user_holds_out_one_item_per_split_and_the_splits_never_overlap():
    data = generate(200, 80, per_user=12, seed=1)
    for split in (data.holdout, data.valid, data.test):
        assert (np.diff(split.indptr) == 1).all()
    assert (np.diff(data.fit.indptr) == 12 - HELD_OUT).all()
    total = data.fit + data.holdout + data.valid + data.test
    assert total.max() == 1.0  # drawn without replacement: no item twice for a user
    assert data.dataset.n_users == 200 and data.dataset.n_items == 80


def test_the_oracle_beats_popularity_and_popularity_beats_chance():
    """The known answer: the planted logits rank the held-out item far better than popularity."""
    data = generate(2000, 500, seed=0)
    oracle = evaluate_ranking(data.oracle, data.valid, data.train)["ndcg@10"]
    popular = evaluate_ranking(data.popularity, data.valid, data.train)["ndcg@10"]
    rng = np.random.default_rng(0)
    chance = evaluate_ranking(lambda users: rng.random((len(users), 500)), data.valid, data.train)[
        "ndcg@10"
    ]
    assert oracle > 2 * popular
    assert popular > 2 * chance


def test_the_context_samples_valid_users_when_asked():
    data = generate(400, 100, seed=2)
    context = synthetic_context(data, seed=2, valid_users=50)
    assert context.valid is not None
    assert int((np.diff(context.valid.indptr) > 0).sum()) == 50
    assert context.dim == data.item_text.shape[1]
    assert (context.train != (context.fit + context.holdout)).nnz == 0


def test_too_few_interactions_per_user_are_refused():
    with pytest.raises(ValueError, match="per_user"):
        generate(10, 10, per_user=3)
