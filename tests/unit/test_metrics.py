import math

import numpy as np
import pytest
import scipy.sparse as sp

from recagents.eval.metrics import evaluate_ranking, hit, mrr, ndcg, precision, recall, top_k


def test_metrics_on_hand_computed_case():
    # user 0: relevant at ranks 1 and 3 of 4 shown, 3 relevant in total
    # user 1: nothing relevant in the top 4, 1 relevant in total
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
    n_rel = np.array([3, 1])
    assert recall(hits, n_rel) == pytest.approx([2 / 3, 0.0])
    assert precision(hits, n_rel) == pytest.approx([0.5, 0.0])
    assert hit(hits, n_rel) == pytest.approx([1.0, 0.0])
    assert mrr(hits, n_rel) == pytest.approx([1.0, 0.0])
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(hits, n_rel) == pytest.approx([dcg / idcg, 0.0])


def test_ndcg_ideal_is_capped_at_k():
    # 5 relevant items, k = 2, both shown items relevant: ideal DCG spans only 2 positions -> 1.0
    hits = np.array([[1, 1]], dtype=bool)
    assert ndcg(hits, np.array([5])) == pytest.approx([1.0])
    # first relevant at rank 2
    assert mrr(np.array([[0, 1, 1]], dtype=bool), np.array([2])) == pytest.approx([0.5])


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, -1.0]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]


def test_evaluate_ranking_excludes_and_averages_over_users_with_relevant_items():
    # 3 users x 5 items; user 2 has no test items and must not count
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]))
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    fixed = np.array([5.0, 4.0, 3.0, 2.0, 1.0])

    def score(users: np.ndarray) -> np.ndarray:
        return np.tile(fixed, (len(users), 1))

    result = evaluate_ranking(score, relevant, exclude, ks=(1, 2))
    assert result["users"] == 2
    # user 0: item 0 excluded -> ranking 1,2,...: relevant item 2 at rank 2
    # user 1: ranking 0,1,2,3,4: relevant item 4 at rank 5 -> no hit in top 2
    assert result["hit@1"] == pytest.approx(0.0)
    assert result["hit@2"] == pytest.approx(0.5)
    assert result["recall@2"] == pytest.approx(0.5)
    assert result["mrr@2"] == pytest.approx(0.25)
    assert result["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)
    assert result["precision@2"] == pytest.approx(0.25)


def test_evaluate_ranking_rejects_wrong_score_shape():
    relevant = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="expected"):
        evaluate_ranking(lambda u: np.zeros((len(u), 2)), relevant, relevant * 0)
