"""The ranking agent: re-ranks candidates with what every other agent knows, and says why.

Features per (user, candidate):
- ``user``: the user-profile agent's own score of the item: its published user vector times the
  decoder it publishes beside it (:data:`~recagents.agents.base.USER_DECODER`), i.e. its own
  model's ranking; where no decoder is published (a sharded user agent, a model saved before
  decoders were published) the user-profile x item agents' dot product (their published vectors);
- ``history``: similarity to the user's history through an item-item model the ranking agent fits
  itself (closed-form EASE, Steck 2019), which also yields the evidence "because you liked X";
- ``text``: cosine between the user's history text and the item text (the language model);
- popularity, history length and the candidate's preliminary rank.

A small MLP learns to combine them with a listwise softmax loss on a per-user hold-out carved out
of train (never the valid split), so it learns how far to trust each peer on scores it did not see
being fitted.

From dialogue corpora (``train --with-dialogues``, :mod:`recagents.data.union`): the item-item
model counts every dialogue as a weighted user (films named in one conversation co-occur:
``X' W X``), popularity counts mentions, and a dialogue's hold-out is the last suggestion the
seeker accepted, so the MLP learns which suggestion was taken given the films named before it
(the ones turned down are not positives); its ``activity`` feature tells a five-film dialogue
from a hundred-rating user.

At scale (issue 13): past :data:`~recagents.agents.item_item.DENSE_ITEM_LIMIT` items the history
model is sparse top-k cosine neighbours instead of EASE (:mod:`recagents.agents.item_item`, the
same fit the item agent's own model uses; option ``item_item``: ``auto`` | ``dense`` |
``sparse``). Features are computed in user blocks of
at most :data:`BLOCK_CELLS` users x items cells, and ``holdout_users`` (0: all) caps how many
hold-out users the 7-feature MLP learns from. Below the limit, with the defaults, nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recagents.agents.base import (
    ITEM,
    USER,
    USER_DECODER,
    Agent,
    AgentConfig,
    Explainer,
    TrainContext,
    peer_key,
)
from recagents.agents.item_item import (
    fit_item_item,
    history_scores,
    weighted_rows,
)
from recagents.agents.registry import register
from recagents.agents.train_state import load_optimizer_arrays, optimizer_arrays
from recagents.eval.metrics import top_k
from recagents.types import Contribution, Evidence

logger = logging.getLogger(__name__)

FEATURES = ("user_z", "history_z", "history_gap", "text", "popularity", "activity", "prelim_rank")
#: How far below the lowest learned score the best non-candidate lands.
_BELOW = 1.0
#: Users x items cells of one feature block (a 16M-cell float64 block is 128 MB); MovieLens and
#: the test catalogs fit in one block, so their features are computed exactly as before.
BLOCK_CELLS = 2**24


def _zscore(matrix: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """Per-row z-score over the items a user has *not* seen.

    Seen items carry in-sample scores whose size depends on what the model was fitted on;
    leaving them out keeps the features stable when the history model is refitted.
    """
    if seen is None:
        mean = matrix.mean(axis=1, keepdims=True)
        std = matrix.std(axis=1, keepdims=True)
    else:
        masked = np.where(seen, np.nan, matrix)
        mean = np.nanmean(masked, axis=1, keepdims=True)
        std = np.nanstd(masked, axis=1, keepdims=True)
    return (matrix - mean) / (std + 1e-9)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)


@register
class RankingAgent(Agent):
    """Learned re-ranker over the peers' candidates, with per-item evidence."""

    name = "ranking"
    order = 90
    publishes = None
    consumes = (USER, ITEM, USER_DECODER)
    scores = True
    learns_from_holdout = True
    #: Whether the ``user`` feature is the user agent's own decoder score (models trained since
    #: decoders were published) or the towers' dot product (models saved before: their MLP
    #: learned on that).
    decoder_feature = True

    @classmethod
    def default_config(cls) -> AgentConfig:
        """EASE lambda 400 was best on ML-100K valid (RecBole's default is 250); 100 candidates."""
        return AgentConfig(
            epochs=150,
            lr=3e-3,
            weight_decay=1e-5,
            dropout=0.0,
            batch_size=0,
            options={"candidates": 100, "ease_reg": 400.0, "hidden": 32, "reset_each_round": True},
        )

    def setup(self, context: TrainContext) -> None:
        """Fit the history model on ``fit`` and initialise the MLP."""
        torch.manual_seed(context.seed + 2)
        self.context = context
        self.refit_history(context.fit)
        self._new_mlp(context.seed)
        self.rounds_trained = 0
        self.decoder_feature = True

    def _new_mlp(self, seed: int) -> None:
        torch.manual_seed(seed + 2)
        hidden = int(self.config.options.get("hidden", 32))
        self.mlp = nn.Sequential(nn.Linear(len(FEATURES), hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.optimizer = torch.optim.Adam(
            self.mlp.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )

    def refit_history(self, matrix: sp.csr_matrix) -> None:
        """Refit the item-item history model and popularity on ``matrix`` (closed form).

        Training fits them on ``fit``; before serving the coordinator refits on all of train.
        Users count by their training weight (a union's dialogue users, :mod:`recagents.data.
        union`): the Gram matrix is ``X' W X`` (:func:`~recagents.agents.item_item.weighted_rows`)
        and popularity the weighted count.
        """
        rows = weighted_rows(matrix, self.context)
        self.item_item: np.ndarray | sp.csr_matrix = fit_item_item(
            rows, self.config.options, "ranking", 250.0
        )
        counts = np.asarray(rows.multiply(rows).sum(axis=0)).ravel()
        self.popularity = np.log1p(counts) / max(1.0, float(np.log1p(counts.max())))

    def history_weights(self, history: np.ndarray, item: int) -> np.ndarray:
        """Item-item weights from each of ``history``'s items towards ``item`` (dense or sparse)."""
        if sp.issparse(self.item_item):
            return np.asarray(self.item_item[history, item].todense(), dtype=np.float32).ravel()
        return np.asarray(self.item_item[history, item])

    # -- features ----------------------------------------------------------------------------

    def user_scores(
        self,
        vectors: np.ndarray,
        peers: Mapping[str, np.ndarray],
        items: slice | list[int] = slice(None),
    ) -> np.ndarray | None:
        """Published user ``vectors`` against ``items``' rows (+ bias); ``None`` without them.

        The rows are the user agent's own decoder where it is read (and this model learned on
        it), else the item agent's vectors: the feature :meth:`_prelim` z-scores and the taste
        score :meth:`explain` reports are the same numbers.
        """
        kind = USER_DECODER if self.decoder_feature and USER_DECODER in peers else ITEM
        if kind not in peers:
            return None
        scores = vectors @ peers[kind][items].T
        bias = peers.get(peer_key(kind, "bias"))
        return scores if bias is None else scores + bias[items]

    def _prelim(
        self, users: np.ndarray, peers: Mapping[str, np.ndarray], matrix: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        seen = np.asarray(matrix[users].todense()) > 0
        history = _zscore(history_scores(self.item_item, matrix[users]), seen)
        tower = None if USER not in peers else self.user_scores(peers[USER][users], peers)
        if tower is not None:
            tower = _zscore(tower, seen)
        prelim = history + (tower if tower is not None else 0.0)
        return prelim, history, tower, seen

    def features(
        self,
        users: np.ndarray,
        peers: Mapping[str, np.ndarray],
        matrix: sp.csr_matrix,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates (users x C), their features (users x C x F) and preliminary scores.

        Computed in blocks of users (:data:`BLOCK_CELLS`); the preliminary scores are users x
        items, so callers over many users use :meth:`candidate_features`.
        """
        blocks = [self._features(block, peers, matrix) for block in self._blocks(users, matrix)]
        if len(blocks) == 1:
            return blocks[0]
        cands, feats, prelim = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
        return cands, feats, prelim

    def candidate_features(
        self, users: np.ndarray, peers: Mapping[str, np.ndarray], matrix: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates and features of many users, block by block, without the dense prelims."""
        blocks = [self._features(b, peers, matrix)[:2] for b in self._blocks(users, matrix)]
        if len(blocks) == 1:
            return blocks[0]
        return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])

    @staticmethod
    def _blocks(users: np.ndarray, matrix: sp.csr_matrix) -> list[np.ndarray]:
        rows = max(1, BLOCK_CELLS // max(1, matrix.shape[1]))
        users = np.asarray(users)
        return [users[start : start + rows] for start in range(0, max(1, len(users)), rows)]

    def _features(
        self, users: np.ndarray, peers: Mapping[str, np.ndarray], matrix: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.context is not None
        prelim, history, tower, seen = self._prelim(users, peers, matrix)
        masked = np.where(seen, -np.inf, prelim)
        n_cand = min(int(self.config.options.get("candidates", 100)), matrix.shape[1])
        cands = top_k(masked, n_cand)
        rows = np.arange(len(users))[:, None]
        counts = np.asarray(matrix[users].sum(axis=1)).ravel()
        user_text = _unit(np.asarray(matrix[users] @ self.context.item_text))
        item_text = _unit(self.context.item_text)
        text = np.einsum("ud,ucd->uc", user_text, item_text[cands])
        top = history[rows, cands[:, :1]]
        cols = [
            tower[rows, cands] if tower is not None else np.zeros(cands.shape),
            history[rows, cands],
            history[rows, cands] - top,
            text,
            self.popularity[cands],
            np.broadcast_to((np.log1p(counts) / 7.0)[:, None], cands.shape),
            np.broadcast_to(np.log1p(np.arange(n_cand))[None, :] / 5.0, cands.shape),
        ]
        return cands, np.stack(cols, axis=-1).astype(np.float32), prelim

    # -- learning ----------------------------------------------------------------------------

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Learn to rank the hold-out items among candidates drawn from ``fit``."""
        holdout = context.holdout
        users = np.flatnonzero(np.diff(holdout.indptr))
        if len(users) == 0:
            self.rounds_trained += 1
            return {"loss": 0.0, "users": 0}
        cap = int(self.config.options.get("holdout_users", 0) or 0)
        if 0 < cap < len(users):  # the same sample every round: the MLP has 7 inputs
            users = np.sort(np.random.default_rng(context.seed).choice(users, cap, replace=False))
        cands, feats = self.candidate_features(users, peers, context.fit)
        labels = np.asarray(holdout[users[:, None], cands].todense(), dtype=np.float32)
        keep = labels.sum(axis=1) > 0
        x = torch.from_numpy(feats[keep])
        y = torch.from_numpy(labels[keep])
        # A union's dialogue users weigh apart (data.union): what their accepted suggestions
        # teach counts as much as their weight says. All weights 1: the plain micro-average.
        w = None if context.user_weight is None else torch.from_numpy(context.weights(users[keep]))
        if self.config.options.get("reset_each_round", True):
            # The peers' vectors moved since last round: relearn how far to trust them.
            self._new_mlp(context.seed + self.rounds_trained)
        self.mlp.train()
        loss = torch.tensor(0.0)
        for _ in range(self.config.epochs):
            logits = self.mlp(x).squeeze(-1)
            if w is None:  # a catalog-only run: the plain micro-average, as before unions
                loss = -(torch.log_softmax(logits, dim=1) * y).sum() / y.sum()
            else:
                per_user = -(torch.log_softmax(logits, dim=1) * y).sum(1)
                loss = (per_user * w).sum() / (y.sum(1) * w).sum()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.rounds_trained += 1
        recall = float(labels.sum() / max(1.0, holdout[users].sum()))
        return {
            "loss": self.check_loss(float(loss.detach()), self.name),
            "users": int(keep.sum()),
            "candidate_recall": round(recall, 4),
        }

    @torch.no_grad()
    def score(
        self, users: np.ndarray, peers: Mapping[str, np.ndarray], matrix: sp.csr_matrix
    ) -> np.ndarray:
        """Learned scores for candidates; other items keep their preliminary order just below.

        Non-candidates are shifted, per user, so the best of them sits ``_BELOW`` under the
        lowest learned score: the order is the same as with a huge constant offset, but every
        score stays finite and of the same size as the learned ones, so nothing downstream (a
        constrained list reaching past the candidates, a percentile, an API field) ever sees a
        sentinel like -1e9.
        """
        users = np.asarray(users)
        cands, feats, prelim = self.features(users, peers, matrix)
        self.mlp.eval()
        learned = self.mlp(torch.from_numpy(feats)).squeeze(-1).numpy().astype(np.float64)
        out = prelim.astype(np.float64)
        is_cand = np.zeros(out.shape, dtype=bool)
        np.put_along_axis(is_cand, cands, True, axis=1)
        rest_top = np.where(is_cand, -np.inf, out).max(axis=1, keepdims=True)
        rest_top = np.where(np.isfinite(rest_top), rest_top, 0.0)
        out = out - rest_top + learned.min(axis=1, keepdims=True) - _BELOW
        np.put_along_axis(out, cands, learned, axis=1)
        return out

    # -- evidence ----------------------------------------------------------------------------

    def explainer(self) -> Explainer:
        """The ranking agent explains its own scores (:meth:`explain`)."""
        return self

    def explain(
        self,
        user_history: np.ndarray,
        item: int,
        peers_user: np.ndarray | None,
        peers: Mapping[str, np.ndarray],
        final_score: float | None = None,
        top: int = 3,
    ) -> Evidence:
        """Structured reasons (see :class:`~recagents.agents.base.Explainer` for the arguments).

        The user's items with the largest item-item weights towards ``item`` ("because you
        liked X"), the attributes it shares with them, and each view's score of the item.
        """
        assert self.context is not None
        dataset = self.context.dataset
        history = np.asarray(user_history, dtype=np.int64)
        weights = self.history_weights(history, item) if len(history) else np.zeros(0)
        order = np.argsort(-weights)[:top]
        because = tuple(
            Contribution(
                dataset.item_map.external(int(history[i])),
                dataset.item_title(int(history[i])),
                round(float(weights[i]), 4),
            )
            for i in order
            if weights[i] > 0
        )
        scores: dict[str, float] = {
            "history": round(float(weights.sum()), 4),
            "popularity": round(float(self.popularity[item]), 4),
        }
        if len(history):
            user_text = _unit(self.context.item_text[history].mean(axis=0))
            scores["text"] = round(float(user_text @ _unit(self.context.item_text[item])), 4)
        tower = None if peers_user is None else self.user_scores(peers_user, peers, [item])
        if tower is not None:  # the taste-profile view the ranking used
            scores["tower"] = round(float(tower[0]), 4)
        if final_score is not None:
            scores["final"] = round(float(final_score), 4)
        return Evidence(because, shared_attributes(dataset, item, history[order]), scores)

    # -- persistence -------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        """MLP weights plus the fitted history model."""
        arrays = {f"mlp.{k}": v.detach().numpy() for k, v in self.mlp.state_dict().items()}
        if sp.issparse(self.item_item):  # the sparse form: its CSR arrays
            weights = sp.csr_matrix(self.item_item)
            arrays["item_item.data"] = weights.data
            arrays["item_item.indices"] = weights.indices
            arrays["item_item.indptr"] = weights.indptr
            arrays["item_item.shape"] = np.array(weights.shape, dtype=np.int64)
        else:
            arrays["item_item"] = self.item_item
        arrays["popularity"] = self.popularity
        arrays["decoder_feature"] = np.array([int(self.decoder_feature)])
        return arrays

    def training_state(self) -> dict[str, np.ndarray]:
        """Adam's moments (they matter only when the MLP is kept across rounds)."""
        return optimizer_arrays(self.optimizer)

    def load_training_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Put the saved moments into the optimiser :meth:`load_state` rebuilt."""
        load_optimizer_arrays(self.optimizer, arrays)

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore MLP and history model."""
        self.setup(context)
        self.mlp.load_state_dict(
            {
                k[4:]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith("mlp.")
            }
        )
        if "item_item.shape" in arrays:
            shape = tuple(int(n) for n in arrays["item_item.shape"])
            self.item_item = sp.csr_matrix(
                (
                    np.array(arrays["item_item.data"]),
                    np.array(arrays["item_item.indices"]),
                    np.array(arrays["item_item.indptr"]),
                ),
                shape=shape,
            )
        else:
            self.item_item = np.array(arrays["item_item"])
        self.popularity = np.array(arrays["popularity"])
        self.decoder_feature = bool(np.asarray(arrays.get("decoder_feature", [0])).ravel()[0])


_ATTRIBUTES: dict[int, list[dict[str, set[str]]]] = {}


def _item_attributes(dataset) -> list[dict[str, set[str]]]:  # type: ignore[no-untyped-def]
    """Per-item genre and people sets, built once per dataset (evidence runs on every turn)."""
    key = id(dataset.items)
    if key not in _ATTRIBUTES:
        frame = dataset.items
        _ATTRIBUTES.clear()
        _ATTRIBUTES[key] = [
            {
                "genre": {g for g in str(genres).split("|") if g},
                "director": {p.strip() for p in str(director).split(",") if p.strip()},
                "cast": {p.strip() for p in str(cast).split(",") if p.strip()},
            }
            for genres, director, cast in zip(
                frame["genres"], frame["director"], frame["cast"], strict=True
            )
        ]
    return _ATTRIBUTES[key]


def _cast_order(dataset, item: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Each cast member's rank on the item's fact sheet (datasets without sheets: none)."""
    sheet = getattr(dataset, "fact_sheet", None)
    if sheet is None:
        return {}
    return {name: rank for rank, name in enumerate(sheet(item).cast)}


def shared_attributes(dataset, item: int, liked: np.ndarray) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """Genres and people the item shares with the given liked items.

    Shared cast comes in the item's fact-sheet order (most prominent first), not alphabetically:
    the template names the first two, and for The Godfather that should be Al Pacino, not Abe
    Vigoda and Al Martino.
    """
    attributes = _item_attributes(dataset)
    mine = attributes[int(item)]
    billing = _cast_order(dataset, int(item))
    found: list[str] = []
    for other in liked:
        theirs = attributes[int(other)]
        for column in ("genre", "director", "cast"):
            for value in sorted(mine[column] & theirs[column]):
                found.append(f"{column}: {value}")
    cast = sorted(
        (f for f in found if f.startswith("cast: ")),
        key=lambda f: billing.get(f[len("cast: ") :], len(billing)),
    )
    found = [f for f in found if not f.startswith("cast: ")] + cast
    return tuple(dict.fromkeys(found))
