"""Synthetic interactions with planted structure: a data set whose right answer is known.

Why: MovieLens stops at 10^5 users and 10^4 items, and its best possible NDCG is unknown. To
measure how the agents scale (issue 13) and what an approximation costs, we need catalogs of any
size drawn from a model we wrote down, so that the best achievable ranking (the *oracle*: the
planted preference itself) can be scored beside the trained model.

The model (seeded, so the same arguments give the same data bit for bit):

* every user ``u`` and item ``i`` has a latent factor vector (``factors`` wide, unit variance);
* items have a Zipf popularity: the item of popularity rank ``r`` has log-weight ``-zipf * log r``
  (the ranks are a random permutation of the items);
* user ``u``'s preference for item ``i`` is the logit ``strength * <U_u, V_i> + log pop_i``; the
  user's history is ``per_user`` draws *without replacement* from the softmax of those logits
  (Gumbel top-k, an exact sampler), drawn in user batches so no users x items matrix is ever
  held whole;
* the text vectors a language model would give are a noisy linear view of the same factors
  (``text_noise``), so text helps but does not give the answer away.

Three items of each user are held out: one for the ranking agent's hold-out, one for valid and
one for test. The oracle scores a user's items by the planted logits (:meth:`Synthetic.oracle`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.data.datasets import ITEM_COLUMNS, Dataset
from recagents.idmap import IdMap

#: Interactions per user held out of ``fit``: ranker hold-out, valid, test.
HELD_OUT = 3
#: Users whose histories are sampled at once (a batch x items logit matrix, never users x items).
_SAMPLE_BATCH = 512


@dataclass
class Synthetic:
    """A generated catalog, its splits and the planted factors that give the oracle ranking.

    Attributes:
        dataset: Catalog and id maps (items ``i<k>``, users ``u<k>``; titles are synthetic).
        fit: What the towers train on (users x items, binary CSR).
        holdout: One interaction per user, for the ranking agent's hold-out.
        valid: One interaction per user, for round selection.
        test: One interaction per user, never seen by training or selection.
        item_text: Planted "language model" item vectors (n_items x text_dim, unit rows).
        user_text: Planted user description vectors (n_users x text_dim).
        user_factors: The planted user factors (n_users x factors).
        item_factors: The planted item factors (n_items x factors).
        log_popularity: The planted per-item log popularity.
        strength: Weight of the factor term in the logits.
    """

    dataset: Dataset
    fit: sp.csr_matrix
    holdout: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    item_text: np.ndarray
    user_text: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    log_popularity: np.ndarray
    strength: float

    @property
    def train(self) -> sp.csr_matrix:
        """``fit + holdout``: all a model may train on."""
        return (self.fit + self.holdout).tocsr()

    def oracle(self, users: np.ndarray) -> np.ndarray:
        """The planted logits of ``users`` over every item: the best ranking a model can learn."""
        users = np.asarray(users)
        return self.strength * self.user_factors[users] @ self.item_factors.T + self.log_popularity

    def popularity(self, users: np.ndarray) -> np.ndarray:
        """The popularity-only ranking (the baseline the oracle must beat)."""
        return np.broadcast_to(self.log_popularity, (len(users), len(self.log_popularity)))


def _batches(n: int, size: int) -> Iterator[np.ndarray]:
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


def generate(
    n_users: int,
    n_items: int,
    *,
    per_user: int = 20,
    factors: int = 16,
    text_dim: int = 32,
    zipf: float = 0.8,
    strength: float = 2.5,
    text_noise: float = 1.0,
    seed: int = 0,
    name: str | None = None,
) -> Synthetic:
    """Draw a catalog of ``n_users`` x ``n_items`` with planted factors (see the module text).

    Args:
        n_users: Users (each gets exactly ``per_user`` interactions).
        n_items: Items.
        per_user: Interactions per user, ``HELD_OUT`` of them held out (at least 5).
        factors: Width of the planted factors.
        text_dim: Width of the text vectors (hence of every vector the agents exchange).
        zipf: Popularity skew: the item of rank r weighs ``r ** -zipf``.
        strength: Weight of the factor term against popularity (0: popularity only).
        text_noise: Noise added to the text views of the factors (relative to their size).
        seed: Seed of every draw.
        name: Dataset name (default ``synthetic-<users>x<items>``).

    Raises:
        ValueError: ``per_user`` is below 5 or not below ``n_items``.
    """
    if per_user < HELD_OUT + 2 or per_user >= n_items:
        raise ValueError(f"per_user must be between {HELD_OUT + 2} and n_items - 1")
    rng = np.random.default_rng(seed)
    user_factors = rng.normal(size=(n_users, factors)).astype(np.float32) / np.sqrt(factors)
    item_factors = rng.normal(size=(n_items, factors)).astype(np.float32)
    ranks = rng.permutation(n_items) + 1
    log_pop = (-zipf * np.log(ranks)).astype(np.float32)

    items = np.empty((n_users, per_user), dtype=np.int64)
    for batch in _batches(n_users, _SAMPLE_BATCH):
        logits = strength * user_factors[batch] @ item_factors.T + log_pop
        # Gumbel noise as -log(Exp(1)): one logarithm per entry instead of two.
        noisy = logits - np.log(rng.standard_exponential(logits.shape, dtype=np.float32) + 1e-12)
        top = np.argpartition(-noisy, per_user - 1, axis=1)[:, :per_user]
        # Gumbel top-k in decreasing order is the order of sequential draws without replacement.
        order = np.argsort(-np.take_along_axis(noisy, top, axis=1), axis=1)
        items[batch] = np.take_along_axis(top, order, axis=1)
    # Draws are exchangeable, but shuffle anyway so the held-out ones are not the likeliest.
    items = rng.permuted(items, axis=1)

    def matrix(cols: np.ndarray) -> sp.csr_matrix:
        n = cols.shape[1]
        rows = np.repeat(np.arange(n_users), n)
        data = np.ones(rows.size, dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols.ravel())), shape=(n_users, n_items))

    fit = matrix(items[:, HELD_OUT:])
    holdout, valid, test = (matrix(items[:, k : k + 1]) for k in range(HELD_OUT))

    projection = rng.normal(size=(factors, text_dim)).astype(np.float32) / np.sqrt(factors)
    item_text = item_factors @ projection
    item_text += text_noise * rng.normal(size=item_text.shape).astype(np.float32) * item_text.std()
    item_text /= np.linalg.norm(item_text, axis=1, keepdims=True)
    user_text = (user_factors * np.sqrt(factors)) @ projection
    user_text += 2 * text_noise * rng.normal(size=user_text.shape).astype(np.float32)
    user_text *= 0.1 / max(1e-9, float(np.linalg.norm(user_text, axis=1).mean()))

    dataset = _dataset(name or f"synthetic-{n_users}x{n_items}", items, n_users, n_items)
    return Synthetic(
        dataset=dataset,
        fit=fit,
        holdout=holdout,
        valid=valid,
        test=test,
        item_text=item_text.astype(np.float32),
        user_text=user_text.astype(np.float32),
        user_factors=user_factors,
        item_factors=item_factors,
        log_popularity=log_pop,
        strength=float(strength),
    )


def _dataset(name: str, items: np.ndarray, n_users: int, n_items: int) -> Dataset:
    """The catalog, built directly from indices.

    ``build_dataset`` maps string ids row by row, which at 10^7 interactions costs minutes for
    nothing here.
    """
    item_ids = [f"i{k}" for k in range(n_items)]
    table = pd.DataFrame({column: [""] * n_items for column in ITEM_COLUMNS})
    table["item_id"] = item_ids
    table["title"] = [f"Item {k}" for k in range(n_items)]
    table["year"] = pd.array([pd.NA] * n_items, dtype="Int64")
    table["runtime"] = np.nan
    user_ids = [f"u{k}" for k in range(n_users)]
    frame = pd.DataFrame(
        {
            "user": np.repeat(np.arange(n_users), items.shape[1]),
            "item": items.ravel(),
            "rating": np.full(items.size, np.nan, dtype=np.float32),
            "timestamp": np.zeros(items.size, dtype=np.int64),
        }
    )
    return Dataset(
        name=name,
        interactions=frame,
        items=table,
        users=pd.DataFrame({"user_id": user_ids}),
        user_map=IdMap(user_ids, kind="user"),
        item_map=IdMap(item_ids, kind="item"),
        info={"source": "recagents.data.synthetic"},
    )


__all__ = ["HELD_OUT", "Synthetic", "generate"]
