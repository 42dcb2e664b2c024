"""The contract every agent role fulfils, and the context a training round hands it.

An agent is a learner first (LightFM's ``fit`` resets, ``fit_partial`` resumes). In a round it
receives its peers' latest vectors *as read back from the vector store* (``peers``), trains its own
PyTorch model against them, and exposes the vectors it publishes. It never talks to the store
itself: the coordinator does, which is what lets the same rounds run in one process or across a
cluster.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.data import Dataset
from recagents.errors import DataError, ModelFitError

#: Kinds of vectors agents exchange through the store.
USER = "user"
ITEM = "item"


@dataclass
class TrainContext:
    """Everything agents may read while training; built once per run by the coordinator.

    Attributes:
        dataset: The catalog and its id maps.
        fit: Users x items matrix the towers train on (train minus the ranker's hold-out).
        holdout: Per-user interactions withheld from ``fit`` so the ranking agent learns on
            scores it has not seen being trained (never the valid split).
        train: ``fit + holdout``: everything the final models may use.
        item_text: Text embeddings of items (n_items x d), the seed of every item vector.
        user_text: Text embeddings of users' descriptions (n_users x d).
        seed: Seed for every random choice.
        valid: Validation matrix for round selection only; never training input.
    """

    dataset: Dataset
    fit: sp.csr_matrix
    holdout: sp.csr_matrix
    train: sp.csr_matrix
    item_text: np.ndarray
    user_text: np.ndarray
    seed: int = 0
    valid: sp.csr_matrix | None = None
    train_frame: pd.DataFrame | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Rows of the interaction matrices."""
        return int(self.fit.shape[0])

    @property
    def n_items(self) -> int:
        """Columns of the interaction matrices."""
        return int(self.fit.shape[1])

    @property
    def dim(self) -> int:
        """Width of the text embeddings, hence of every exchanged vector."""
        return int(self.item_text.shape[1])


@dataclass
class AgentConfig:
    """Per-role hyper-parameters; unknown keys are refused so typos fail loudly."""

    epochs: int = 20
    lr: float = 0.01
    weight_decay: float = 0.0
    dropout: float = 0.5
    batch_size: int = 256
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> AgentConfig:
        """Build from a plain mapping (a TOML table, JSON)."""
        values = dict(values or {})
        known = {"epochs", "lr", "weight_decay", "dropout", "batch_size"}
        config = cls(**{k: values.pop(k) for k in list(values) if k in known})
        config.options.update(values)
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, saved beside the weights."""
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "dropout": self.dropout,
            "batch_size": self.batch_size,
            **self.options,
        }


@runtime_checkable
class ConversingRole(Protocol):
    """A role that takes part in each conversation turn, after the ranking agent.

    ``converse`` receives the turn's ranked items (dicts with ``item_id``, ``title``, ``score``,
    ``evidence``) and the conversation state; it returns extras for ``role_outputs`` and may
    return a reordered ``ranked`` list (the same items: it must not invent any).
    """

    name: str

    def converse(
        self, ranked: list[dict[str, Any]], state: Mapping[str, Any]
    ) -> dict[str, Any]:  # pragma: no cover - protocol
        """Extras for this turn (and optionally ``ranked``, reordered)."""
        ...


class Agent(ABC):
    """Base class of every role.

    Class attributes:
        name: Registry name (``user_profile``, ``item``, ``ranking``...).
        publishes: Kind of vectors the agent writes to the store each round, or ``None``.
        consumes: Kinds of peer vectors it reads before training.
        order: Position in a round (lower first); built-ins use 10, 20 and 90, so a plug-in
            with the default 100 runs after the ranking agent, e.g. as a final re-ranker.
        scores: Whether it can rank items (the last scoring role ranks the final list).
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 100
    publishes: ClassVar[str | None] = None
    consumes: ClassVar[tuple[str, ...]] = ()
    scores: ClassVar[bool] = False

    def __init__(self, config: AgentConfig | None = None) -> None:
        self.config = config or self.default_config()
        self.instance = self.name  # replicas get distinct names (checkpoint files, logs)
        self.context: TrainContext | None = None
        self.rounds_trained = 0

    @classmethod
    def default_config(cls) -> AgentConfig:
        """Hyper-parameters used when the caller gives none (override per role)."""
        return AgentConfig()

    # -- learning --------------------------------------------------------------------------

    def fit(self, context: TrainContext, peers: Mapping[str, np.ndarray] | None = None) -> dict:
        """Reset to the text seed, then train one round."""
        self.setup(context)
        return self.partial_fit(context, peers or {})

    @abstractmethod
    def setup(self, context: TrainContext) -> None:
        """(Re)initialise the model from the text seed; no training."""

    @abstractmethod
    def partial_fit(self, context: TrainContext, peers: Mapping[str, np.ndarray]) -> dict:
        """Train one round against the peers' vectors; return metrics (loss...)."""

    def vectors(self) -> np.ndarray | None:
        """The vectors this agent publishes (rows in id-map order), or ``None``."""
        return None

    def score(
        self, users: np.ndarray, peers: Mapping[str, np.ndarray], matrix: sp.csr_matrix
    ) -> np.ndarray:
        """Scores of all items for ``users`` given their interactions in ``matrix``."""
        raise NotImplementedError(f"agent {self.name!r} does not rank items")

    # -- persistence (safetensors + JSON, never pickle) ------------------------------------

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Named arrays that fully determine the trained model."""

    @abstractmethod
    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore from :meth:`state`'s arrays."""

    def save(self, folder: Path) -> Path:
        """Write ``<name>.safetensors`` and ``<name>.json`` into ``folder``."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(v) for k, v in self.state().items()}
        save_file(arrays, str(folder / f"{self.instance}.safetensors"))
        meta = {"name": self.name, "config": self.config.to_dict(), "rounds": self.rounds_trained}
        (folder / f"{self.instance}.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder / f"{self.instance}.safetensors"

    def load(self, folder: Path, context: TrainContext) -> None:
        """Restore weights saved by :meth:`save`."""
        from safetensors.numpy import load_file

        path = folder / f"{self.instance}.safetensors"
        if not path.exists():
            raise DataError(f"no saved weights for agent {self.instance!r} in {folder}")
        meta = json.loads((folder / f"{self.instance}.json").read_text(encoding="utf-8"))
        self.config = AgentConfig.from_mapping(meta.get("config"))
        self.context = context
        self.load_state(context, load_file(str(path)))
        self.rounds_trained = int(meta.get("rounds", 0))  # after load_state: setup() resets it

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def check_loss(value: float, agent: str) -> float:
        """Raise :class:`ModelFitError` when a loss turns NaN or infinite."""
        if not np.isfinite(value):
            raise ModelFitError(
                f"agent {agent!r}: loss became {value}; lower its learning rate (lr) or check "
                "the input for empty users"
            )
        return float(value)
