import numpy as np
import scipy.sparse as sp

from recagents.eval.baselines import EASE, FitContext, ItemKNN, Popularity, TextOnly, cosine_topk
from recagents.eval.metrics import evaluate_ranking


def checkerboard(n_blocks: int = 4, size: int = 6) -> sp.csr_matrix:
    """Users in block b interacted with every item in block b: the answer is 'your block'."""
    n = n_blocks * size
    dense = np.zeros((n, n), dtype=np.float32)
    for b in range(n_blocks):
        dense[b * size : (b + 1) * size, b * size : (b + 1) * size] = 1
    return sp.csr_matrix(dense)


def _hold_out_diagonal(full: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    dense = full.toarray()
    test = np.zeros_like(dense)
    np.fill_diagonal(test, 1)
    train = dense - test
    return sp.csr_matrix(train), sp.csr_matrix(test)


def test_neighbourhood_models_find_the_held_out_block_item():
    train, test = _hold_out_diagonal(checkerboard())
    for model in (ItemKNN(k=10), EASE(reg=1.0)):
        model.fit(FitContext(train=train))
        result = evaluate_ranking(model.score, test, train, ks=(1,))
        assert result["hit@1"] == 1.0, model.name


def test_popularity_counts_exactly():
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=np.float32))
    model = Popularity().fit(FitContext(train=train))
    assert model.score(np.array([0, 1])).tolist() == [[3, 1, 1], [3, 1, 1]]


def test_cosine_topk_keeps_k_neighbours_and_no_self_similarity():
    train = checkerboard(2, 4)
    sim = cosine_topk(train, k=2)
    assert (sim.diagonal() == 0).all()
    assert (np.diff(sim.indptr) <= 2).all()
    assert sim[0, 1] > 0.99 and sim[0, 5] == 0


def test_text_baseline_uses_item_vectors():
    train, test = _hold_out_diagonal(checkerboard(2, 3))
    vectors = np.zeros((6, 2), dtype=np.float32)
    vectors[:3, 0] = 1  # block 0 items point one way, block 1 the other
    vectors[3:, 1] = 1
    model = TextOnly().fit(FitContext(train=train, item_vectors=lambda: vectors))
    result = evaluate_ranking(model.score, test, train, ks=(1,))
    assert result["hit@1"] == 1.0
