"""Lists for people the agents know little about: nobody yet, or one to three liked films.

The trained agents rank well for users with a history, but a cold profile is a weak query: with
no film at all the ranker's scores are noise (every new thread used to get the same five obscure
films), and with one or two films the learned ranker leans on what is popular among everyone
("Fargo and Pulp Fiction, but from the 80s" brought Raiders and Back to the Future). So:

- **No liked film** (:meth:`ColdStart.cold_scores`): films that are both *popular* (in the top
  :data:`POPULAR_SHARE` of the catalog by number of train ratings) and *well liked* (a damped mean
  rating: ``(sum + m * global_mean) / (count + m)``, so ten 5-star ratings do not beat four
  hundred 4.5-star ones). Popular films come first; when a constraint leaves none, the best damped
  means of what is allowed follow. :func:`diversify` then spreads the genres (greedy genre MMR).
  A run trained with dialogue corpora puts the films conversations named most first
  (:meth:`ColdStart.cold_scores`).
- **One to :data:`MAX_SEEDS` liked films** (:meth:`ColdStart.blend`): each view is turned into a
  per-profile percentile so their scales are comparable, then mixed with :data:`BLEND_WEIGHTS`:
  the agents' score (the path before), co-liking (cosine between the films' rating columns:
  "people who liked X also liked") and its damped lift (how much more than everyone the seeds'
  fans chose it, which does not favour blockbusters), genre overlap (IDF-weighted cosine, so a
  shared "Crime" counts more than a shared "Drama"), shared director/cast, the text embeddings
  of the films, popularity and the damped mean rating. The weights were chosen on the
  *validation* split by ``bench/coldstart.py`` (never on test users): the best NDCG@10 among
  weights that keep the list like the films named (see the floors there); BENCHMARKS.md quotes
  test.
- **Liked films, but a hard constraint excludes every one of them** ("Fargo and Pulp Fiction,
  but from the 80s"; :meth:`ColdStart.keep_kind`): the seeds' co-liked neighbourhood is gone
  (their fans' 1980s films are simply the 1980s blockbusters, Raiders and Back to the Future),
  and no weighting of the views fixes it: ML-100K has only 15 films from the 1980s carrying
  Crime or Thriller (3 Crime), and the percentile of a shared Drama is close to that of a
  shared Crime. So the blend gains :data:`KIND_WEIGHT` times how much of the seeds' kind a
  film shares (:meth:`ColdStart.kind`: each seed's *distinctive* genres, those not carried by
  a fifth of the catalog, the rarest counting most: Crime for both films, Thriller for Fargo,
  never the Drama that 43% of the catalog carries). ``bench/coldstart.py`` chose the weight on
  valid and measures what it costs (other-era NDCG@10 against the held-out films, mostly
  popular) and buys.

Every figure this module states about a film (rating count, mean rating, "popular") is a fact
of the training data, exposed through :meth:`ColdStart.facts` so explanations say only that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Share of the catalog, by number of train ratings, that may be called "popular".
POPULAR_SHARE = 0.10
#: Pseudo-ratings at the global mean in the damped mean (a film needs about this many ratings
#: before its own mean dominates).
PRIOR_COUNT = 25.0
#: A genre carried by at least this share of the catalog (ML-100K: Drama 43%, Comedy 30%; the
#: next, Action and Thriller, 15%) is too broad to say what kind of film a seed is.
BROAD_SHARE = 0.2
#: Weight of :meth:`ColdStart.kind` added to the blend (whose weights sum to 11.5) when a hard
#: constraint excludes every seed; chosen on valid by ``bench/coldstart.py`` (the best other-era
#: NDCG@10 among weights whose lists carry a seed's rarest genre at least 90% of the time).
KIND_WEIGHT = 3.0
#: Profiles with at most this many liked films (and no known history) take the blend.
MAX_SEEDS = 3
#: Weights of each view's percentile in the blend, chosen on validation (bench/coldstart.py).
BLEND_WEIGHTS: dict[str, float] = {
    "agents": 4.0,
    "co": 4.0,
    "lift": 0.25,
    "genre": 1.0,
    "people": 0.0,
    "text": 0.0,
    "quality": 0.25,
    "popularity": 2.0,
}


def _percentile(values: np.ndarray) -> np.ndarray:
    """Each value's rank share in ``[0, 1]`` (ties share their mean rank)."""
    from scipy.stats import rankdata

    if len(values) < 2:
        return np.zeros(len(values))
    return (rankdata(values, method="average") - 1.0) / (len(values) - 1.0)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)


