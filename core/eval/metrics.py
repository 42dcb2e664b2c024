"""Full-ranking evaluation with RecBole's metric definitions.

Protocol (``full`` ranking, as RecBole's ``mode: full``): every user with test items scores *all*
items; items the user has in train and valid are excluded; metrics at ``k`` are averaged over users
with at least one test item. Valid interactions are masked when scoring test but are never model
input, exactly as RecBole does, so numbers stand next to RecBole's tables.

Metrics are free functions over a boolean hit matrix (users x k), which keeps them testable on
hand-computed cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

METRICS = ("recall", "ndcg", "hit", "mrr", "precision")

#: ``score(users) -> (len(users), n_items)`` array; higher is better.
ScoreFn = Callable[[np.ndarray], np.ndarray]


def recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user share of relevant items retrieved in the top k."""
    return hits.sum(axis=1) / n_relevant


def precision(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user share of the top k that is relevant."""
    del n_relevant
    return hits.sum(axis=1) / hits.shape[1]


def hit(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user 1 when any relevant item is in the top k."""
    del n_relevant
    return hits.any(axis=1).astype(np.float64)


def mrr(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user reciprocal rank of the first relevant item in the top k (0 when none)."""
    del n_relevant
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user NDCG; the ideal DCG spans min(|relevant|, k) positions (RecBole's definition)."""
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal_len = np.minimum(n_relevant, k).astype(np.int64)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_len]
    return dcg / ideal


_FUNCS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "recall": recall,
    "ndcg": ndcg,
    "hit": hit,
    "mrr": mrr,
    "precision": precision,
}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first (ties broken by lower index)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def hits_matrix(ranked: np.ndarray, relevant: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """Boolean (len(users), k): whether each ranked item is relevant for its user."""
    rows = relevant[users]
    return np.asarray(rows[np.arange(len(users))[:, None], ranked].todense()).astype(bool)


def evaluate_ranking(
    score: ScoreFn,
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix,
    *,
    ks: Sequence[int] = (10,),
    batch_size: int = 256,
) -> dict[str, float]:
    """Average metrics over users with relevant items.

    Args:
        score: Scores all items for a batch of user indices.
        relevant: Users x items ground truth (test or valid).
        exclude: Users x items never to rank (train, plus valid when testing).
        ks: Cut-offs.
        batch_size: Users scored at once.

    Returns:
        ``{"ndcg@10": ..., "recall@10": ..., ...}`` plus ``users`` (how many were averaged).
    """
    n_relevant_all = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant_all)
    kmax = max(ks)
    sums = {f"{m}@{k}": 0.0 for m in METRICS for k in ks}
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = np.array(score(batch), dtype=np.float64, copy=True)
        if scores.shape != (len(batch), relevant.shape[1]):
            raise ValueError(
                f"score() returned {scores.shape}, expected {(len(batch), relevant.shape[1])}"
            )
        scores[np.isnan(scores)] = -np.inf
        excl = exclude[batch].tocoo()
        scores[excl.row, excl.col] = -np.inf
        ranked = top_k(scores, kmax)
        hits = hits_matrix(ranked, relevant, batch)
        n_rel = n_relevant_all[batch]
        for k in ks:
            for name, func in _FUNCS.items():
                sums[f"{name}@{k}"] += float(func(hits[:, :k], n_rel).sum())
    result = {key: value / max(1, len(users)) for key, value in sums.items()}
    result["users"] = float(len(users))
    return result
