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
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recagents.agents.base import ITEM, USER, Agent, AgentConfig, TrainContext
from recagents.agents.registry import register

logger = logging.getLogger(__name__)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _csr_to_torch(matrix: sp.csr_matrix) -> torch.Tensor:
    return torch.from_numpy(np.asarray(matrix.todense(), dtype=np.float32))


def seed_user_vectors(context: TrainContext, matrix: sp.csr_matrix | None = None) -> np.ndarray:
    """Text-only user vectors: mean text of the user's items plus their own description."""
    matrix = context.fit if matrix is None else matrix
    counts = np.maximum(np.asarray(matrix.sum(axis=1)).ravel(), 1.0)[:, None]
    history = (matrix @ context.item_text) / counts
    return (history + 0.5 * context.user_text[: matrix.shape[0]]).astype(np.float32)


class _UserTower(nn.Module):
    def __init__(self, item_text: np.ndarray, n_users: int, user_text: np.ndarray) -> None:
        super().__init__()
        dim = item_text.shape[1]
        self.item_in = nn.Parameter(torch.from_numpy(item_text.astype(np.float32)).clone())
        self.history_map = nn.Parameter(torch.eye(dim) * 8.0)
        self.text_map = nn.Parameter(torch.eye(dim) * 2.0)
        self.user_residual = nn.Parameter(torch.zeros(n_users, dim))
        self.register_buffer("user_text", torch.from_numpy(user_text.astype(np.float32)))

    def forward(
        self, users: torch.Tensor, history: torch.Tensor, dropout: float = 0.0
    ) -> torch.Tensor:
        if dropout > 0:
            history = nn.functional.dropout(history, dropout) * (1 - dropout)
        counts = history.sum(1, keepdim=True).clamp_min(1.0)
        bag = (history @ self.item_in) / counts
        return (
            bag @ self.history_map.T
            + self.user_text[users] @ self.text_map.T
            + self.user_residual[users]
        )


