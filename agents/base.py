"""The contract every agent role fulfils, and the context a training round hands it.

An agent is a learner first (LightFM's ``fit`` resets, ``fit_partial`` resumes). In a round it
receives its peers' latest vectors *as read back from the vector store* (``peers``), trains its own
PyTorch model against them, and says what it publishes (a :class:`Publication`). It never talks to
the store itself: the coordinator does, which is what lets the same rounds run in one process or
across a cluster.

Everything a role may do beyond learning is a method of :class:`Agent` with a documented default,
so the coordinator and the serving code ask every role the same questions and never test for a
concrete class:

* publish: :meth:`Agent.publication` (each round) and :meth:`Agent.serving` (after the last);
* explain: :meth:`Agent.explainer` returns an :class:`Explainer` (evidence behind a score);
* fold in what the model never saw: :meth:`Agent.fold_in_user`, :meth:`Agent.fold_in_items`;
* refit on the full history before serving: :meth:`Agent.refit_history`;
* run as data-parallel replicas: :attr:`Agent.shards_by` and :meth:`Agent.merge_replicas`;
* take part in a conversation turn: the :class:`ConversingRole` protocol (``converse``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recagents.data import Dataset
from recagents.errors import ConfigError, DataError, ModelFitError
from recagents.types import Evidence

#: Kinds of vectors agents exchange through the store.
USER = "user"
ITEM = "item"
#: The user-profile agent's own decoder: one row per item, in its user vectors' space, so a peer
#: can score ``user vector . decoder row + bias`` with the user agent's own model.
USER_DECODER = "user_decoder"
#: Which id map each kind's rows index (a kind not listed indexes items, as before kinds had a map).
ROWS_OF: Mapping[str, str] = {USER: USER, ITEM: ITEM, USER_DECODER: ITEM}


def peer_key(kind: str, extra: str) -> str:
    """Key of a published per-row extra among peers: ``item`` + ``bias`` -> ``item_bias``.

    Peers are one flat mapping of arrays (what a role's ``partial_fit`` and ``score`` receive),
    so an extra is named after the kind it belongs to; this is the only place the name is built.
    """
    return f"{kind}_{extra}"


#: The item agent's learned per-item bias, as peers see it (published as the extra ``bias``).
ITEM_BIAS = peer_key(ITEM, "bias")


@dataclass(frozen=True)
class Publication:
    """What a role writes to the store: one kind's vectors for some rows, plus per-row extras.

    Attributes:
        kind: :data:`USER` or :data:`ITEM`: which id map the rows index.
        vectors: One row per entry of ``rows``, as wide as the text embeddings.
        rows: Indices into the kind's id map (a replica publishes only the rows it owns).
        extras: Per-row numbers stored as scalar metadata under their name (the item agent's
            ``bias``) and read back by peers under :func:`peer_key` (``item_bias``). A role
            declares their names in :attr:`Agent.publishes_extras` so readers know what to pull.
        metadata: Per-row descriptive metadata for the serving collection (the item role's title,
            year and genre flags, laid out by :mod:`recagents.vectorstore.schema`); ``None`` for
            round publications, which peers read for vectors only.
        companions: Publications of other kinds written with this one, as the same version (the
            user agent's own decoder, :data:`USER_DECODER`, rides with its user vectors); a role
            declares their kinds and extras in :attr:`Agent.companions`.
    """

    kind: str
    vectors: np.ndarray
    rows: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    metadata: Sequence[Mapping[str, Any]] | None = None
    companions: tuple[Publication, ...] = ()

    def flat(self) -> list[Publication]:
        """This publication and its companions, each without companions of its own."""
        return [replace(self, companions=()), *(c for p in self.companions for c in p.flat())]


@dataclass(frozen=True)
class ReplicaWeights:
    """How much each replica's state counts when a role merges its replicas (federated averaging).

    Unnormalised: the role normalises them, so that it decides the arithmetic (and its precision).

    Attributes:
        per_row: ``n_replicas x n_items``: interactions each replica holds per item (plus a small
            constant so an item no replica saw still gets a defined average).
        totals: Interactions each replica holds in all (plus the same constant).
    """

    per_row: np.ndarray
    totals: tuple[float, ...]


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
        user_weight: Each user's weight in training, or ``None`` (all 1). A union with dialogue
            corpora (:mod:`recagents.data.union`) weighs its dialogue users apart; every agent
            weighs users by it (losses, item-item statistics).
        history_size: Each user's interactions in the whole ``fit``, kept when ``fit`` holds
            some items' columns only (an item replica's slice on the Ray engine), where the row
            sums would count that shard alone; ``None``: the row sums of ``fit``.
    """

    dataset: Dataset
    fit: sp.csr_matrix
    holdout: sp.csr_matrix
    train: sp.csr_matrix
    item_text: np.ndarray
    user_text: np.ndarray
    seed: int = 0
    valid: sp.csr_matrix | None = None
    user_weight: np.ndarray | None = None
    history_size: np.ndarray | None = None

    def history_sizes(self) -> np.ndarray:
        """Each user's interactions in ``fit`` (the whole row, even in a slice of columns)."""
        if self.history_size is not None:
            return np.asarray(self.history_size)
        return np.asarray(self.fit.sum(axis=1)).ravel()

    def weights(self, users: np.ndarray | None = None) -> np.ndarray:
        """Training weights of ``users`` (default: every user); 1 where no weight is set."""
        rows = np.arange(self.n_users) if users is None else np.asarray(users)
        if self.user_weight is None:
            return np.ones(len(rows), dtype=np.float32)
        return np.asarray(self.user_weight, dtype=np.float32)[rows]

    def weighted(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """``matrix`` (one row per user) with each row scaled by its user's weight."""
        if self.user_weight is None or matrix.shape[0] != self.n_users:
            return matrix
        return sp.csr_matrix(sp.diags(self.weights()) @ matrix)

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


@runtime_checkable
class Explainer(Protocol):
    """Says why an item was recommended: structured evidence, which the LLM only phrases."""

    def explain(
        self,
        user_history: np.ndarray,
        item: int,
        peers_user: np.ndarray | None,
        peers: Mapping[str, np.ndarray],
        final_score: float | None = None,
        top: int = 3,
    ) -> Evidence:  # pragma: no cover - protocol
        """Evidence for recommending ``item`` (an index) to a user with ``user_history``.

        Args:
            user_history: Indices of the user's items (liked or interacted).
            item: The recommended item's index.
            peers_user: The user's vector from the user-profile agent, if any.
            peers: Latest peer vectors (``item``, ``item_bias``).
            final_score: The final ranker's score, echoed in the evidence.
            top: How many contributing items to cite.
        """
        ...


class Agent(ABC):
    """Base class of every role.

    Class attributes:
        name: Registry name (``user_profile``, ``item``, ``ranking``...).
        publishes: Kind of vectors the agent writes to the store each round, or ``None``.
        publishes_extras: Names of the per-row extras its publications carry (see
            :class:`Publication`); peers read them back under :func:`peer_key`.
        companions: Other kinds it may publish alongside :attr:`publishes` (as
            :attr:`Publication.companions`), each with the names of its extras.
        consumes: Kinds of peer vectors it reads before training.
        order: Position in a round (lower first); built-ins use 10, 20 and 90, so a plug-in
            with the default 100 runs after the ranking agent, e.g. as a final re-ranker.
        scores: Whether it can rank items (the last scoring role ranks the final list).
        opt_in: Registered but trained only when a run names it (not in
            :meth:`~recagents.agents.registry.AgentRegistry.defaults`).
        shards_by: Kind whose rows data-parallel replicas split (``row % N == k``): ``USER``
            (``user_shards``) or ``ITEM`` (``item_shards``), or ``None`` when the role cannot
            be sharded; a sharded role implements :meth:`merge_replicas`.
        learns_from_holdout: Whether it learns from the hold-out carved out of train (the
            ranking agent: peers' scores on interactions they were not fitted on). A run none
            of whose roles does fits every agent on all of train.
        user_arrays: Names of :meth:`state` arrays with one row per user (user index order).
            A warm start onto a grown user table (a feedback round: the live threads join as
            users) carries these rows over by user id and gives new users zero rows; every
            other array is carried over as it is.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 100
    publishes: ClassVar[str | None] = None
    publishes_extras: ClassVar[tuple[str, ...]] = ()
    companions: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    consumes: ClassVar[tuple[str, ...]] = ()
    scores: ClassVar[bool] = False
    opt_in: ClassVar[bool] = False
    shards_by: ClassVar[str | None] = None
    user_arrays: ClassVar[tuple[str, ...]] = ()
    learns_from_holdout: ClassVar[bool] = False

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

    # -- publishing ------------------------------------------------------------------------

    def publication(self) -> Publication | None:
        """What this round publishes: by default :meth:`vectors`, every row, no extras."""
        vectors = self.vectors()
        if vectors is None or self.publishes is None:
            return None
        return Publication(self.publishes, vectors, np.arange(len(vectors)))

    def serving(self, matrix: sp.csr_matrix) -> Publication | None:
        """The vectors served once training is over, conditioned on ``matrix`` (all of train).

        Roles whose vectors depend on interactions (users) re-encode from ``matrix``; the
        publisher of a kind adds the serving collection's descriptive metadata. Default: nothing.
        """
        return None

    def owned_rows(self, context: TrainContext) -> np.ndarray:
        """Rows of :attr:`shards_by` this replica trains and publishes (all unless sharded)."""
        n_rows = context.n_users if self.shards_by == USER else context.n_items
        rows = np.arange(n_rows)
        shard, shards = self.shard()
        return rows[rows % shards == shard] if shards > 1 else rows

    def shard(self) -> tuple[int, int]:
        """``(k, N)``: this replica is shard ``k`` of ``N`` (``(0, 1)`` unless sharded)."""
        options = self.config.options
        return int(options.get("shard", 0) or 0), int(options.get("shards", 1) or 1)

    @classmethod
    def merge_replicas(cls, replicas: Sequence[Self], weights: ReplicaWeights) -> None:
        """Merge the replicas' shared state in place, after each has trained on its own rows.

        Every replica ends with the same shared weights and each one's owned rows; the
        coordinator only says how much each replica counts and never touches a role's tensors.

        Raises:
            ConfigError: The role cannot be sharded (:attr:`shards_by` is ``None``).
        """
        raise ConfigError(f"agent role {cls.name!r} cannot run as replicas")

    # -- serving ---------------------------------------------------------------------------

    def explainer(self) -> Explainer | None:
        """Who explains this role's scores (default: nobody, the final score is the evidence)."""
        return None

    def fold_in_user(
        self, item_indices: np.ndarray, text_vector: np.ndarray | None
    ) -> np.ndarray | None:
        """Vector of a user the model never saw, from items they mention and their words.

        Default ``None``: the role does not encode users, and the caller falls back to the text
        seed (mean item text plus the user's words).
        """
        return None

    def fold_in_items(self, text_vectors: np.ndarray) -> np.ndarray | None:
        """Vectors of items the model never saw, from their text (default ``None``: not a tower)."""
        return None

    def own_scores(self, users: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray | None:
        """Every item's score for ``users`` from this agent's own model alone, or ``None``.

        What the agent would rank by itself given the interactions in ``matrix`` (no peer's
        vectors): the per-agent figures of each round and the single-agent ablations. Default:
        ``None`` (a role without a ranking of its own).
        """
        return None

    def refit_history(self, matrix: sp.csr_matrix) -> None:
        """Refit what the role derives in closed form from interactions, before serving.

        Training fits on ``fit`` only (the ranker's hold-out is carved out of it); serving may
        use all of train. Default: the role derives nothing from history.
        """
        return None

    # -- persistence (safetensors + JSON, never pickle) ------------------------------------

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Named arrays that fully determine the trained model."""

    @abstractmethod
    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore from :meth:`state`'s arrays."""

    def training_state(self) -> dict[str, np.ndarray]:
        """Optimiser state: what training carries into the next round beyond the weights.

        Kept so a resumed run repeats an uninterrupted one exactly. Saved with each round
        checkpoint, not with the served model (serving never trains).
        Default: nothing (a role without an optimiser, or one rebuilt every round).
        """
        return {}

    def load_training_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`training_state`'s arrays after :meth:`load` (default: nothing)."""
        return None

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
