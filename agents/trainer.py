"""The default trainer: build the training context, run collaborative rounds, serve scores.

``recagents train``, ``recagents evaluate --model agents`` and ``make run`` all come through here,
so the product and the benchmark train the same way.

Model names (for ``evaluate --model`` and ``bench/accuracy.py``):

- ``agents``: all registered roles, collaborating through the store;
- ``agents-text``: round 0 only (text embeddings, no learning);
- ``agents-user_profile`` / ``agents-item`` / ``agents-ranking``: one role alone;
- ``agents-shards4``: four data-parallel user-profile replicas;
- ``agents-round1``: every role, one collaborative round only (what the later rounds add).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recagents.agents.base import ITEM, ITEM_BIAS, USER, TrainContext
from recagents.agents.checkpoints import read_report
from recagents.agents.registry import registry
from recagents.agents.report import TrainingReport
from recagents.agents.rounds import Coordinator
from recagents.agents.runlock import run_lock
from recagents.agents.towers import tower_scores
from recagents.config import Settings
from recagents.data import Dataset, interaction_matrix
from recagents.data.splits import Split, split_counts
from recagents.data.texts import item_texts, user_texts
from recagents.data.union import DIALOGUE_WEIGHT, HOLDOUT_COLUMN, CorpusLike, dialogue_union
from recagents.encoder import encoder_from_settings
from recagents.errors import ConfigError, UnknownEntityError
from recagents.eval.baselines import FitContext
from recagents.eval.experiment import BASELINE_MODELS, ModelFactory
from recagents.eval.metrics import top_k
from recagents.types import Evidence, Recommendation
from recagents.vectorstore.base import EmbeddingStore
from recagents.vectorstore.schema import COLLECTION_PREFIX

logger = logging.getLogger(__name__)

#: Share of each user's train interactions the ranking agent learns on.
HOLDOUT_RATIO = 0.1


def inner_holdout(train: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split train per user into (fit, holdout) with RecBole's rounding, reproducibly."""
    rng = np.random.default_rng(seed + 17)
    frame = train.iloc[rng.permutation(len(train))]
    frame = frame.iloc[np.argsort(frame["user"].to_numpy(), kind="stable")]
    users = frame["user"].to_numpy()
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    ends = np.r_[starts[1:], len(frame)]
    hold = np.zeros(len(frame), dtype=bool)
    for start, end in zip(starts, ends, strict=True):
        _, n_hold = split_counts(int(end - start), (1 - HOLDOUT_RATIO, HOLDOUT_RATIO))
        hold[end - n_hold : end] = True
    if HOLDOUT_COLUMN in frame.columns:
        # A dialogue user's hold-out is the suggestions the seeker accepted (data.union): the
        # ranking agent learns which suggestions were taken, given the rest of the dialogue.
        flagged = frame[HOLDOUT_COLUMN].to_numpy(dtype=bool)
        own = pd.Series(flagged).groupby(users).transform("any").to_numpy(dtype=bool)
        hold = np.where(own, flagged, hold)
    return frame[~hold], frame[hold]


def build_context(
    dataset: Dataset,
    train: pd.DataFrame,
    settings: Settings,
    *,
    valid: pd.DataFrame | None = None,
    progress: bool = False,
    user_weight: np.ndarray | None = None,
    holdout: bool = True,
) -> TrainContext:
    """Encode texts (cached) and carve the ranking agent's hold-out out of ``train``.

    ``holdout=False``: no role learns from a hold-out (a run without the ranking agent), so
    every agent fits on all of train, as a baseline does.
    """
    encoder = encoder_from_settings(settings)
    item_vectors = encoder.encode(item_texts(dataset), progress=progress)
    user_vectors = encoder.encode(user_texts(dataset, train), progress=progress)
    if holdout:
        fit_frame, hold_frame = inner_holdout(train, settings.seed)
    else:
        fit_frame, hold_frame = train, train.iloc[:0]
    n_users, n_items = dataset.n_users, dataset.n_items
    return TrainContext(
        dataset=dataset,
        fit=interaction_matrix(fit_frame, n_users, n_items),
        holdout=interaction_matrix(hold_frame, n_users, n_items),
        train=interaction_matrix(train, n_users, n_items),
        item_text=item_vectors,
        user_text=user_vectors,
        seed=settings.seed,
        valid=None if valid is None else interaction_matrix(valid, n_users, n_items),
        user_weight=user_weight,
    )


