"""The user-profile agent (user tower) and the item agent (item tower).

Both start from the language model: item vectors are the items' text embeddings, and a user's
vector is the mean of their history's item texts plus their own description's embedding. In each
round one tower trains with the other's published vectors frozen (the multinomial likelihood of
Mult-DAE, Liang et al. 2018), so the two learn from each other only through the store, like the
two half-steps of alternating least squares.

Cold start is built in: a new item's vector is its text through the item agent's learned map; a
new user's vector comes from the items they mention and their own words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recagents.agents.base import (
    ITEM,
    ITEM_BIAS,
    USER,
    USER_DECODER,
    Agent,
    AgentConfig,
    Publication,
    ReplicaWeights,
    TrainContext,
)
from recagents.agents.item_item import fit_item_item, history_scores, weighted_rows
from recagents.agents.registry import register
from recagents.agents.train_state import load_optimizer_arrays, optimizer_arrays
from recagents.vectorstore.schema import item_metadata

logger = logging.getLogger(__name__)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


#: Users encoded at once when publishing: one dense ``rows x items`` block, never ``users x items``
#: (at 10^5 users x 10^4 items the whole matrix would be 4 GB). Large enough that MovieLens and
#: the test catalogs encode in one block, as before.
ENCODE_ROWS = 4096
#: ... and at most this many users x items cells per block (64 MB of float32): at 10^5 items
#: 4,096 rows alone were 1.6 GB per block (measured: item replicas peaked at 3.2 GB).
ENCODE_CELLS = 2**24
#: The item agent's state entry saying its item-item model was fitted on all of train.
ITEM_ITEM_FLAG = "item_item_on_train"


def block_rows(n_items: int) -> int:
    """Users per block of a users x items computation: :data:`ENCODE_ROWS`, fewer for wide rows."""
    return max(1, min(ENCODE_ROWS, ENCODE_CELLS // max(1, int(n_items))))


def _csr_to_torch(matrix: sp.csr_matrix) -> torch.Tensor:
    """Dense float32 tensor of a (small) sparse block: only ever a batch's rows."""
    return torch.from_numpy(np.asarray(matrix.todense(), dtype=np.float32))