@register
class UserProfileAgent(Agent):
    """User tower: encodes a user's history and description into a vector.

    Options: ``shard`` / ``shards`` (data-parallel replicas own ``user % shards == shard``).
    """

    name = "user_profile"
    order = 10
    publishes = USER
    consumes = (ITEM,)

    @classmethod
    def default_config(cls) -> AgentConfig:
        """Chosen on ML-100K valid (seed 2020): longer rounds or weaker penalties overfit."""
        return AgentConfig(
            epochs=10,
            lr=1e-3,
            weight_decay=0.0,
            dropout=0.5,
            batch_size=256,
            options={"residual_l2": 1.0},
        )

    def setup(self, context: TrainContext) -> None:
        """Towers start as pure text: item_in = item texts, history/text maps = scaled identity."""
        torch.manual_seed(context.seed)
        self.context = context
        self.model = _UserTower(context.item_text, context.n_users, context.user_text)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.rounds_trained = 0

    def owned_users(self, context: TrainContext) -> np.ndarray:
        """Users this replica trains (all of them unless sharded)."""
        shards = int(self.config.options.get("shards", 1))
        shard = int(self.config.options.get("shard", 0))
        users = np.arange(context.n_users)
        return users[users % shards == shard] if shards > 1 else users

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Train the tower with the item agent's published vectors (and biases) frozen."""
        items = peers.get(ITEM)
        item_vectors = torch.from_numpy(
            (context.item_text if items is None else items).astype(np.float32)
        )
        bias = torch.from_numpy(
            peers.get("item_bias", np.zeros(context.n_items)).astype(np.float32)
        )
        users = self.owned_users(context)
        users = users[np.asarray(context.fit[users].sum(axis=1)).ravel() > 0]
        target = _csr_to_torch(context.fit[users])
        generator = _generator(context.seed + 1000 * self.rounds_trained)
        reg = float(self.config.options.get("residual_l2", 0.0))
        losses = []
        self.model.train()
        for _ in range(self.config.epochs):
            order = torch.randperm(len(users), generator=generator)
            for start in range(0, len(users), self.config.batch_size):
                idx = order[start : start + self.config.batch_size]
                batch_users = torch.from_numpy(users[idx.numpy()])
                rows = target[idx]
                vec = self.model(batch_users, rows, self.config.dropout)
                logits = vec @ item_vectors.T + bias
                loss = -(torch.log_softmax(logits, 1) * rows).sum(1).div(rows.sum(1)).mean()
                loss = loss + reg * self.model.user_residual[batch_users].pow(2).sum(1).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
        self.rounds_trained += 1
        return {"loss": self.check_loss(float(np.mean(losses)), self.name), "users": len(users)}

    @torch.no_grad()
    def encode(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Vectors of known users from a history matrix (rows aligned with ``users``)."""
        self.model.eval()
        return self.model(torch.from_numpy(np.asarray(users)), _csr_to_torch(history)).numpy()

    @torch.no_grad()
    def encode_cold(self, item_indices: np.ndarray, text_vector: np.ndarray | None) -> np.ndarray:
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
        """Every user's vector from their fit history (the ones a replica owns are exact)."""
        assert self.context is not None
        users = np.arange(self.context.n_users)
        return self.encode(users, self.context.fit)

    def state(self) -> dict[str, np.ndarray]:
        """Weights as named arrays."""
        return {k: v.detach().numpy() for k, v in self.model.state_dict().items()}

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Rebuild the tower and load weights."""
        self.setup(context)
        self.model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})


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


@register
class ItemAgent(Agent):
    """Item tower: text embedding through a learned map, plus a collaborative residual."""

    name = "item"
    order = 20
    publishes = ITEM
    consumes = (USER,)

    @classmethod
    def default_config(cls) -> AgentConfig:
        """Chosen on ML-100K valid (seed 2020) with the user agent's defaults."""
        return AgentConfig(
            epochs=10,
            lr=1e-3,
            weight_decay=0.0,
            dropout=0.0,
            batch_size=256,
            options={"residual_l2": 0.1},
        )

    def setup(self, context: TrainContext) -> None:
        """Item vectors start as the text embeddings (identity map, zero residual and bias)."""
        torch.manual_seed(context.seed + 1)
        self.context = context
        self.model = _ItemTower(context.item_text)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.rounds_trained = 0

    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Train item vectors and biases with the users' published vectors frozen."""
        published = peers.get(USER)
        user_vectors = published if published is not None else seed_user_vectors(context)
        active = np.flatnonzero(np.asarray(context.fit.sum(axis=1)).ravel() > 0)
        users = torch.from_numpy(user_vectors[active].astype(np.float32))
        target = _csr_to_torch(context.fit[active])
        generator = _generator(context.seed + 7 + 1000 * self.rounds_trained)
        reg = float(self.config.options.get("residual_l2", 0.0))
        losses = []
        self.model.train()
        for _ in range(self.config.epochs):
            order = torch.randperm(len(active), generator=generator)
            for start in range(0, len(active), self.config.batch_size):
                idx = order[start : start + self.config.batch_size]
                rows = target[idx]
                logits = users[idx] @ self.model().T + self.model.bias
                loss = -(torch.log_softmax(logits, 1) * rows).sum(1).div(rows.sum(1)).mean()
                loss = loss + reg * self.model.residual.pow(2).sum(1).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
        self.rounds_trained += 1
        return {"loss": self.check_loss(float(np.mean(losses)), self.name)}

    @torch.no_grad()
    def vectors(self) -> np.ndarray:
        """Item vectors in id-map order."""
        return self.model().numpy()

    def biases(self) -> np.ndarray:
        """Per-item popularity-like offsets (published as metadata)."""
        return self.model.bias.detach().numpy().copy()

    @torch.no_grad()
    def encode_cold(self, text_vectors: np.ndarray) -> np.ndarray:
        """Vectors of items the model never saw: their text through the learned map."""
        return (torch.from_numpy(text_vectors.astype(np.float32)) @ self.model.text_map.T).numpy()

    def state(self) -> dict[str, np.ndarray]:
        """Weights as named arrays (the text buffer is rebuilt from the context)."""
        return {
            k: v.detach().numpy() for k, v in self.model.state_dict().items() if k != "item_text"
        }

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Rebuild the tower and load weights."""
        self.setup(context)
        state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        state["item_text"] = self.model.item_text
        self.model.load_state_dict(state)


def tower_scores(
    user_vectors: np.ndarray, item_vectors: np.ndarray, item_bias: np.ndarray | None
) -> np.ndarray:
    """Dot-product scores (users x items) plus item biases."""
    scores = user_vectors @ item_vectors.T
    return scores + item_bias[None, :] if item_bias is not None else scores
