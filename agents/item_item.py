"""The closed-form item-item model the item and ranking agents each fit for themselves.

EASE (Steck 2019) needs a dense items x items inverse (4 bytes x items^2: 1.6 GB at 20,000 items,
40 GB at 10^5), so past :data:`DENSE_ITEM_LIMIT` items ``auto`` fits sparse top-k cosine
neighbours per item instead (ItemKNN, :func:`~recagents.eval.baselines.knn_weights`). Options a
role passes through (its config's ``options``): ``item_item`` (``auto`` | ``dense`` | ``sparse``),
``dense_items`` (the limit), ``knn_k`` (neighbours) and ``ease_reg`` (EASE's λ).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from recagents.agents.base import TrainContext
from recagents.errors import ConfigError
from recagents.eval.baselines import ease_weights, knn_weights

#: Past this many items ``item_item = "auto"`` fits sparse neighbours instead of dense EASE:
#: EASE's float64 Gram matrix and inverse take 2 x 8 x items^2 bytes (6.4 GB at 20,000 items)
#: and its cubic inverse minutes on one core.
DENSE_ITEM_LIMIT = 20_000
#: Neighbours kept per item by the sparse form.
KNN_NEIGHBOURS = 200
MODES = ("auto", "dense", "sparse")


def weighted_rows(matrix: sp.csr_matrix, context: TrainContext | None) -> sp.csr_matrix:
    """``matrix`` with each user's row scaled by the root of their training weight.

    So the Gram matrix is ``X' W X``: films named in one dialogue of a union
    (:mod:`recagents.data.union`) co-occur with its weight. Unweighted: ``matrix`` itself.
    """
    if context is None or context.user_weight is None or matrix.shape[0] != context.n_users:
        return matrix
    return sp.csr_matrix(sp.diags(np.sqrt(context.weights())) @ matrix)


def is_sparse(options: Mapping[str, Any], n_items: int, role: str, extra: tuple = ()) -> bool:
    """Whether ``options`` choose the sparse form for ``n_items`` items.

    ``extra``: more modes the role accepts (handled by the caller), e.g. ``"none"``.

    Raises:
        ConfigError: An unknown ``item_item`` mode (the line names the role and the modes).
    """
    mode = str(options.get("item_item", "auto"))
    modes = (*MODES, *extra)
    if mode not in modes:
        raise ConfigError(
            f"{role} option item_item must be {', '.join(modes[:-1])} or {modes[-1]}: {mode!r}"
        )
    limit = int(options.get("dense_items", DENSE_ITEM_LIMIT))
    return mode == "sparse" or (mode == "auto" and n_items > limit)


def fit_item_item(
    rows: sp.csr_matrix,
    options: Mapping[str, Any],
    role: str,
    default_reg: float,
    extra: tuple = (),
) -> np.ndarray | sp.csr_matrix:
    """The item-item weights of (weighted) ``rows``: dense EASE or sparse neighbours."""
    if is_sparse(options, rows.shape[1], role, extra):
        return knn_weights(rows, int(options.get("knn_k", KNN_NEIGHBOURS)))
    return ease_weights(rows, float(options.get("ease_reg", default_reg)))


def history_scores(item_item: np.ndarray | sp.csr_matrix, history: sp.csr_matrix) -> np.ndarray:
    """Each history row's scores of every item through the item-item weights (dense)."""
    scores = history @ item_item
    return np.asarray(scores.todense() if sp.issparse(scores) else scores)


__all__ = [
    "DENSE_ITEM_LIMIT",
    "KNN_NEIGHBOURS",
    "fit_item_item",
    "history_scores",
    "is_sparse",
    "weighted_rows",
]