def _multinomial_nll(
    logits: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mult-DAE's loss: each user's interactions under a softmax over all items.

    ``weights`` (one per row) weigh users apart: a dialogue user of a union
    (:mod:`recagents.data.union`) counts as much as its weight says, not as one more row.
    """
    per_user = -(torch.log_softmax(logits, 1) * rows).sum(1).div(rows.sum(1))
    if weights is None:
        return per_user.mean()
    return (per_user * weights).sum() / weights.sum()


def _frozen_logsumexp(
    users: torch.Tensor, vectors: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Each user's log-sum-exp over the logits of frozen items (``-inf`` when there are none).

    Computed :func:`block_rows` users at a time: never a users x items block.
    """
    if len(vectors) == 0:
        return torch.full((len(users),), float("-inf"))
    rows = block_rows(len(vectors))
    return torch.cat(
        [
            torch.logsumexp(users[start : start + rows] @ vectors.T + bias, 1)
            for start in range(0, len(users), rows)
        ]
    )


def _weights(context: TrainContext, users: np.ndarray) -> torch.Tensor | None:
    """The users' training weights, or ``None`` without a union (the plain mean, bit for bit)."""
    if context.user_weight is None:
        return None
    return torch.from_numpy(context.weights(users))


def seed_user_vectors(context: TrainContext, matrix: sp.csr_matrix | None = None) -> np.ndarray:
    """Text-only user vectors: mean text of the user's items plus their own description."""
    matrix = context.fit if matrix is None else matrix
    counts = np.maximum(np.asarray(matrix.sum(axis=1)).ravel(), 1.0)[:, None]
    history = (matrix @ context.item_text) / counts
    return (history + 0.5 * context.user_text[: matrix.shape[0]]).astype(np.float32)


def catalog_metadata(context: TrainContext) -> list[dict[str, Any]]:
    """The serving item collection's per-item metadata (layout owned by the store's schema)."""
    return item_metadata(context.dataset.items)


def text_seed(context: TrainContext, kind: str, matrix: sp.csr_matrix) -> Publication:
    """The language model's vectors of ``kind``: what serves when no role publishes that kind.

    Users are conditioned on ``matrix`` (:func:`seed_user_vectors`); items are their texts, with
    the catalog metadata the serving collection needs and no learned extras.
    """
    if kind == USER:
        vectors = seed_user_vectors(context, matrix)[np.arange(context.n_users)]
        return Publication(USER, vectors, np.arange(context.n_users))
    rows = np.arange(context.n_items)
    return Publication(ITEM, context.item_text, rows, metadata=catalog_metadata(context))


class _UserTower(nn.Module):
    """The user tower's weights; per-user rows only for the users it owns.

    Replica ``shard`` of ``shards`` owns the users ``shard, shard + shards, ...``: user ``u``'s
    row is ``u // shards``. So a replica's per-user tables (residuals, their Adam moments, text
    vectors) are ``1 / shards`` of the user table, and one tower (``shards = 1``) indexes users
    as they are.
    """

    def __init__(
        self, item_text: np.ndarray, user_text: np.ndarray, shard: int = 0, shards: int = 1
    ) -> None:
        super().__init__()
        dim = item_text.shape[1]
        self.shards = shards
        own = user_text[shard::shards] if shards > 1 else user_text
        self.item_in = nn.Parameter(torch.from_numpy(item_text.astype(np.float32)).clone())
        self.history_map = nn.Parameter(torch.eye(dim) * 8.0)
        self.text_map = nn.Parameter(torch.eye(dim) * 2.0)
        self.user_residual = nn.Parameter(torch.zeros(len(own), dim))
        self.register_buffer("user_text", torch.from_numpy(own.astype(np.float32)))
        # Its own decoder: the user agent ranks items by itself (an autoencoder over histories),
        # seeded like everything else from the item texts and pulled towards the item agent's
        # published vectors while it collaborates.
        self.item_out = nn.Parameter(torch.from_numpy(item_text.astype(np.float32)).clone())
        self.item_bias = nn.Parameter(torch.zeros(item_text.shape[0]))

    def rows(self, users: torch.Tensor) -> torch.Tensor:
        """Rows of the per-user tables for (owned) ``users``."""
        return users // self.shards if self.shards > 1 else users

    def forward(
        self, users: torch.Tensor, history: torch.Tensor, dropout: float = 0.0
    ) -> torch.Tensor:
        if dropout > 0:
            history = nn.functional.dropout(history, dropout) * (1 - dropout)
        counts = history.sum(1, keepdim=True).clamp_min(1.0)
        bag = (history @ self.item_in) / counts
        rows = self.rows(users)
        return (
            bag @ self.history_map.T
            + self.user_text[rows] @ self.text_map.T
            + self.user_residual[rows]
        )


class _ItemTower(nn.Module):
    def __init__(self, item_text: np.ndarray) -> None:
        super().__init__()
        dim = item_text.shape[1]
        self.register_buffer("item_text", torch.from_numpy(item_text.astype(np.float32)))
        self.text_map = nn.Parameter(torch.eye(dim))
        self.residual = nn.Parameter(torch.zeros(item_text.shape[0], dim))
        self.bias = nn.Parameter(torch.zeros(item_text.shape[0]))

    def forward(self) -> torch.Tensor:
        return self.item_text @ self.text_map.T + self.residual


class _Tower(Agent):
    """What both towers share: an Adam-trained model, the epoch loop, persistence.

    Class attributes:
        seed_offset: Added to the context's seed for initialisation, so the towers differ.
        shuffle_offset: Added to the seed of each round's batch order.
        context_buffers: Model buffers rebuilt from the context, hence not saved.
    """

    seed_offset: ClassVar[int] = 0
    shuffle_offset: ClassVar[int] = 0
    context_buffers: ClassVar[tuple[str, ...]] = ()
    model: nn.Module

    @classmethod
    def tower_config(cls, *, dropout: float, residual_l2: float) -> AgentConfig:
        """The towers' common defaults, chosen together on ML-100K valid (seed 2020)."""
        return AgentConfig(
            epochs=10,
            lr=1e-3,
            weight_decay=0.0,
            dropout=dropout,
            batch_size=256,
            options={"residual_l2": residual_l2},
        )

    def build(self, context: TrainContext) -> nn.Module:
        """A fresh model seeded from the context's texts."""
        raise NotImplementedError

    def setup(self, context: TrainContext) -> None:
        """(Re)build the model from the text seed, with a fresh optimiser."""
        torch.manual_seed(context.seed + self.seed_offset)
        self.context = context
        self.model = self.build(context)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.rounds_trained = 0

    def train_epochs(
        self, context: TrainContext, n_rows: int, batch_loss: Callable[[torch.Tensor], torch.Tensor]
    ) -> float:
        """Run the round's epochs over ``n_rows`` shuffled rows; return the mean batch loss.

        ``batch_loss`` maps a batch of row positions to its loss; the loop, the seeding of the
        batch order (per round, so reruns repeat) and the NaN check are the same for both towers.
        """
        generator = _generator(context.seed + self.shuffle_offset + 1000 * self.rounds_trained)
        losses = []
        self.model.train()
        for _ in range(self.config.epochs):
            order = torch.randperm(n_rows, generator=generator)
            for start in range(0, n_rows, self.config.batch_size):
                loss = batch_loss(order[start : start + self.config.batch_size])
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
        self.rounds_trained += 1
        return self.check_loss(float(np.mean(losses)), self.name)

    def state(self) -> dict[str, np.ndarray]:
        """Weights as named arrays (buffers rebuilt from the context are left out)."""
        return {
            k: v.detach().numpy()
            for k, v in self.model.state_dict().items()
            if k not in self.context_buffers
        }

    def training_state(self) -> dict[str, np.ndarray]:
        """Adam's moments: they carry from round to round (the optimiser is built once)."""
        return optimizer_arrays(self.optimizer)

    def load_training_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Put the saved moments into the optimiser :meth:`load_state` rebuilt."""
        load_optimizer_arrays(self.optimizer, arrays)

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Rebuild the tower and load weights."""
        self.setup(context)
        state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        buffers = dict(self.model.named_buffers())
        state.update({k: buffers[k] for k in self.context_buffers})
        self.model.load_state_dict(state)


@register
class UserProfileAgent(_Tower):
    """User tower: encodes a user's history and description into a vector.

    From dialogue corpora (``train --with-dialogues``, :mod:`recagents.data.union`): each
    dialogue is a user whose history is the films named in it (minus those the seeker turned
    down) and whose description is the seeker's words, weighted in the loss; so the map from a
    handful of films and a request to a vector, the one a cold chat user gets, is fitted on
    real requests too.

    Options: ``shard`` / ``shards`` (data-parallel replicas own ``user % shards == shard``).
    """

    name = "user_profile"
    order = 10
    publishes = USER
    #: Its own decoder rides with its user vectors (only in runs where a peer reads it).
    companions = {USER_DECODER: ("bias",)}
    consumes = (ITEM,)
    shards_by = USER
    user_arrays = ("user_residual",)  # one learned row per user; the maps are shared
    # Each user's text embedding comes from the context (a grown user table brings new texts);
    # a checkpoint saved with it still loads (the context's copy wins).
    context_buffers = ("user_text",)
    model: _UserTower
    #: False for a model loaded from a checkpoint saved before the tower had a decoder, until
    #: it trains one.
    decoder_learned = True

    @classmethod
    def default_config(cls) -> AgentConfig:
        """Chosen on ML-100K valid: longer rounds or weaker penalties overfit.

        ``solo_dropout``: the input dropout when no item agent publishes, so its loss has one
        likelihood term instead of two (the ``agents-user_profile`` ablation). On valid NDCG@10
        over seeds 2020, 1, 2 the agent alone is best at 0.75 (0.2480 / 0.2514 / 0.2504 vs
        0.2380 / 0.2457 / 0.2462 at 0.5; 0.65 and 0.85 between), while the full collaboration is
        best at 0.5 (0.2621 / 0.2694 / 0.2658 vs 0.2618 / 0.2692 / 0.2642 at 0.75).
        """
        config = cls.tower_config(dropout=0.5, residual_l2=1.0)
        config.options["solo_dropout"] = 0.75
        return config

    def build(self, context: TrainContext) -> _UserTower:
        """Pure text: item_in = item texts, history/text maps = scaled identity, no residual.

        A replica holds per-user rows for its own users only.
        """
        shard, shards = self.shard()
        return _UserTower(context.item_text, context.user_text, shard, shards)

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Rebuild and load; a replica given every user's rows keeps its own.

        (Replicas saved by earlier versions held the whole user table.)
        """
        shard, shards = self.shard()
        residual = arrays.get("user_residual")
        if shards > 1 and residual is not None and len(residual) == context.n_users:
            arrays = {**arrays, "user_residual": np.asarray(residual)[shard::shards]}
        learned = "item_out" in arrays
        if not learned:  # saved before the tower had its own decoder: the seed's
            arrays = {
                **arrays,
                "item_out": context.item_text.astype(np.float32),
                "item_bias": np.zeros(context.n_items, dtype=np.float32),
            }
        super().load_state(context, arrays)
        self.decoder_learned = learned

    def setup(self, context: TrainContext) -> None:
        """The text seed; its decoder counts as learned (it is trained from the first round)."""
        super().setup(context)
        self.decoder_learned = True

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Train the tower: its own decoder, and the item agent's published vectors (frozen).

        The loss is the multinomial likelihood of each user's history under the agent's own
        decoder (``item_out``, ``item_bias``: it ranks alone, like Mult-DAE) plus, when an item
        agent publishes, the same likelihood under the item agent's vectors and biases, so the
        user vectors it publishes work with what its peer publishes (what the item agent learns
        its vectors against; the ranking agent's fallback feature where no decoder is read).
        Without a peer the input dropout is option ``solo_dropout`` (:meth:`default_config`).
        Option ``peer_prior`` (default 0) also pulls its own decoder
        towards the peer's vectors: at 1 it left valid NDCG@10 as it was on ML-100K (0.2615 vs
        0.2613, 0.2662 vs 0.2666 on seeds 2020 and 1) and cost cold items (Recall@10 0.178 vs
        0.191), so it is off by default.
        """
        items = peers.get(ITEM)
        peer = None
        if items is not None:
            peer = (
                torch.from_numpy(items.astype(np.float32)),
                torch.from_numpy(
                    peers.get(ITEM_BIAS, np.zeros(context.n_items)).astype(np.float32)
                ),
            )
        users = self.owned_rows(context)
        users = users[np.asarray(context.fit[users].sum(axis=1)).ravel() > 0]
        # Kept sparse; each batch densifies its own rows only (the same numbers as densifying
        # the whole matrix up front, without users x items floats in memory).
        target = context.fit[users]
        weights = _weights(context, users)
        reg = float(self.config.options.get("residual_l2", 0.0))
        peer_weight = float(self.config.options.get("peer_weight", 1.0))
        prior = float(self.config.options.get("peer_prior", 0.0))
        dropout = self.config.dropout
        if peer is None:
            dropout = float(self.config.options.get("solo_dropout", dropout))

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            batch_users = torch.from_numpy(users[idx.numpy()])
            rows = _csr_to_torch(target[idx.numpy()])
            w = None if weights is None else weights[idx]
            vec = self.model(batch_users, rows, dropout)
            own = vec @ self.model.item_out.T + self.model.item_bias
            loss = _multinomial_nll(own, rows, w)
            if peer is not None:
                loss = loss + peer_weight * _multinomial_nll(vec @ peer[0].T + peer[1], rows, w)
                if prior > 0:
                    drift = (self.model.item_out - peer[0]).pow(2).sum(1).mean()
                    loss = loss + prior * drift
            residual = self.model.user_residual[self.model.rows(batch_users)]
            return loss + reg * residual.pow(2).sum(1).mean()

        metrics = {"loss": self.train_epochs(context, len(users), batch_loss), "users": len(users)}
        self.decoder_learned = True
        return metrics

    @torch.no_grad()
    def own_scores(self, users: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray | None:
        """Every item's score for (owned) ``users`` under the agent's own decoder."""
        vectors = torch.from_numpy(self.encode(users, matrix[users]))
        return (vectors @ self.model.item_out.T + self.model.item_bias).numpy()

    @torch.no_grad()
    def encode(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Vectors of known users from a history matrix (rows aligned with ``users``).

        Encoded :func:`block_rows` users at a time, so memory grows with the block, not with
        users x items.

        Raises:
            ValueError: A replica was asked for users it does not own (it has no rows for them).
        """
        self.model.eval()
        users = np.asarray(users)
        shard, shards = self.shard()
        if shards > 1 and np.any(users % shards != shard):
            raise ValueError(f"{self.instance} holds rows for its own users only")
        rows = block_rows(history.shape[1])
        blocks = [
            self.model(
                torch.from_numpy(users[start : start + rows]),
                _csr_to_torch(history[start : start + rows]),
            ).numpy()
            for start in range(0, len(users), rows)
        ]
        if not blocks:
            return np.zeros((0, self.model.item_in.shape[1]), dtype=np.float32)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    @torch.no_grad()
    def fold_in_user(self, item_indices: np.ndarray, text_vector: np.ndarray | None) -> np.ndarray:
        """Vector of a user unknown to the model: the items they mention and their own words."""
        dim = self.model.item_in.shape[1]
        vec = torch.zeros(dim)
        if len(item_indices):
            vec += (
                self.model.item_in[torch.as_tensor(item_indices)].mean(0) @ self.model.history_map.T
            )
        if text_vector is not None:
            vec += torch.from_numpy(text_vector.astype(np.float32)) @ self.model.text_map.T
        return vec.numpy()

    def vectors(self) -> np.ndarray:
        """Every user's vector from their fit history (a replica: its own users', in order)."""
        assert self.context is not None
        users = self.owned_rows(self.context)
        return self.encode(users, self.context.fit[users])

    def publication(self) -> Publication:
        """This replica's users (all of them unless sharded), encoded from their fit history.

        With them, its own decoder (:meth:`decoder`), so a peer can rank with its own model.
        """
        assert self.context is not None
        rows = self.owned_rows(self.context)
        return Publication(
            USER, self.encode(rows, self.context.fit[rows]), rows, companions=self.decoder()
        )

    def serving(self, matrix: sp.csr_matrix) -> Publication:
        """This replica's users encoded from ``matrix`` (all of train, once training is over)."""
        assert self.context is not None
        rows = self.owned_rows(self.context)
        return Publication(USER, self.encode(rows, matrix[rows]), rows, companions=self.decoder())

    @torch.no_grad()
    def decoder(self) -> tuple[Publication, ...]:
        """The own decoder as a companion publication (:data:`USER_DECODER`: rows are items).

        Replicas publish once merged, when every one holds the same averaged decoder
        (:meth:`merge_replicas`): the first replica writes it, the others none. None from a
        model saved before the tower had a decoder (the text seed is not a model of its own).
        """
        if self.shard()[0] != 0 or not self.decoder_learned:
            return ()
        vectors = self.model.item_out.numpy().copy()
        extras = {"bias": self.model.item_bias.numpy().copy()}
        return (Publication(USER_DECODER, vectors, np.arange(len(vectors)), extras),)

    @classmethod
    def merge_replicas(cls, replicas: Sequence[Self], weights: ReplicaWeights) -> None:
        """Federated averaging: item inputs and the own decoder per item, maps by interactions.

        Per-user residuals stay where they are: each replica holds its own users' rows only.
        """
        item_w = torch.from_numpy(weights.per_row / np.sum(weights.per_row, axis=0))
        total_w = torch.tensor(weights.totals) / sum(weights.totals)
        models = [agent.model for agent in replicas]
        with torch.no_grad():
            item_in = sum(item_w[k][:, None].float() * m.item_in for k, m in enumerate(models))
            history = sum(total_w[k] * m.history_map for k, m in enumerate(models))
            text = sum(total_w[k] * m.text_map for k, m in enumerate(models))
            item_out = sum(item_w[k][:, None].float() * m.item_out for k, m in enumerate(models))
            item_bias = sum(item_w[k].float() * m.item_bias for k, m in enumerate(models))
            for model in models:
                model.item_in.copy_(item_in)
                model.history_map.copy_(history)
                model.text_map.copy_(text)
                model.item_out.copy_(item_out)
                model.item_bias.copy_(item_bias)


@register
class ItemAgent(_Tower):
    """Item tower: text embedding through a learned map, plus a collaborative residual.

    From dialogue corpora (:mod:`recagents.data.union`): films named together in one
    conversation are one (weighted) user's history, so their vectors and biases move towards
    what conversations pair and ask for (co-mentions), not only what raters pair.
    """

    name = "item"
    order = 20
    publishes = ITEM
    publishes_extras = ("bias",)
    consumes = (USER,)
    shards_by = ITEM
    seed_offset = 1
    shuffle_offset = 7
    context_buffers = ("item_text",)
    model: _ItemTower

    #: The item-item model: fitted on ``fit`` in training, refitted on all of train to serve.
    item_item: np.ndarray | sp.csr_matrix | None = None
    item_item_on_train = False

    @classmethod
    def default_config(cls) -> AgentConfig:
        """Chosen on ML-100K valid (seed 2020) with the user agent's defaults."""
        config = cls.tower_config(dropout=0.0, residual_l2=0.1)
        config.options.update({"item_item": "auto", "ease_reg": 400.0})
        return config

    def build(self, context: TrainContext) -> _ItemTower:
        """Item vectors start as the text embeddings (identity map, zero residual and bias)."""
        return _ItemTower(context.item_text)

    def setup(self, context: TrainContext) -> None:
        """The tower from the text seed, and the item-item model fitted on ``fit``."""
        super().setup(context)
        self.refit_history(context.fit)

    def refit_history(self, matrix: sp.csr_matrix) -> None:
        """Fit the agent's own item-item model on ``matrix`` (closed form).

        The ranking agent's fit (:mod:`recagents.agents.item_item`: EASE, sparse neighbours past
        20,000 items; users by their training weight), with ``item_item = "none"`` too. A
        replica of a sharded item agent holds only its items' columns, so it has none: the item
        agent ranks alone only unsharded.
        """
        options = self.config.options
        if self.shard()[1] > 1 or str(options.get("item_item", "auto")) == "none":
            self.item_item = None
        else:
            fitted = fit_item_item(
                weighted_rows(matrix, self.context), options, "item", 400.0, extra=("none",)
            )
            self.item_item = fitted if sp.issparse(fitted) else fitted.astype(np.float32)
        self.item_item_on_train = bool(self.context is not None and matrix is self.context.train)

    def state(self) -> dict[str, np.ndarray]:
        """The tower's weights and which interactions the item-item model was fitted on.

        The item-item model itself is not saved: it is closed form, refitted on load.
        """
        return {**super().state(), ITEM_ITEM_FLAG: np.array([int(self.item_item_on_train)])}

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Rebuild the tower, load its weights, refit the item-item model where it was fitted."""
        arrays = dict(arrays)
        on_train = bool(np.asarray(arrays.pop(ITEM_ITEM_FLAG, [0])).ravel()[0])
        super().load_state(context, arrays)
        if on_train:
            self.refit_history(context.train)

    def own_scores(self, users: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray | None:
        """Every item's score for ``users`` from the item-item model alone (``None``: none)."""
        if self.item_item is None:
            return None
        return history_scores(self.item_item, matrix[np.asarray(users)])

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Train item vectors and biases with the users' published vectors frozen.

        A replica (``item_shards = M``) trains its own items only, against the same full
        softmax: the other shards' items stay at their last merged values and enter each
        user's normaliser as one frozen log-sum-exp (:func:`_frozen_logsumexp`), so the gradient
        on the owned rows is the unsharded loss's gradient at that point (block-coordinate
        descent), while each replica computes logits over its own ``1 / M`` of the items.
        """
        published = peers.get(USER)
        user_vectors = published if published is not None else seed_user_vectors(context)
        rows, batch_loss = self.round_loss(context, user_vectors)
        metrics: dict[str, Any] = {"loss": self.train_epochs(context, rows, batch_loss)}
        if self.shard()[1] > 1:
            metrics["items"] = len(self.owned_rows(context))
        return metrics

    def round_loss(
        self, context: TrainContext, user_vectors: np.ndarray
    ) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]]:
        """The rows a round iterates over and the loss of a batch of them (positions)."""
        if self.shard()[1] > 1:
            return self._shard_loss(context, user_vectors)
        active = np.flatnonzero(np.asarray(context.fit.sum(axis=1)).ravel() > 0)
        users = torch.from_numpy(user_vectors[active].astype(np.float32))
        target = context.fit[active]  # sparse: each batch densifies its own rows
        weights = _weights(context, active)
        reg = float(self.config.options.get("residual_l2", 0.0))

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            logits = users[idx] @ self.model().T + self.model.bias
            rows = _csr_to_torch(target[idx.numpy()])
            loss = _multinomial_nll(logits, rows, None if weights is None else weights[idx])
            return loss + reg * self.model.residual.pow(2).sum(1).mean()

        return len(active), batch_loss

    def _shard_loss(
        self, context: TrainContext, user_vectors: np.ndarray
    ) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]]:
        """One item shard's loss (see :meth:`partial_fit`): own rows, full-softmax gradient.

        Needs only the owned items' columns of ``fit`` plus every user's history size
        (:meth:`TrainContext.history_sizes`), which is what the Ray engine gives the replica.
        """
        own = self.owned_rows(context)
        others = np.setdiff1d(np.arange(context.n_items), own)
        sizes = context.history_sizes()
        active = np.flatnonzero(sizes > 0)
        users = torch.from_numpy(user_vectors[active].astype(np.float32))
        target = sp.csr_matrix(context.fit[active][:, own])
        counts = torch.from_numpy(sizes[active].astype(np.float32))
        weights = _weights(context, active)
        reg = float(self.config.options.get("residual_l2", 0.0))
        own_t = torch.from_numpy(own)
        with torch.no_grad():
            frozen = self.model()[torch.from_numpy(others)]
            outside = _frozen_logsumexp(users, frozen, self.model.bias[torch.from_numpy(others)])
        item_text = self.model.item_text[own_t]

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            vectors = item_text @ self.model.text_map.T + self.model.residual[own_t]
            logits = users[idx] @ vectors.T + self.model.bias[own_t]
            rows = _csr_to_torch(target[idx.numpy()])
            normaliser = torch.logaddexp(torch.logsumexp(logits, 1), outside[idx])
            # The unsharded per-user loss less its frozen terms (a user's items in other shards
            # add constants): the same gradient on the rows this shard owns.
            per_user = normaliser - (logits * rows).sum(1).div(counts[idx])
            w = None if weights is None else weights[idx]
            loss = per_user.mean() if w is None else (per_user * w).sum() / w.sum()
            # The unsharded penalty is a mean over every item: each shard adds its rows' part.
            penalty = self.model.residual[own_t].pow(2).sum() / context.n_items
            return loss + reg * penalty

        return len(active), batch_loss

    @torch.no_grad()
    def vectors(self) -> np.ndarray:
        """Item vectors in id-map order."""
        return self.model().numpy()

    def biases(self) -> np.ndarray:
        """Per-item popularity-like offsets (published as the extra ``bias``)."""
        return self.model.bias.detach().numpy().copy()

    def publication(self) -> Publication:
        """Every item's vector (a replica: its own items'), with its bias as a per-row extra."""
        assert self.context is not None
        rows = self.owned_rows(self.context)
        vectors = self.vectors()[rows]
        return Publication(ITEM, vectors, rows, {"bias": self.biases()[rows]})

    def serving(self, matrix: sp.csr_matrix) -> Publication:
        """The round's vectors and biases, plus the catalog metadata the serving index filters on.

        Item vectors do not depend on interactions, so ``matrix`` is not needed.
        """
        assert self.context is not None
        publication = self.publication()
        metadata = catalog_metadata(self.context)
        return replace(publication, metadata=[metadata[int(i)] for i in publication.rows])

    @classmethod
    def merge_replicas(cls, replicas: Sequence[Self], weights: ReplicaWeights) -> None:
        """Federated averaging: the text map by interactions, residual and bias rows by owner."""
        total_w = torch.tensor(weights.totals) / sum(weights.totals)
        models = [agent.model for agent in replicas]
        with torch.no_grad():
            text = sum(total_w[k] * m.text_map for k, m in enumerate(models))
            residual = torch.zeros_like(models[0].residual)
            bias = torch.zeros_like(models[0].bias)
            for agent, model in zip(replicas, models, strict=True):
                assert agent.context is not None
                own = torch.from_numpy(agent.owned_rows(agent.context))
                residual[own] = model.residual[own]
                bias[own] = model.bias[own]
            for model in models:
                model.text_map.copy_(text)
                model.residual.copy_(residual)
                model.bias.copy_(bias)

    @torch.no_grad()
    def fold_in_items(self, text_vectors: np.ndarray) -> np.ndarray:
        """Vectors of items the model never saw: their text through the learned map."""
        return (torch.from_numpy(text_vectors.astype(np.float32)) @ self.model.text_map.T).numpy()


def tower_scores(
    user_vectors: np.ndarray, item_vectors: np.ndarray, item_bias: np.ndarray | None
) -> np.ndarray:
    """Dot-product scores (users x items) plus item biases."""
    scores = user_vectors @ item_vectors.T
    return scores + item_bias[None, :] if item_bias is not None else scores
