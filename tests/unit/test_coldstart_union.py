"""The cold-start lists of a run trained with dialogue corpora (``recagents.data.union``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.data import build_dataset
from recagents.graph.coldstart import ColdStart


def _coldstart(dialogues: int) -> ColdStart:
    """Four films; catalog users rate 0 and 1 (0 the most), ``dialogues`` users name film 3."""
    ratings = [("u0", "f0", 5), ("u1", "f0", 4), ("u2", "f0", 5), ("u1", "f1", 4), ("u2", "f2", 3)]
    items = pd.DataFrame({"item_id": ["f0", "f1", "f2", "f3"], "title": list("abcd")})
    dataset = build_dataset(
        "tiny", pd.DataFrame(ratings, columns=["user_id", "item_id", "rating"]), items
    )
    rows = [(dataset.user_map.index(u), dataset.item_map.index(i)) for u, i, _ in ratings]
    n_users = dataset.n_users + dialogues
    rows += [(dataset.n_users + d, 3) for d in range(dialogues)] + [
        (dataset.n_users + d, 1) for d in range(dialogues)
    ]
    users, films = zip(*rows, strict=True)
    train = sp.csr_matrix((np.ones(len(rows)), (users, films)), shape=(n_users, 4))
    weights = np.r_[np.ones(dataset.n_users), np.full(dialogues, 2.0)] if dialogues else None
    text = np.eye(4, dtype=np.float32)
    return ColdStart.from_training(
        dataset, train, text, user_weight=weights, dialogue_users=dialogues
    )


def test_the_films_conversations_name_come_first_and_facts_stay_ratings() -> None:
    plain, union = _coldstart(0), _coldstart(3)
    assert int(np.argmax(plain.cold_scores())) == 0  # the most rated
    assert int(np.argmax(union.cold_scores())) in (1, 3)  # named in every dialogue
    assert np.allclose(union.talk, [0.0, 6.0, 0.0, 6.0])
    # a dialogue mention is not a rating: the facts an explanation may state are unchanged
    assert union.facts(3) == plain.facts(3) and union.facts(1) == plain.facts(1)
    assert union.facts(3)["ratings"] == 0.0
    # the views learn from the dialogues (weighted): film 3 now goes with film 1
    views = union.views([1], None)
    assert views["co"][3] > 0 and plain.views([1], None)["co"][3] == 0
    assert np.isclose(views["popularity"][3], 6.0)