def open_agent_store(settings: Settings) -> EmbeddingStore:
    """The ChromaDB store the settings name (embedded under home, or a server)."""
    from recagents.vectorstore.chroma import open_store

    return open_store(settings)


def reset_namespace(store: EmbeddingStore, namespace: str) -> None:
    """Drop a namespace's collections so a fresh run never reads an older run's versions."""
    for name in store.collections(prefix=f"{COLLECTION_PREFIX}.{namespace}."):
        store.drop(name)


@dataclass
class ProfileScores:
    """Scores of every item for one (possibly cold) user, and what produced them.

    ``kind`` says which path scored it: ``agents`` (the trained agents), ``cold`` (nobody liked
    yet: popular and well liked) or ``seeds`` (one to three liked films: the agents blended with
    content similarity); the last two are set by the serving engine.
    """

    scores: np.ndarray
    history: np.ndarray
    vector: np.ndarray
    peers: dict[str, np.ndarray]
    kind: str = "agents"

    @cached_property
    def _unseen_sorted(self) -> np.ndarray:
        """The scores of the items outside the history, ascending (for :meth:`match`)."""
        keep = np.ones(len(self.scores), dtype=bool)
        keep[self.history] = False
        values = self.scores[keep]
        return np.sort(values[np.isfinite(values)])

    def match(self, item: int) -> float:
        """The item's percentile among the unseen items' scores, in ``[0, 1]``.

        See :attr:`~recagents.types.Recommendation.match` for why a percentile.
        """
        ranked = self._unseen_sorted
        score = float(self.scores[item])
        if len(ranked) == 0 or not np.isfinite(score):
            return 0.0
        below = np.searchsorted(ranked, score, side="left")
        ties = np.searchsorted(ranked, score, side="right") - below
        return round(float(min(1.0, (below + 0.5 * ties) / len(ranked))), 4)


