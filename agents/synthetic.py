"""A :class:`TrainContext` over synthetic data (:mod:`recagents.data.synthetic`), no encoder.

Why here and not in ``recagents.data``: the context is the agents' type (core never imports the
agents layer). Tests and ``bench/scale.py`` train on planted catalogs of any size with it,
without loading a sentence encoder: the text vectors are the generator's planted ones.
"""

from __future__ import annotations

import numpy as np

from recagents.agents.base import TrainContext
from recagents.data.synthetic import Synthetic


def synthetic_context(data: Synthetic, seed: int = 0, valid_users: int = 0) -> TrainContext:
    """The agents' view of ``data``: fit, the ranker's hold-out, train, planted texts, valid.

    Args:
        data: A generated catalog.
        seed: The run's seed.
        valid_users: Validate on this many users only (a seeded sample; 0: all). Each round
            scores valid; at 10^5+ users a sample keeps that from dominating the round.
    """
    valid = data.valid
    if 0 < valid_users < data.fit.shape[0]:
        keep = np.zeros(data.fit.shape[0], dtype=np.float32)
        keep[np.random.default_rng(seed).choice(len(keep), valid_users, replace=False)] = 1.0
        valid = valid.multiply(keep[:, None]).tocsr()
        valid.eliminate_zeros()
    return TrainContext(
        dataset=data.dataset,
        fit=data.fit,
        holdout=data.holdout,
        train=data.train,
        item_text=data.item_text,
        user_text=data.user_text,
        seed=seed,
        valid=valid,
    )


__all__ = ["synthetic_context"]
