"""A small catalog with a known answer for agent tests.

Users and items fall in blocks: every user of block b interacted with every item of block b, and
item texts of one block point the same way. One item per user is held out: the right answer is
always "the rest of your block".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.agents.base import TrainContext
from recagents.data import build_dataset

BLOCKS, SIZE, DIM = 4, 8, 16


def block_dataset():  # type: ignore[no-untyped-def]
    n = BLOCKS * SIZE
    rows = [(f"u{u}", f"i{i}") for u in range(n) for i in range(n) if u // SIZE == i // SIZE]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "title": [f"Film {i}" for i in range(n)],
            "year": [1990 + i // SIZE for i in range(n)],
            "genres": [["Drama", "Comedy", "Horror", "Western"][i // SIZE] for i in range(n)],
        }
    )
    return build_dataset("blocks", inter, items)


def block_context(seed: int = 0) -> TrainContext:
    """Fit = blocks minus two items per user; holdout = one; valid = the other."""
    dataset = block_dataset()
    n = dataset.n_users
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(BLOCKS, DIM))
    item_text = directions[np.arange(n) // SIZE] + 0.3 * rng.normal(size=(n, DIM))
    item_text /= np.linalg.norm(item_text, axis=1, keepdims=True)
    user_text = directions[np.arange(n) // SIZE] + 0.3 * rng.normal(size=(n, DIM))
    dense = np.zeros((n, n), dtype=np.float32)
    hold = np.zeros_like(dense)
    valid = np.zeros_like(dense)
    for u in range(n):
        block = np.arange(SIZE) + (u // SIZE) * SIZE
        dense[u, block] = 1
        h, v = block[(u + 1) % SIZE], block[(u + 2) % SIZE]
        dense[u, [h, v]] = 0
        hold[u, h] = 1
        valid[u, v] = 1
    fit = sp.csr_matrix(dense)
    holdout = sp.csr_matrix(hold)
    return TrainContext(
        dataset=dataset,
        fit=fit,
        holdout=holdout,
        train=(fit + holdout).tocsr(),
        item_text=item_text.astype(np.float32),
        user_text=user_text.astype(np.float32),
        seed=seed,
        valid=sp.csr_matrix(valid),
    )


def block_coordinator(context: TrainContext, store=None, **options):  # type: ignore[no-untyped-def]
    """A quiet coordinator over the default roles in an isolated registry; ``options`` override."""
    from recagents.agents.rounds import Coordinator
    from recagents.vectorstore.memory import InMemoryStore
    from tests.support.registries import isolated_registry

    settings = {"namespace": "b", "registry": isolated_registry(), "progress": False}
    settings.update(options)
    return Coordinator(context, InMemoryStore() if store is None else store, **settings)