@dataclass
class TrainedAgents:
    """A finished run: the coordinator (agents + store) and its report."""

    coordinator: Coordinator
    report: TrainingReport
    context: TrainContext
    seconds: float
    #: The dialogue corpora in the union (:class:`~recagents.data.union.UnionInfo` as a dict:
    #: ``corpora``, ``weight``, ``users``...), or ``None`` for a catalog-only run.
    dialogues: dict[str, Any] | None = None

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of all items conditioned on all of train."""
        return self.coordinator.scorer(self.context.train)(users)

    def serving_peers(self) -> dict[str, np.ndarray]:
        """Every user's and item's serving vectors; computed once (the agents are frozen)."""
        cached = self.__dict__.get("_serving")
        if cached is None:
            cached = self.coordinator.serving_peers(self.context.train)
            self.__dict__["_serving"] = cached
        return cached

    def profile_scores(
        self,
        user_id: str | None,
        liked: Sequence[str] = (),
        text_vector: np.ndarray | None = None,
    ) -> ProfileScores:
        """Score every item for a known user, or a cold one described by items and words.

        An unknown ``user_id`` raises :class:`UnknownEntityError` inside and takes the
        cold-start route: the user-profile agent builds a vector from ``liked`` items and
        ``text_vector``; the ranking agent then ranks as for anyone else.
        """
        dataset = self.context.dataset
        liked_idx = [dataset.item_map.index(i) for i in liked]
        peers = self.serving_peers()
        try:
            if user_id is None:
                raise UnknownEntityError("user", None)
            user = dataset.user_map.index(user_id)
            history = sorted(set(self.context.train[user].indices.tolist()) | set(liked_idx))
            vector = peers[USER][user]
            if liked_idx:
                vector = self._user_vector(history, text_vector, fallback=vector)
        except UnknownEntityError:
            history = sorted(set(liked_idx))
            vector = self._user_vector(history, text_vector, fallback=None)
        row = sp.csr_matrix(
            (np.ones(len(history), dtype=np.float32), (np.zeros(len(history), int), history)),
            shape=(1, dataset.n_items),
        )
        one = {**peers, USER: vector[None, :].astype(np.float32)}
        ranker = self.coordinator.ranker
        if ranker is not None and ranker.rounds_trained > 0:
            scores = np.array(ranker.score(np.array([0]), one, row)[0], dtype=np.float64)
        else:
            scores = tower_scores(one[USER], one[ITEM], one.get(ITEM_BIAS))[0].astype(float)
        return ProfileScores(scores, np.asarray(history, dtype=np.int64), vector, one)

    def recommendation(self, profile: ProfileScores, item: int) -> Recommendation:
        """One item with its evidence for a scored profile."""
        dataset = self.context.dataset
        ranker = self.coordinator.ranker
        explainer = ranker.explainer() if ranker is not None else None
        score = float(profile.scores[item])
        evidence = (
            explainer.explain(profile.history, item, profile.vector, profile.peers, score)
            if explainer is not None
            else Evidence(agent_scores={"final": round(score, 4)})
        )
        return Recommendation(
            dataset.item_map.external(item),
            dataset.item_title(item),
            round(score, 4),
            evidence,
            match=profile.match(item),
        )

    def recommend(
        self,
        user_id: str | None = None,
        *,
        liked: Sequence[str] = (),
        text_vector: np.ndarray | None = None,
        k: int = 10,
        exclude: Sequence[str] = (),
    ) -> list[Recommendation]:
        """Top-k with evidence (see :meth:`profile_scores` for known vs cold users)."""
        dataset = self.context.dataset
        profile = self.profile_scores(user_id, liked, text_vector)
        scores = profile.scores.copy()
        scores[profile.history] = -np.inf
        for item_id in exclude:
            scores[dataset.item_map.index(item_id)] = -np.inf
        picks = [int(i) for i in top_k(scores[None, :], k)[0] if np.isfinite(scores[i])]
        return [self.recommendation(profile, item) for item in picks]

    def _user_vector(
        self, history: Sequence[int], text_vector: np.ndarray | None, fallback: np.ndarray | None
    ) -> np.ndarray:
        items = np.asarray(history, dtype=np.int64)
        for agent in self.coordinator.publishers(USER):
            folded = agent.fold_in_user(items, text_vector)
            if folded is not None:
                return folded
        if fallback is not None:
            return fallback
        vec = self.context.item_text[list(history)].mean(axis=0) if history else 0.0
        return np.asarray(
            vec + (0.5 * text_vector if text_vector is not None else 0.0), dtype=np.float32
        ) * np.ones(self.context.dim, dtype=np.float32)


def train_agents(
    split: Split,
    settings: Settings,
    *,
    roles: list[str] | None = None,
    user_shards: int = 1,
    item_shards: int = 1,
    max_rounds: int = 8,
    patience: int = 2,
    run_name: str = "default",
    resume: bool = False,
    store: EmbeddingStore | None = None,
    progress: bool = True,
    rounds_only_seed: bool = False,
    dialogues: Sequence[str | CorpusLike] | None = None,
    dialogue_weight: float | None = None,
    warm_start: TrainedAgents | None = None,
) -> TrainedAgents:
    """Run collaborative rounds on ``split.train``, selecting the round on ``split.valid``.

    The run is locked (:func:`~recagents.agents.runlock.run_lock`) before anything is read or
    written, so a second process training the same run stops at once, naming the first.

    Args:
        split: The catalog's split (train fits, valid selects the round).
        settings: Home, seed, encoder and store.
        roles: Roles to train (default: every registered role but the opt-in ones).
        user_shards: User-profile replicas (each owns the users ``user % N == k``).
        item_shards: Item-agent replicas (each owns the items ``item % M == k``).
        max_rounds: Most rounds after round 0.
        patience: Rounds without valid improvement before stopping.
        run_name: The run's folder and collection namespace suffix.
        resume: Continue the run after its last finished round.
        store: The vector store (default: the settings' ChromaDB).
        progress: Show progress bars.
        rounds_only_seed: Stop after round 0 (the text-only ablation).
        dialogues: Dialogue corpora to train on with the catalog (names of ingested corpora, or
            loaded corpora): each dialogue becomes a train-only user of the union
            (:func:`~recagents.data.union.dialogue_union`). ``None``: the corpora the run was
            trained with when resuming (a served home reloads its union), none for a new run.
        dialogue_weight: A dialogue user's weight next to a catalog user's (default: the one
            recorded when resuming, else :data:`~recagents.data.union.DIALOGUE_WEIGHT`).
        warm_start: Trained agents (the served model) whose weights round 0 starts from
            instead of the text seeds: a feedback round continues the served model on the
            grown user table (:func:`grow_states`) rather than starting over. Not with
            ``resume`` or user shards.

    Raises:
        ConfigError: Resuming a run with other corpora (or weight) than it was trained with.
        DataError: A corpus is unknown or mapped to another catalog.
    """
    namespace = f"{split.dataset.name}-s{settings.seed}-{run_name}"
    run_dir = settings.runs_dir / namespace
    if _finished(run_dir, resume):  # reloading a finished run: as many replicas as it trained
        recorded = read_report(run_dir)
        user_shards = recorded.get("user_shards") or user_shards
        item_shards = recorded.get("item_shards") or 1
    with run_lock(settings.runs_dir / f"{namespace}.lock", namespace):
        split, weights, union = _with_dialogues(
            split, settings, run_dir, dialogues, dialogue_weight, resume=resume
        )
        warm = None
        if warm_start is not None:
            if resume or user_shards > 1 or item_shards > 1:
                raise ConfigError("a warm start trains a new run: not with resume or shards")
            trained_rounds = {a.instance: a.rounds_trained for a in warm_start.coordinator.agents}
            warm = {
                name: (arrays, trained_rounds[name])
                for name, arrays in grow_states(warm_start, split.dataset).items()
            }
        return _train_agents(
            split,
            settings,
            user_weight=weights,
            dialogues=union,
            warm=warm,
            namespace=namespace,
            run_dir=run_dir,
            roles=roles,
            user_shards=user_shards,
            item_shards=item_shards,
            max_rounds=max_rounds,
            patience=patience,
            resume=resume,
            store=store,
            progress=progress,
            rounds_only_seed=rounds_only_seed,
        )


def _finished(run_dir: Path, resume: bool) -> bool:
    """Whether resuming ``run_dir`` only reloads it: it stopped and saved its serving agents."""
    if not resume or not (run_dir / "final").is_dir():
        return False
    return bool(read_report(run_dir).get("stopped"))


def ray_store_url(settings: Settings, store: EmbeddingStore | None) -> str:
    """The ChromaDB server the Ray engine's actors share.

    Raises:
        ConfigError: None is set: actors in other processes (maybe on other machines) cannot
            share an embedded store, which is one process's folder.
    """
    from recagents.vectorstore.chroma import ChromaStore

    url = settings.chroma_url or (store.url if isinstance(store, ChromaStore) else None)
    if not url:
        raise ConfigError(
            "the Ray engine needs a ChromaDB server every actor reaches (an embedded store is "
            "one process's folder): start `chroma run --path DIR --host 127.0.0.1 --port 8000` "
            "and pass --chroma-url http://127.0.0.1:8000"
        )
    return str(url)


def _train_on_ray(
    context: TrainContext,
    store: EmbeddingStore,
    settings: Settings,
    options: dict[str, Any],
    resume: bool,
) -> Coordinator:
    """The rounds on a Ray cluster (:mod:`recagents.agents.distributed`), served locally after.

    The actors are stopped once the run is over; the returned coordinator holds local agents
    loaded from the run's ``final`` checkpoint, so serving never calls into the cluster. They
    load in a thread while this process leaves the cluster: disconnecting (and stopping a
    private cluster) took over a second of waiting, the loading about as long.

    Raises:
        ConfigError: No ChromaDB server is set (actors in other processes, maybe on other
            machines, cannot share an embedded store), or no cluster answers.
    """
    from recagents.agents import distributed

    url = ray_store_url(settings, store)
    connected = distributed.connect(settings.ray_address or None)
    loading: Future[Coordinator] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-final") as pool:
        try:
            remote = distributed.RayCoordinator(
                context, store, store_url=url, actor_threads=settings.threads, **options
            )
            try:
                report = remote.run(resume=resume)
            finally:
                remote.shutdown()
            loading = pool.submit(_load_final, context, store, options, report)
        finally:
            if connected:
                distributed._ray().shutdown()
        assert loading is not None  # the run returned
        return loading.result()


def _load_final(
    context: TrainContext, store: EmbeddingStore, options: dict[str, Any], report: TrainingReport
) -> Coordinator:
    """A local coordinator whose agents are loaded from the run's ``final`` checkpoint."""
    local = Coordinator(context, store, **{**options, "progress": False})
    for agent in local.agents:
        agent.load(options["run_dir"] / "final", context)
    local.report = report
    return local


def recorded_dialogues(run_dir: Path) -> dict[str, Any] | None:
    """What ``metrics.json`` of a run records about its dialogue corpora (``None``: none)."""
    value = read_report(run_dir).get("dialogues")
    return value if isinstance(value, dict) else None


def _with_dialogues(
    split: Split,
    settings: Settings,
    run_dir: Path,
    dialogues: Sequence[str | CorpusLike] | None,
    weight: float | None,
    *,
    resume: bool,
) -> tuple[Split, np.ndarray | None, dict[str, Any] | None]:
    """The split joined with the run's dialogue corpora, their weights and the record."""
    recorded = recorded_dialogues(run_dir) if resume else None
    if dialogues is None:
        if recorded is None:
            return split, None, None
        dialogues = list(recorded.get("corpora") or [])
    names = [d if isinstance(d, str) else d.name for d in dialogues]
    if weight is None:
        weight = float(recorded["weight"]) if recorded else DIALOGUE_WEIGHT
    if resume and (run_dir / "metrics.json").exists():
        before = list((recorded or {}).get("corpora") or [])
        before_weight = (recorded or {}).get("weight")
        if before != names or (names and before_weight != weight):
            raise ConfigError(
                f"cannot resume {run_dir}: it was trained with dialogue corpora {before or 'none'}"
                + (f" (weight {before_weight})" if before else "")
                + f", not {names or 'none'}; pass the same corpora or train a new --run"
            )
    if not names:
        return split, None, None
    corpora = [_load_corpus(d, settings) for d in dialogues]
    union, weights, info = dialogue_union(split, corpora, weight)
    logger.info(
        "training with dialogue corpora %s: %d dialogue users, %d interactions (weight %g)",
        names,
        info.users,
        info.interactions,
        weight,
    )
    return union, weights, info.to_dict()


def grow_states(trained: TrainedAgents, dataset: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """Every agent's weights of ``trained``, its per-user rows moved onto ``dataset``'s users.

    Rows of :attr:`~recagents.agents.base.Agent.user_arrays` follow their user id (a user the
    old table had keeps its learned row wherever it now sits; a new user gets a zero row, i.e.
    its text and history alone, as any user starts); every other array is copied as it is.

    Raises:
        ConfigError: The catalogs differ (another item table: the weights would not fit).
    """
    old = trained.context.dataset
    if old.n_items != dataset.n_items or list(old.item_map.ids) != list(dataset.item_map.ids):
        raise ConfigError(
            f"cannot warm-start on {dataset.name!r} from a model of {old.name!r}: other items"
        )
    new_ids = list(dataset.user_map.ids)
    old_index = {user: i for i, user in enumerate(old.user_map.ids)}
    source = np.array([old_index.get(u, -1) for u in new_ids], dtype=np.int64)
    kept = source >= 0
    states: dict[str, dict[str, np.ndarray]] = {}
    for agent in trained.coordinator.agents:
        arrays = {k: np.array(v, copy=True) for k, v in agent.state().items()}
        for name in agent.user_arrays:
            rows = arrays[name]
            grown = np.zeros((len(new_ids), *rows.shape[1:]), dtype=rows.dtype)
            grown[kept] = rows[source[kept]]
            arrays[name] = grown
        states[agent.instance] = arrays
    logger.info(
        "warm start: %d of %d users keep their learned rows, %d start from their text",
        int(kept.sum()),
        len(new_ids),
        int((~kept).sum()),
    )
    return states


def _load_corpus(corpus: str | CorpusLike, settings: Settings) -> CorpusLike:
    if not isinstance(corpus, str):
        return corpus
    from recagents.data.dialogues import load_dialogues

    return load_dialogues(corpus, home=settings.home)


def _train_agents(
    split: Split,
    settings: Settings,
    *,
    user_weight: np.ndarray | None = None,
    dialogues: dict[str, Any] | None = None,
    warm: dict[str, tuple[dict[str, np.ndarray], int]] | None = None,
    namespace: str,
    run_dir: Path,
    roles: list[str] | None,
    user_shards: int,
    item_shards: int,
    max_rounds: int,
    patience: int,
    resume: bool,
    store: EmbeddingStore | None,
    progress: bool,
    rounds_only_seed: bool,
) -> TrainedAgents:
    began = time.perf_counter()
    # A finished run that is only reloaded (serve, chat) has no round left to train: it loads
    # in this process whatever engine trained it.
    on_ray = settings.engine == "ray" and not rounds_only_seed and not _finished(run_dir, resume)
    if on_ray:
        ray_store_url(settings, store)  # refuse before minutes of encoding
    chosen = registry.validate(roles or registry.defaults())
    context = build_context(
        split.dataset,
        split.train,
        settings,
        valid=split.valid,
        progress=progress,
        user_weight=user_weight,
        holdout=any(registry.get(role).learns_from_holdout for role in chosen),
    )
    store = store if store is not None else open_agent_store(settings)
    if not resume or not (run_dir / "metrics.json").exists():
        reset_namespace(store, namespace)  # never read another run's versions
    options: dict[str, Any] = {
        "namespace": namespace,
        "roles": roles,
        "run_dir": run_dir,
        "max_rounds": 1 if rounds_only_seed else max_rounds,
        "patience": patience,
        "user_shards": user_shards,
        "item_shards": item_shards,
        "progress": progress,
        "record": {"dialogues": dialogues},
        "warm": warm,
    }
    if on_ray:
        coordinator = _train_on_ray(context, store, settings, options, resume)
        return TrainedAgents(
            coordinator, coordinator.report, context, time.perf_counter() - began, dialogues
        )
    coordinator = Coordinator(context, store, **options)
    if rounds_only_seed:
        coordinator.seed_round(metrics={})
        report = coordinator.report
    else:
        report = coordinator.run(resume=resume)
    return TrainedAgents(coordinator, report, context, time.perf_counter() - began, dialogues)


class AgentsModel:
    """The agents as a :class:`~recagents.eval.baselines.ScoringModel` for ``evaluate``."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.name = options.pop("name", "agents")
        self.settings = settings
        self.options = options
        self.trained: TrainedAgents | None = None

    def fit(self, context: FitContext) -> AgentsModel:
        """Train on the split carried in ``context.extras`` (valid used for round selection)."""
        split = context.extras.get("split")
        if not isinstance(split, Split):
            raise ConfigError("the agents train on a split: use `recagents evaluate` or train")
        settings = context.extras.get("settings", self.settings)
        assert isinstance(settings, Settings)
        self.trained = train_agents(split, settings, run_name=self.name, **self.options)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores conditioned on all of train."""
        assert self.trained is not None
        if self.options.get("rounds_only_seed"):
            return self.trained.coordinator.scorer(self.trained.context.train, towers_only=True)(
                users
            )
        return self.trained.score(users)

    def info(self) -> dict[str, Any]:
        """Round-by-round report for ``--json``."""
        if self.trained is None:
            return {}
        return {**self.trained.report.to_dict(), "seconds": round(self.trained.seconds, 2)}


VARIANTS: dict[str, dict[str, Any]] = {
    "agents": {},
    "agents-text": {"rounds_only_seed": True},
    "agents-user_profile": {"roles": ["user_profile"]},
    "agents-item": {"roles": ["item"]},
    "agents-ranking": {"roles": ["ranking"]},
    "agents-shards4": {"user_shards": 4},
    "agents-round1": {"max_rounds": 1},
}
#: The agents and their ablations as a model table.
AGENT_MODELS: dict[str, ModelFactory] = {
    name: (lambda settings, n=name, o=options: AgentsModel(settings, name=n, **o))
    for name, options in VARIANTS.items()
}

#: Every model ``recagents evaluate --model`` and the benchmarks accept, in one explicit table.
MODELS: dict[str, ModelFactory] = {**BASELINE_MODELS, **AGENT_MODELS}


def run_dir_for(settings: Settings, dataset: str, run_name: str = "default") -> Path:
    """Where a run's checkpoints live."""
    return settings.runs_dir / f"{dataset}-s{settings.seed}-{run_name}"