def _split(value: Any, sep: str) -> set[str]:
    text = "" if value is None else str(value)
    return {part.strip() for part in text.split(sep) if part.strip() and part.strip() != "nan"}


class ColdStart:
    """Scores for an empty or short profile, from the catalog and the train interactions.

    Args:
        items: The catalog frame (``genres`` ``|``-joined; ``director``/``cast`` comma-joined
            when enriched).
        train: Binary users x items train matrix.
        ratings: Users x items ratings aligned with ``train`` (zeros where unknown), or None for
            implicit data (then "well liked" falls back to "often chosen").
        item_text: Item text embeddings (rows aligned with the catalog).
        signals: What the co-liking, lift and popularity views read instead of ``train``: a
            users x items matrix with each row scaled by the square root of its user's weight
            (so co-counts and counts are weighted sums) whose rows include a union's dialogue users
            (:mod:`recagents.data.union`; films named in one conversation go together), or
            None (``train``). The facts (rating counts, "popular") always come from ``train``,
            the catalog's own users: a dialogue mention is not a rating.
    """

    def __init__(
        self,
        items: Any,
        train: sp.csr_matrix,
        ratings: sp.csr_matrix | None,
        item_text: np.ndarray,
        signals: sp.csr_matrix | None = None,
    ) -> None:
        n_items = train.shape[1]
        self.counts = np.asarray(train.sum(axis=0)).ravel().astype(np.float64)
        union = signals is not None
        signals = train if signals is None else signals
        #: Weighted choices per item (the popularity and lift views); ``counts`` without a union.
        self.chosen = np.asarray(signals.multiply(signals).sum(axis=0)).ravel().astype(np.float64)
        #: Weighted dialogue mentions per item (a union's dialogue users alone; zeros without).
        self.talk = np.maximum(self.chosen - self.counts, 0.0) if union else np.zeros(n_items)
        self.genres = [_split(g, "|") for g in items["genres"].tolist()]
        people_cols = [c for c in ("director", "cast") if c in items.columns]
        self.people = [
            set().union(*(_split(items[c].iloc[i], ",") for c in people_cols))
            if people_cols
            else set()
            for i in range(n_items)
        ]
        if ratings is not None and ratings.nnz:
            sums = np.asarray(ratings.sum(axis=0)).ravel().astype(np.float64)
            rated = np.asarray((ratings > 0).sum(axis=0)).ravel().astype(np.float64)
            global_mean = float(sums.sum() / max(1.0, rated.sum()))
            self.mean_rating = np.where(rated > 0, sums / np.maximum(rated, 1.0), np.nan)
            self.rated = rated
            self.quality = (sums + PRIOR_COUNT * global_mean) / (rated + PRIOR_COUNT)
            #: Top of the rating scale ("4.2 out of 5"): the largest train rating.
            self.scale = float(ratings.max())
        else:
            self.mean_rating = np.full(n_items, np.nan)
            self.rated = np.zeros(n_items)
            self.scale = 0.0
            self.quality = np.log1p(self.counts)
        # "Popular" = among the POPULAR_SHARE most-rated items (ties at the cut included).
        n_top = max(1, int(np.ceil(POPULAR_SHARE * n_items)))
        cut = np.sort(self.counts)[::-1][n_top - 1]
        self.popular = (self.counts >= cut) & (self.counts > 0)
        # Genres as IDF-weighted unit vectors: sharing "Crime" says more than sharing "Drama".
        names = sorted(set().union(*self.genres))
        flags = np.array([[g in mine for g in names] for mine in self.genres], dtype=np.float64)
        idf = np.log((n_items + 1.0) / (flags.sum(axis=0) + 1.0)) if names else np.zeros(0)
        self._genre_vectors = _unit(flags * idf[None, :]) if names else np.zeros((n_items, 1))
        columns = signals.T.tocsr().astype(np.float64)
        norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=1)).ravel())
        self._raw_columns = columns
        self._columns = sp.diags(1.0 / np.maximum(norms, 1e-9)) @ columns
        self._text = _unit(np.asarray(item_text, dtype=np.float64))
        #: Films per genre in the catalog: how broad a genre is, for :meth:`distinctive`.
        self.genre_count: dict[str, int] = {}
        for mine in self.genres:
            for genre in mine:
                self.genre_count[genre] = self.genre_count.get(genre, 0) + 1

    @classmethod
    def from_training(
        cls,
        dataset: Any,
        train: sp.csr_matrix,
        item_text: np.ndarray,
        *,
        user_weight: np.ndarray | None = None,
        dialogue_users: int = 0,
    ) -> ColdStart:
        """Built from a dataset's interactions restricted to the train matrix (no valid/test).

        With a union (``dialogue_users`` trailing rows of ``train`` are dialogues, weighted by
        ``user_weight``), the views learn from every row, weighted, and the facts from the
        catalog's users alone.
        """
        signals = None
        if user_weight is not None or dialogue_users:
            weights = np.ones(train.shape[0]) if user_weight is None else user_weight
            root = np.sqrt(np.asarray(weights, dtype=np.float64))
            signals = sp.csr_matrix(sp.diags(root) @ train)
            keep = np.ones(train.shape[0])
            if dialogue_users:
                keep[train.shape[0] - dialogue_users :] = 0.0
            train = sp.csr_matrix(sp.diags(keep) @ train)
            train.eliminate_zeros()
        frame = dataset.interactions
        ratings = None
        if "rating" in frame and frame["rating"].notna().any():
            values = frame["rating"].to_numpy(dtype=np.float64)
            keep = np.isfinite(values)
            ratings = sp.csr_matrix(
                (
                    values[keep],
                    (frame["user"].to_numpy()[keep], frame["item"].to_numpy()[keep]),
                ),
                shape=train.shape,
            )
            ratings = ratings.multiply(train > 0).tocsr()
        return cls(dataset.items, train, ratings, item_text, signals)

    # -- no liked film ---------------------------------------------------------------------------

    def cold_scores(self) -> np.ndarray:
        """Popular films first, each group by damped mean rating (higher is better).

        The popular group is shifted above everything else, so a constrained list shows every
        popular match before any less-rated one. A run trained with dialogue corpora orders by
        how often the conversations named a film first (:attr:`talk`), that order within: what
        people ask for and are suggested in conversation, before anyone has named a film (on the
        ReDial-train inner split, Recall@10 of such turns 0.073 -> 0.127; ``bench/redial.py``).
        The explanations still state only the rating facts (:meth:`facts`).
        """
        base = self.quality + np.where(self.popular, 10.0 * (np.ptp(self.quality) + 1.0), 0.0)
        if not self.talk.any():
            return base
        return base + (np.ptp(base) + 1.0) * np.log1p(self.talk)

    # -- one to three liked films ----------------------------------------------------------------

    def views(self, seeds: Sequence[int], agents: np.ndarray | None) -> dict[str, np.ndarray]:
        """Each view's raw score of every item for the seed films."""
        seeds = [int(s) for s in seeds]
        co = np.asarray((self._columns @ self._columns[seeds].T).sum(axis=1)).ravel()
        together = np.asarray((self._raw_columns @ self._raw_columns[seeds].T).sum(axis=1)).ravel()
        genre = (self._genre_vectors @ self._genre_vectors[seeds].T).sum(axis=1)
        people = np.zeros(len(self.genres))
        for seed in seeds:
            crew = self.people[seed]
            if crew:
                people += np.array([len(crew & p) for p in self.people], dtype=np.float64)
        text = self._text @ _unit(self._text[seeds].mean(axis=0))
        views = {
            "co": co,
            # damped lift: how much more than everyone the seeds' fans chose it
            "lift": together / (self.chosen + PRIOR_COUNT),
            "genre": genre / max(1, len(seeds)),
            "people": people,
            "text": text,
            "quality": self.quality,
            "popularity": self.chosen,
        }
        if agents is not None:
            views["agents"] = np.asarray(agents, dtype=np.float64)
        return views

    def blend(
        self,
        seeds: Sequence[int],
        agents: np.ndarray | None,
        weights: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """The weighted sum of each view's percentile (higher is better)."""
        weights = BLEND_WEIGHTS if weights is None else weights
        views = self.views(seeds, agents)
        total = np.zeros(len(self.genres))
        for name, weight in weights.items():
            if weight and name in views:
                total += weight * _percentile(views[name])
        return total

    def distinctive(self, seed: int) -> list[str]:
        """A seed's genres that say what kind of film it is, rarest first.

        Its genres carried by less than :data:`BROAD_SHARE` of the catalog: Fargo (Crime,
        Drama, Thriller) -> [Crime, Thriller]; Drama (43% of ML-100K) and Comedy (30%) are too
        broad to make two films alike. A film with only broad genres keeps its rarest one.
        """
        mine = sorted(self.genres[int(seed)], key=lambda g: (self.genre_count.get(g, 0), g))
        n_items = max(1, len(self.genres))
        narrow = [g for g in mine if self.genre_count.get(g, 0) < BROAD_SHARE * n_items]
        return narrow or mine[:1]

    def kind(self, seeds: Sequence[int]) -> np.ndarray:
        """Per item, how much of the seeds' kind it shares.

        Summed over the seeds: 1 for the seed's rarest :meth:`distinctive` genre, else 0.5 for
        another of them. The rarest genre defines the kind best: after The Godfather (Action,
        Crime, Drama) crime films come before action films.
        """
        out = np.zeros(len(self.genres))
        for seed in seeds:
            special = self.distinctive(seed)
            if special:
                first, rest = special[0], set(special[1:])
                out += np.fromiter(
                    (1.0 if first in g else 0.5 if g & rest else 0.0 for g in self.genres),
                    dtype=np.float64,
                )
        return out

    def keep_kind(
        self, seeds: Sequence[int], scores: np.ndarray, weight: float | None = None
    ) -> np.ndarray:
        """``scores`` plus ``weight`` (default :data:`KIND_WEIGHT`) times :meth:`kind`.

        For a profile whose every seed a hard constraint excludes (see the module docstring).
        An infinite weight orders by kind first and blend within ("Fargo and Pulp Fiction, but
        from the 80s": the 1980s crime films, then the thrillers, then the rest).
        """
        weight = KIND_WEIGHT if weight is None else weight
        kind = self.kind(seeds)
        finite = scores[np.isfinite(scores)]
        if not weight or not kind.any() or not len(finite):
            return scores
        if np.isinf(weight):
            # kind moves in steps of 0.5: each step must outweigh the whole spread of the blend
            return scores + 2.0 * kind * (float(np.ptp(finite)) + 1.0)
        return scores + weight * kind

    # -- facts -----------------------------------------------------------------------------------

    def facts(self, item: int) -> dict[str, float]:
        """What is true of an item in the train data: ratings, mean rating, popular (1/0)."""
        out = {"ratings": float(self.counts[item]), "popular": float(bool(self.popular[item]))}
        mean = self.mean_rating[item]
        if np.isfinite(mean):
            out["mean_rating"] = round(float(mean), 2)
        return out


def diversify(
    items: Sequence[int],
    scores: np.ndarray,
    genres: Sequence[set[str]],
    k: int,
    trade_off: float = 0.3,
) -> list[int]:
    """Greedy genre MMR over ``items`` (best first): relevance minus overlap with those picked.

    Relevance is the item's score scaled to ``[0, 1]`` over ``items``; overlap is the largest
    genre Jaccard with an already picked item. A cold list should not be five dramas.
    """
    pool = [int(i) for i in items]
    if len(pool) <= 1 or k <= 1:
        return pool[:k]
    values = np.array([float(scores[i]) for i in pool])
    spread = float(np.ptp(values)) or 1.0
    relevance = (values - values.min()) / spread
    chosen = [0]
    closest = np.zeros(len(pool))
    while len(chosen) < min(k, len(pool)):
        last = genres[pool[chosen[-1]]]
        for j, item in enumerate(pool):
            mine = genres[item]
            if mine and last:
                closest[j] = max(closest[j], len(mine & last) / len(mine | last))
        gain = (1 - trade_off) * relevance - trade_off * closest
        gain[chosen] = -np.inf
        chosen.append(int(np.argmax(gain)))
    return [pool[j] for j in chosen]
