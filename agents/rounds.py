"""Collaborative update rounds: agents learn from each other through the vector store.

Round 0 publishes every agent's text seed. In each later round every agent, in registry order,
pulls its peers' latest vectors *from the store*, trains against them and publishes a new version
of its own (collections are versioned by round). After each round the coordinator scores the
valid split, checkpoints every agent, and stops once valid NDCG@10 has not improved for
``patience`` rounds; the best round is restored and its serving vectors published.

What a role publishes is its own business (:class:`~recagents.agents.base.Publication`); with
``user_shards = N`` the role that shards by user runs as N replicas, and with ``item_shards = M``
the role that shards by item as M (:mod:`recagents.agents.sharding`); rounds are kept by
:mod:`recagents.agents.checkpoints`.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recagents.agents.base import (
    ITEM,
    ITEM_BIAS,
    ROWS_OF,
    USER,
    Agent,
    Publication,
    TrainContext,
    peer_key,
)
from recagents.agents.checkpoints import BestInMemory, Checkpoints, RunFolder, read_report
from recagents.agents.registry import AgentRegistry
from recagents.agents.registry import registry as default_registry
from recagents.agents.report import RoundRecord, TrainingReport
from recagents.agents.sharding import make_replicas, merge
from recagents.agents.towers import text_seed, tower_scores
from recagents.errors import ConfigError
from recagents.eval.metrics import evaluate_ranking
from recagents.vectorstore.base import EmbeddingStore
from recagents.vectorstore.schema import (
    COLLECTION_PREFIX,
    collection_name,
    latest_version,
    parse_collection_name,
)

logger = logging.getLogger(__name__)

#: The built-in roles a run trains unless told otherwise: ``registry.defaults()`` without
#: plug-ins (the registered diversity re-ranker is opt-in).
DEFAULT_ROLES = ("user_profile", "item", "ranking")

#: The kinds of vectors that serve once training is over.
SERVED_KINDS = (USER, ITEM)


class Coordinator:
    """Runs rounds for a set of registered roles over one :class:`TrainContext`.

    Args:
        context: Data the agents train on (``fit``, ``holdout``, ``train``, ``valid``, texts).
        store: Where agents publish and read vectors: the only channel between them.
        namespace: Collection namespace (dataset + run); versions are round numbers.
        roles: Role names in training order (default: every registered role but the opt-in ones).
        registry: Role registry (inject one in tests).
        configs: Per-role config overrides.
        run_dir: Folder for checkpoints, ``metrics.json`` and ``rounds.png``; ``None`` keeps
            nothing on disk.
        max_rounds: Upper bound on rounds after round 0.
        patience: Rounds without valid improvement before stopping.
        user_shards: Number of replicas of the role that shards by user.
        item_shards: Number of replicas of the role that shards by item.
        progress: Show a progress bar.
        record: More facts ``metrics.json`` records about the run (the trainer's
            ``dialogues``: the corpora a union was trained with).
    """

    def __init__(
        self,
        context: TrainContext,
        store: EmbeddingStore,
        *,
        namespace: str,
        roles: Sequence[str] | None = None,
        registry: AgentRegistry | None = None,
        configs: Mapping[str, Mapping[str, Any]] | None = None,
        run_dir: Path | None = None,
        max_rounds: int = 8,
        patience: int = 2,
        user_shards: int = 1,
        item_shards: int = 1,
        progress: bool = True,
        record: Mapping[str, Any] | None = None,
        warm: Mapping[str, tuple[Mapping[str, np.ndarray], int]] | None = None,
    ) -> None:
        self.context = context
        #: Agent instance -> (state arrays, rounds it had trained) that round 0 starts from
        #: instead of the text seed.
        self.warm = dict(warm or {})
        self.store = store
        self.namespace = namespace
        self.registry = registry or default_registry
        self.roles = self.registry.validate(roles or self.registry.defaults())
        if max_rounds < 1 or patience < 1:
            raise ConfigError("max_rounds and patience must be at least 1")
        if user_shards < 1 or user_shards > context.n_users:
            raise ConfigError(f"user_shards must be between 1 and {context.n_users}")
        if item_shards < 1 or item_shards > context.n_items:
            raise ConfigError(f"item_shards must be between 1 and {context.n_items}")
        self.max_rounds, self.patience, self.user_shards = max_rounds, patience, user_shards
        self.item_shards = item_shards
        shards = {USER: user_shards, ITEM: item_shards}
        self.run_dir = run_dir
        self.progress = progress
        configs = dict(configs or {})
        self.agents: list[Agent] = []
        #: Role name -> its replicas, for the roles that run sharded.
        self.replicas: dict[str, list[Agent]] = {}
        for role in self.roles:
            count = shards.get(self.registry.get(role).shards_by or "", 1)
            if count > 1:
                group = make_replicas(self.registry, role, configs.get(role, {}), count)
                self.replicas[role] = group
                self.agents.extend(group)
            else:
                self.agents.append(self.registry.create(role, configs.get(role)))
        self._channel: StoreChannel | None = None
        self.report = TrainingReport(run_dir=str(run_dir or ""))
        settings = {
            "namespace": namespace,
            "roles": self.roles,
            "user_shards": user_shards,
            **({"item_shards": item_shards} if item_shards > 1 else {}),
            **dict(record or {}),
        }
        self.checkpoints: Checkpoints = (
            BestInMemory() if run_dir is None else RunFolder(run_dir, settings)
        )

    # -- the store as the channel ------------------------------------------------------------

    @property
    def channel(self) -> StoreChannel:
        """How this run's agents write to and read from the store (one per process)."""
        if self._channel is None:
            extras = {
                kind: tuple(
                    dict.fromkeys(e for a in self.publishers(kind) for e in a.publishes_extras)
                )
                for kind in (USER, ITEM)
            }
            for kind in self.companion_kinds():
                extras[kind] = tuple(
                    dict.fromkeys(e for a in self.agents for e in a.companions.get(kind, ()))
                )
            self._channel = StoreChannel(
                self.store, self.namespace, {kind: self._ids(kind) for kind in extras}, extras
            )
        return self._channel

    def companion_kinds(self) -> list[str]:
        """Companion kinds (:attr:`Agent.companions`) some agent of this run consumes.

        Only those travel through the store: a run without their consumer (the ranking agent
        reads the user agent's decoder) writes no collection nobody reads.
        """
        consumed = {kind for a in self.agents for kind in a.consumes}
        offered = dict.fromkeys(kind for a in self.agents for kind in a.companions)
        return [kind for kind in offered if kind in consumed]

    def _ids(self, kind: str) -> list[str]:
        rows = ROWS_OF.get(kind, kind)
        ids = self.context.dataset.user_map if rows == USER else self.context.dataset.item_map
        return list(ids.ids)[: self.context.n_users if rows == USER else self.context.n_items]

    def publishers(self, kind: str) -> list[Agent]:
        """The agents (replicas included) that publish vectors of ``kind``."""
        return [a for a in self.agents if a.publishes == kind]

    def _write(self, publication: Publication, version: int) -> None:
        """Upsert a publication as ``version`` of its kind's collection."""
        self.channel.write(publication, version)

    def publish(self, agent: Agent, version: int) -> None:
        """Write what an agent publishes as ``version`` of its collection (replicas: own rows)."""
        publication = agent.publication()
        if publication is not None:
            self._write(publication, version)

    def pull(self, kind: str) -> dict[str, np.ndarray]:
        """Peers' latest vectors of ``kind`` (and their extras) as read back from the store."""
        return self.channel.pull(kind)

    def peers_for(self, agent: Agent) -> dict[str, np.ndarray]:
        """What ``agent`` consumes, from the store."""
        return self.channel.peers(agent.consumes)

    # -- serving -----------------------------------------------------------------------------

    @property
    def ranker(self) -> Agent | None:
        """The last role that ranks items, if any."""
        return next((a for a in reversed(self.agents) if a.scores), None)

    def serving(self, matrix: sp.csr_matrix) -> dict[str, Publication]:
        """Every user's and item's serving vectors, users conditioned on ``matrix``.

        Each kind comes from the roles that publish it (replicas fill their own rows), or from
        the text seed when no role does.
        """
        parts: dict[str, list[Publication]] = {}
        for agent in self.agents:
            publication = agent.serving(matrix)
            for part in publication.flat() if publication is not None else ():
                parts.setdefault(part.kind, []).append(part)
        served = {}
        for kind in (*SERVED_KINDS, *self.companion_kinds()):
            combined = _combine(parts.get(kind, []), len(self._ids(kind)), self.context.dim)
            if combined is None and kind in SERVED_KINDS:
                combined = text_seed(self.context, kind, matrix)
            if combined is not None:
                served[kind] = combined
        return served

    def serving_peers(self, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
        """User vectors conditioned on ``matrix`` (e.g. all of train) plus the items' vectors."""
        peers: dict[str, np.ndarray] = {}
        for kind, publication in self.serving(matrix).items():
            peers[kind] = publication.vectors
            peers.update({peer_key(kind, k): v for k, v in publication.extras.items()})
        return peers

    def scorer(
        self, matrix: sp.csr_matrix, *, towers_only: bool = False
    ) -> Callable[[np.ndarray], np.ndarray]:
        """``score(users) -> scores`` conditioned on the interactions in ``matrix``."""
        peers = self.serving_peers(matrix)
        ranker = None if towers_only else self.ranker
        if ranker is not None and ranker.rounds_trained > 0:
            return lambda users: ranker.score(np.asarray(users), peers, matrix)
        alone = None if towers_only else self.alone()
        if alone is not None:
            return lambda users: alone.own_scores(np.asarray(users), matrix)
        return lambda users: tower_scores(peers[USER][users], peers[ITEM], peers.get(ITEM_BIAS))

    def alone(self) -> Agent | None:
        """The one agent of a single-role run, when it ranks with a model of its own.

        A single-agent ablation (``roles = [user_profile]``) ranks with that agent's own model
        (:meth:`~recagents.agents.base.Agent.own_scores`), not with its vectors against a
        peer's text seed; a replicated role (each replica holds its own rows) does not.
        """
        if len(self.agents) != 1 or self.agents[0].shard()[1] > 1:
            return None
        agent = self.agents[0]
        return agent if ranks_alone(agent, self.context) else None

    def validate(self, *, towers_only: bool = False) -> dict[str, float]:
        """Valid metrics, ranking with everything in train (valid is never input)."""
        if self.context.valid is None:
            return {"ndcg@10": 0.0}
        score = self.scorer(self.context.train, towers_only=towers_only)
        result = evaluate_ranking(score, self.context.valid, self.context.train)
        return {k: round(v, 6) for k, v in result.items() if "@" in k}

    # -- rounds ------------------------------------------------------------------------------

    def seed_round(self, metrics: Mapping[str, Any] | None = None) -> RoundRecord:
        """Round 0: every agent starts from the text seed (or its warm state) and publishes it.

        A warm state (``warm``: a feedback round starting from the served model, its user
        rows grown to the new user table) replaces the text seed for the agents it names. The
        agents keep their ``rounds_trained``, so round 0 is validated as the served model
        scores (a ranker that has trained ranks), and a later round serves only if it beats it.
        """
        began = time.time()
        for agent in self.agents:
            if agent.instance in self.warm:
                arrays, rounds = self.warm[agent.instance]
                agent.load_state(self.context, arrays)
                agent.rounds_trained = int(rounds)  # after load_state, as in Agent.load
            else:
                agent.setup(self.context)
        if metrics is None:
            metrics = {
                a.instance: {"warm": True} if a.instance in self.warm else {"seed": True}
                for a in self.agents
            }
        return self._finish_round(0, dict(metrics), began)

    def run(self, *, resume: bool = False) -> TrainingReport:
        """Round 0 (seed), then rounds until valid NDCG@10 stops improving."""
        # Every process-wide generator starts from the run's seed (a library drawing from
        # numpy's or Python's would otherwise make two runs differ); resume restores them.
        torch.manual_seed(self.context.seed)
        np.random.seed(self.context.seed % 2**32)
        random.seed(self.context.seed)
        resumed = self._resume() if resume else None
        if resumed is None:  # not "== 0": a run resumed after round 0 must not seed it again
            self.seed_round()
        start_round = resumed or 0
        from tqdm.auto import tqdm

        bar = tqdm(
            range(start_round + 1, self.max_rounds + 1),
            desc="collaborative rounds",
            disable=not self.progress,
            unit="round",
        )
        for number in bar:
            if self._should_stop():
                break
            record = self.train_round(number)
            bar.set_postfix(valid_ndcg=f"{record.valid['ndcg@10']:.4f}")
        if not self.report.stopped:
            self.report.stopped = f"reached max_rounds={self.max_rounds}"
        self._restore_best()
        self._finalize()
        return self.report

    def groups(self) -> list[list[Agent]]:
        """The agents in training order, a role's replicas together."""
        out: list[list[Agent]] = []
        for agent in self.agents:
            replicas = self.replicas.get(agent.name)
            if replicas is not None and agent is not replicas[0]:
                continue
            out.append(list(replicas) if replicas is not None else [agent])
        return out

    def train_round(self, number: int) -> RoundRecord:
        """Every agent pulls its peers, trains and publishes; replicas publish once merged."""
        began = time.time()
        self._drop_versions_after(number - 1)
        metrics: dict[str, dict[str, Any]] = {}
        for group in self.groups():
            replicated = group[0].name in self.replicas
            metrics.update(self.run_group(group, number, publish=not replicated))
            if replicated:
                self.merge_group(group)
                for replica in group:
                    self.publish(replica, number)
        return self._finish_round(number, metrics, began)

    def run_group(
        self, group: Sequence[Agent], number: int, *, publish: bool
    ) -> dict[str, dict[str, Any]]:
        """Train one role (or its replicas, one after another) for round ``number``.

        Each agent pulls its peers' latest vectors from the store, trains, and publishes its own
        (``publish``; replicas publish once merged). The Ray engine runs the same step inside
        each agent's actor, replicas at once (:mod:`recagents.agents.distributed`).
        """
        metrics = {}
        for agent in group:
            metrics[agent.instance] = train_step(agent, self.context, self.channel, number, publish)
        return metrics

    def merge_group(self, replicas: Sequence[Agent]) -> None:
        """Federated averaging of a role's replicas (in place)."""
        merge(replicas, self.context)

    def _should_stop(self) -> bool:
        history = [r.valid["ndcg@10"] for r in self.report.rounds]
        if len(history) <= self.patience:
            return False
        best_at = int(np.argmax(history))
        if len(history) - 1 - best_at >= self.patience:
            self.report.stopped = (
                f"valid NDCG@10 did not improve for {self.patience} rounds after round "
                f"{self.report.rounds[best_at].round}"
            )
            return True
        return False

    def _finish_round(self, number: int, metrics: dict, began: float) -> RoundRecord:
        if number == 0:
            for agent in self.agents:
                self.publish(agent, 0)
        for agent in self.agents:  # each agent's own model, next to the run's figure
            own = own_validation(agent, self.context)
            if own is not None:
                metrics.setdefault(agent.instance, {})[OWN_VALID] = own
        valid = self.validate()
        record = RoundRecord(number, valid, metrics, time.time() - began)
        self.report.rounds.append(record)
        self.report.choose_best()
        logger.info(
            "round %d: valid ndcg@10 %.4f (%.1f s)", number, valid["ndcg@10"], record.seconds
        )
        self.checkpoints.save_round(number, self.agents, self.report)
        return record

    def _resume(self) -> int | None:
        """Load the last finished round; its number, or ``None`` when there is none."""
        resumed = self.checkpoints.resume(self.agents, self.context)
        if resumed is None:
            return None
        last, self.report.rounds = resumed
        self.report.choose_best()
        if self.run_dir is not None:  # where the earlier rounds ran (the Ray engine's record)
            cluster = read_report(self.run_dir).get("cluster")
            self.report.cluster = dict(cluster) if isinstance(cluster, dict) else {}
        for agent in self.agents:  # the store may have lost the last round (new server)
            self.publish(agent, last)
        logger.info("resumed %s after round %d", self.run_dir, last)
        return last

    def _drop_versions_after(self, last: int) -> None:
        """Drop the store's versions after ``last`` before round ``last + 1`` trains.

        They are what an interrupted run's half-done round published (or the serving version
        of a finished run resumed with more rounds). Peers read the *latest* version: a
        half-done round left in the store would feed the resumed round vectors an
        uninterrupted run never saw. A fresh run has none to drop.
        """
        ours = parse_collection_name(collection_name(self.namespace, USER, 0))
        assert ours is not None
        for name in self.store.collections(prefix=f"{COLLECTION_PREFIX}.{ours[0]}."):
            parsed = parse_collection_name(name)
            if parsed is not None and parsed[0] == ours[0] and parsed[2] > last:
                self.store.drop(name)

    def _restore_best(self) -> None:
        best = self.report.best_round
        if best == self.report.rounds[-1].round:
            return
        self.checkpoints.restore(best, self.agents, self.context)
        logger.info("restored round %d (best valid NDCG@10)", best)

    def _finalize(self) -> None:
        """Publish serving vectors (users conditioned on all of train) as the final version."""
        for agent in self.agents:
            agent.refit_history(self.context.train)
        version = self.report.rounds[-1].round + 1
        for publication in self.serving(self.context.train).values():
            self._write(publication, version)
        self.report.final_version = version
        self.checkpoints.save_final(self.agents, self.report)


class StoreChannel:
    """The only channel between agents: versioned collections of one run in a vector store.

    The coordinator and, under the Ray engine, every agent's actor hold one each (over the same
    ChromaDB server), so an agent reads its peers and publishes its own vectors itself.

    Args:
        store: The vector store.
        namespace: The run's collection namespace.
        ids: External ids per kind, in row order.
        extras: Per kind, the names of the per-row extras its publishers attach.
    """

    def __init__(
        self,
        store: EmbeddingStore,
        namespace: str,
        ids: Mapping[str, Sequence[str]],
        extras: Mapping[str, Sequence[str]],
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.ids = {kind: list(values) for kind, values in ids.items()}
        self.extras = {kind: tuple(values) for kind, values in extras.items()}
        #: Bytes of vectors and extras this channel wrote and read back (the arrays' payload,
        #: not the store's wire format): what a round moves through the store, for sizing.
        self.traffic = {"written": 0, "read": 0}

    def write(self, publication: Publication, version: int) -> None:
        """Upsert a publication and its companions as ``version`` of their kinds' collections.

        A companion of a kind this channel does not carry (nobody in the run reads it) is
        dropped.
        """
        for index, part in enumerate(publication.flat()):
            if index == 0 or part.kind in self.ids:
                self._write(part, version)

    def _write(self, publication: Publication, version: int) -> None:
        ids = self.ids[publication.kind]
        metadatas: list[dict[str, Any]] | None = None
        if publication.extras or publication.metadata is not None:
            described = publication.metadata or [{} for _ in publication.rows]
            metadatas = [
                {**meta, **{name: float(v[j]) for name, v in publication.extras.items()}}
                for j, meta in enumerate(described)
            ]
        name = collection_name(self.namespace, publication.kind, version)
        self.traffic["written"] += _payload(publication.vectors, publication.extras.values())
        self.store.upsert(name, [ids[i] for i in publication.rows], publication.vectors, metadatas)

    def pull(self, kind: str) -> dict[str, np.ndarray]:
        """Peers' latest vectors of ``kind`` (and their extras) as read back from the store."""
        version = latest_version(self.store, self.namespace, kind)
        if version is None:
            return {}
        ids, vectors, metadatas = self.store.get(
            collection_name(self.namespace, kind, version), self.ids[kind]
        )
        out = {kind: vectors.astype(np.float32)}
        for extra in self.extras.get(kind, ()):
            if metadatas and extra in metadatas[0]:
                values = [float(m[extra]) for m in metadatas]
                out[peer_key(kind, extra)] = np.array(values, dtype=np.float32)
        self.traffic["read"] += _payload(out[kind], [v for k, v in out.items() if k != kind])
        return out

    def peers(self, consumes: Sequence[str]) -> dict[str, np.ndarray]:
        """Every kind in ``consumes``, from the store."""
        peers: dict[str, np.ndarray] = {}
        for kind in consumes:
            peers.update(self.pull(kind))
        return peers


def _payload(vectors: np.ndarray, extras: Any) -> int:
    """Bytes of a publication's float32 arrays: vectors plus per-row extras."""
    rows = len(vectors)
    return int(rows * vectors.shape[1] * 4 + sum(4 * len(v) for v in extras))


def step_seed(seed: int, instance: str, number: int) -> int:
    """The seed of one agent's step in one round: a function of what the step is, nothing else.

    Torch's process-wide generator (the user tower's dropout draws from it) is reseeded with it
    before every step, so a step draws the same numbers whichever agents ran before it in the
    same process: the local engine (every agent in one process) and the Ray engine (one process
    per agent) give the same numbers, and a retried round repeats the lost one exactly.
    """
    return (int(seed) * 1_000_003 + zlib.crc32(instance.encode("utf-8")) * 7_919 + number) % 2**63


#: The key of an agent's round metrics holding its own model's valid NDCG@10.
OWN_VALID = "own_valid_ndcg@10"
#: Users x items cells past which the per-agent valid figure is skipped (it scores every user).
OWN_VALID_CELLS = 2**26


def ranks_alone(agent: Agent, context: TrainContext) -> bool:
    """Whether the agent has a model of its own to rank with (asked with no users: cheap)."""
    return agent.own_scores(np.zeros(0, dtype=np.int64), context.train) is not None


def own_validation(agent: Agent, context: TrainContext) -> float | None:
    """Valid NDCG@10 of the agent's own model alone (``None``: it has none, or cannot say).

    Conditioned on all of train, as the run's valid figure, and measured by the coordinator
    after each round (on the Ray engine the agent scores in its actor); a replica holds part of
    the rows, and past :data:`OWN_VALID_CELLS` the full ranking costs more than the round it
    describes.
    """
    valid = context.valid
    if valid is None or agent.shard()[1] > 1:
        return None
    if context.n_users * context.n_items > OWN_VALID_CELLS or not ranks_alone(agent, context):
        return None
    result = evaluate_ranking(
        lambda users: agent.own_scores(np.asarray(users), context.train), valid, context.train
    )
    return round(float(result["ndcg@10"]), 6)


def train_step(
    agent: Agent, context: TrainContext, channel: StoreChannel, number: int, publish: bool
) -> dict[str, Any]:
    """One agent's part of a round: read peers from the store, train, publish (both engines)."""
    torch.manual_seed(step_seed(context.seed, agent.instance, number))
    metrics = agent.partial_fit(context, channel.peers(agent.consumes))
    if publish:
        publication = agent.publication()
        if publication is not None:
            channel.write(publication, number)
    return metrics


def _combine(parts: Sequence[Publication], n_rows: int, dim: int) -> Publication | None:
    """One publication covering every row, from the parts replicas publish (``None``: no parts).

    A single part that already covers every row in order is returned as it is.
    """
    if not parts:
        return None
    if len(parts) == 1 and np.array_equal(parts[0].rows, np.arange(n_rows)):
        return parts[0]
    vectors = np.zeros((n_rows, dim), dtype=np.float32)
    extras = {name: np.zeros(n_rows, dtype=np.float32) for name in parts[0].extras}
    metadata: list[Mapping[str, Any]] | None = None
    if parts[0].metadata is not None:
        metadata = [{} for _ in range(n_rows)]
    for part in parts:
        vectors[part.rows] = part.vectors
        for name, values in part.extras.items():
            extras[name][part.rows] = values
        if metadata is not None and part.metadata is not None:
            for row, meta in zip(part.rows, part.metadata, strict=True):
                metadata[int(row)] = meta
    return Publication(parts[0].kind, vectors, np.arange(n_rows), extras, metadata)


__all__ = [
    "DEFAULT_ROLES",
    "SERVED_KINDS",
    "Coordinator",
    "StoreChannel",
    "OWN_VALID",
    "own_validation",
    "step_seed",
    "train_step",
]
