"""The seeds' kind first when a hard constraint excludes every seed (issue 10, section 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.graph.coldstart import KIND_WEIGHT, ColdStart

GENRES = [
    "Crime|Drama|Thriller",  # 0 seed "Fargo"
    "Crime|Drama",  # 1 seed "Pulp Fiction"
    "Drama",  # 2 a broad drama, liked by everyone
    "Action|Adventure",  # 3 a blockbuster
    "Crime",  # 4 a crime film nobody rated
    "Action|Thriller",  # 5 a thriller
    "Horror|Thriller",  # 6
    "Mystery|Thriller",  # 7
    *["Drama"] * 6,
    *["Comedy"] * 5,
    *["Romance", "Western", "Musical", "Sci-Fi", "War", "Documentary"],
]
THRILLERS = {5, 6, 7}


def _cold() -> ColdStart:
    n = len(GENRES)
    items = pd.DataFrame({"genres": GENRES})
    rng = np.random.default_rng(0)
    dense = (rng.random((40, n)) < 0.3).astype(float)
    dense[:, [2, 3]] = 1.0  # everyone watched the drama and the blockbuster
    dense[:, 4] = 0.0
    return ColdStart(items, sp.csr_matrix(dense), None, rng.normal(size=(n, 8)))


def test_distinctive_genres_leave_out_the_broad_ones_rarest_first():
    cold = _cold()
    # Drama (9 of 25) and Comedy (5 of 25) are broad; Crime (3) is rarer than Thriller (4)
    assert cold.distinctive(0) == ["Crime", "Thriller"]
    assert cold.distinctive(1) == ["Crime"]
    assert cold.distinctive(2) == ["Drama"]  # only broad genres: its rarest one


def test_keep_kind_puts_the_seeds_kind_first_and_keeps_the_blend_order_within():
    cold = _cold()
    seeds = [0, 1]
    scores = cold.blend(seeds, None)
    assert scores[3] > scores[4] and scores[2] > scores[4]  # the blend alone prefers the popular
    kept = cold.keep_kind(seeds, scores, weight=float("inf"))
    order = [int(i) for i in np.argsort(-kept) if i not in seeds]
    # Crime (both seeds' kind) first, then the thrillers (Fargo's), then the rest in blend order
    assert order[0] == 4
    assert set(order[1:4]) == THRILLERS
    assert order[1:4] == [int(i) for i in np.argsort(-scores) if i in THRILLERS]
    rest = [int(i) for i in np.argsort(-scores) if i not in (*seeds, 4, *THRILLERS)]
    assert order[4:] == rest


def test_the_shipped_kind_weight_adds_to_the_blend():
    cold = _cold()
    scores = cold.blend([0, 1], None)
    kept = cold.keep_kind([0, 1], scores)
    np.testing.assert_allclose(kept - scores, KIND_WEIGHT * cold.kind([0, 1]))
    assert cold.kind([0, 1])[4] == 2.0 and cold.kind([0, 1])[5] == 0.5  # Crime; a thriller


def test_keep_kind_is_a_no_op_without_a_kind_and_ignores_excluded_scores():
    cold = _cold()
    scores = np.arange(len(GENRES), dtype=float)
    scores[3] = -np.inf
    kept = cold.keep_kind([0], scores, weight=float("inf"))
    assert np.isfinite(kept[np.isfinite(scores)]).all()
    assert kept[3] == -np.inf
