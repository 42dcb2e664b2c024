"""Reference models that the learning agents must beat, with RecBole's defaults.

- ``pop``: exact interaction counts in train (RecBole's Pop undercounts items repeated in a batch).
- ``itemknn``: cosine item-item neighbourhoods, 100 neighbours, no shrink (RecBole ItemKNN).
- ``ease``: closed-form EASE with lambda = 250 (RecBole's default ``reg_weight``).
- ``text``: the language model alone: a user is the mean text embedding of their train items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from recagents.errors import ConfigError


@dataclass
class FitContext:
    """What a model may read when fitting: train matrix plus lazily built side information.

    ``valid`` is for model selection only (early stopping, choosing a round), never model input.
    """

    train: sp.csr_matrix
    valid: sp.csr_matrix | None = None
    item_vectors: Callable[[], np.ndarray] | None = None
    seed: int = 0
    extras: dict[str, object] = field(default_factory=dict)


class ScoringModel(Protocol):
    """A model the evaluation can rank with."""

    name: str

    def fit(self, context: FitContext) -> ScoringModel:
        """Train on ``context.train``; return self."""
        ...

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of all items for the given user indices."""
        ...


class Popularity:
    """Most-popular baseline: exact train counts."""

    name = "pop"

    def fit(self, context: FitContext) -> Popularity:
        """Count each item's train interactions."""
        self.counts = np.asarray(context.train.sum(axis=0)).ravel().astype(np.float64)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """The same counts for every user."""
        return np.broadcast_to(self.counts, (len(users), self.counts.shape[0]))


def cosine_topk(matrix: sp.csr_matrix, k: int, shrink: float = 0.0) -> sp.csr_matrix:
    """Item x item cosine similarities of ``matrix``'s columns, keeping each row's top ``k``."""
    cols = matrix.tocsc().astype(np.float64)
    norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=0)).ravel())
    gram = (cols.T @ cols).toarray()
    denom = np.outer(norms, norms) + shrink + 1e-6
    sim = gram / denom
    np.fill_diagonal(sim, 0.0)
    n = sim.shape[0]
    k = min(k, n - 1)
    keep = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    values = sim[np.arange(n)[:, None], keep].ravel()
    out = sp.csr_matrix((values, (rows, keep.ravel())), shape=(n, n))
    out.eliminate_zeros()
    return out


class ItemKNN:
    """RecBole-style ItemKNN: a candidate's score sums its similarity to the user's items."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        self.k, self.shrink = k, shrink

    def fit(self, context: FitContext) -> ItemKNN:
        """Build the sparse neighbourhood matrix.

        RecBole keeps, for each *candidate* i, its top-k neighbours j and scores i by the user's
        items among them: W[j, i] = sim(i, j) for j in topk(i), hence the transpose.
        """
        self.train = context.train
        self.weights = cosine_topk(context.train, self.k, self.shrink).T.tocsr()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """History times neighbourhoods."""
        return np.asarray((self.train[users] @ self.weights).todense())


def knn_weights(
    matrix: sp.csr_matrix, k: int = 200, shrink: float = 10.0, block: int = 1024
) -> sp.csr_matrix:
    """Sparse item-item weights for catalogs too large for EASE's dense inverse.

    ``W[j, i]`` is the cosine similarity of items ``i`` and ``j`` for the ``k`` items ``j`` most
    similar to candidate ``i`` (RecBole's ItemKNN orientation, so ``history @ W`` scores
    candidates), zero elsewhere. The co-occurrence ``X'X`` is computed ``block`` candidates at a
    time and only their top ``k`` kept, so memory is ``block x items`` plus ``items x k``, never
    ``items x items``.
    """
    cols = sp.csc_matrix(matrix, dtype=np.float32)
    n = cols.shape[1]
    norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=0)).ravel())
    rows_t = cols.T.tocsr()
    k = min(k, n - 1)
    out_rows, out_cols, out_vals = [], [], []
    for start in range(0, n, block):
        cand = np.arange(start, min(n, start + block))
        gram = np.asarray((rows_t[cand] @ cols).todense(), dtype=np.float32)
        sim = gram / (norms[cand, None] * norms[None, :] + shrink + 1e-6)
        sim[np.arange(len(cand)), cand] = 0.0
        keep = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(sim, keep, axis=1)
        out_rows.append(keep.ravel())  # the neighbour j (a history item) ...
        out_cols.append(np.repeat(cand, k))  # ... weighs towards candidate i
        out_vals.append(values.ravel())
    weights = sp.csr_matrix(
        (np.concatenate(out_vals), (np.concatenate(out_rows), np.concatenate(out_cols))),
        shape=(n, n),
        dtype=np.float32,
    )
    weights.eliminate_zeros()
    return weights


def ease_weights(train: sp.csr_matrix, reg: float) -> np.ndarray:
    """EASE's closed form B = I - P / diag(P), with P = (X'X + reg I)^-1 and diag(B) = 0."""
    gram = (train.T @ train).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += reg
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019), RecBole's default regularisation."""

    name = "ease"

    def __init__(self, reg: float = 250.0) -> None:
        self.reg = reg

    def fit(self, context: FitContext) -> EASE:
        """Solve the closed form."""
        self.train = context.train
        self.weights = ease_weights(context.train, self.reg)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """History times item-item weights."""
        return np.asarray(self.train[users] @ self.weights)


class TextOnly:
    """Language-model-only baseline: cosine between item texts and the mean of the user's items."""

    name = "text"

    def fit(self, context: FitContext) -> TextOnly:
        """Average each user's train item embeddings."""
        if context.item_vectors is None:
            raise ConfigError("the text baseline needs item text embeddings (an encoder)")
        items = context.item_vectors().astype(np.float32)
        self.items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
        users = context.train @ self.items
        self.users = users / np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Cosine similarities."""
        return self.users[users] @ self.items.T


BASELINES: dict[str, Callable[[], ScoringModel]] = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "text": TextOnly,
}
