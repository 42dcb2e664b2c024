"""Collaborative update rounds: agents learn from each other through the vector store.

Round 0 publishes every agent's text seed. In each later round every agent, in registry order,
pulls its peers' latest vectors *from the store*, trains against them and publishes a new version
of its own (collections are versioned by round). After each round the coordinator scores the
valid split, checkpoints every agent, and stops once valid NDCG@10 has not improved for
``patience`` rounds; the best round is restored and finalised.

With ``user_shards = N`` the user side runs N user-profile replicas, each owning the users with
``index % N == k``; the item side merges their shared weights, each item's row weighted by the
interactions each shard holds for it (federated averaging), so sharded rounds can run apart.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recagents.agents.base import ITEM, USER, Agent, AgentConfig, TrainContext
from recagents.agents.registry import AgentRegistry
from recagents.agents.registry import registry as default_registry
from recagents.agents.towers import ItemAgent, UserProfileAgent, seed_user_vectors, tower_scores
from recagents.errors import ConfigError
from recagents.eval.metrics import evaluate_ranking
from recagents.vectorstore.base import EmbeddingStore
from recagents.vectorstore.schema import collection_name, item_metadata, latest_version

logger = logging.getLogger(__name__)

DEFAULT_ROLES = ("user_profile", "item", "ranking")


@dataclass
class RoundRecord:
    """What one round did."""

    round: int
    valid: dict[str, float]
    agents: dict[str, dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "round": self.round,
            "valid": self.valid,
            "agents": self.agents,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class TrainingReport:
    """The whole run: rounds, the chosen one, and where things were written."""

    rounds: list[RoundRecord] = field(default_factory=list)
    best_round: int = 0
    stopped: str = ""
    run_dir: str = ""
    final_version: int = 0

    @property
    def best_ndcg(self) -> float:
        """Valid NDCG@10 of the chosen round."""
        return next((r.valid["ndcg@10"] for r in self.rounds if r.round == self.best_round), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``metrics.json``)."""
        return {
            "rounds": [r.to_dict() for r in self.rounds],
            "best_round": self.best_round,
            "best_valid_ndcg@10": self.best_ndcg,
            "stopped": self.stopped,
            "final_version": self.final_version,
        }


class Coordinator:
    """Runs rounds for a set of registered roles over one :class:`TrainContext`.

    Args:
        context: Data the agents train on (``fit``, ``holdout``, ``train``, ``valid``, texts).
        store: Where agents publish and read vectors: the only channel between them.
        namespace: Collection namespace (dataset + run); versions are round numbers.
        roles: Role names in training order (default: every registered role).
        registry: Role registry (inject one in tests).
        configs: Per-role config overrides.
        run_dir: Folder for checkpoints, ``metrics.json`` and ``rounds.png``; ``None`` keeps
            nothing on disk.
        max_rounds: Upper bound on rounds after round 0.
        patience: Rounds without valid improvement before stopping.
        user_shards: Number of user-profile replicas.
        progress: Show a progress bar.
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
        progress: bool = True,
    ) -> None:
        self.context = context
        self.store = store
        self.namespace = namespace
        self.registry = registry or default_registry
        self.roles = self.registry.validate(roles or self.registry.names())
        if max_rounds < 1 or patience < 1:
            raise ConfigError("max_rounds and patience must be at least 1")
        if user_shards < 1 or user_shards > context.n_users:
            raise ConfigError(f"user_shards must be between 1 and {context.n_users}")
        self.max_rounds, self.patience, self.user_shards = max_rounds, patience, user_shards
        self.run_dir = run_dir
        self.progress = progress
        configs = dict(configs or {})
        self.agents: list[Agent] = []
        self._best_in_memory: dict[str, tuple[dict[str, np.ndarray], int]] = {}
        for role in self.roles:
            if role == UserProfileAgent.name and user_shards > 1:
                for shard in range(user_shards):
                    cfg = {**configs.get(role, {}), "shard": shard, "shards": user_shards}
                    agent = self.registry.create(role, cfg)
                    agent.instance = f"{role}-{shard}"
                    self.agents.append(agent)
            else:
                self.agents.append(self.registry.create(role, configs.get(role)))
        self.report = TrainingReport(run_dir=str(run_dir or ""))

    # -- the store as the channel ------------------------------------------------------------

    def _ids(self, kind: str) -> list[str]:
        ids = self.context.dataset.user_map if kind == USER else self.context.dataset.item_map
        return list(ids.ids)[: self.context.n_users if kind == USER else self.context.n_items]

    def publish(self, agent: Agent, version: int) -> None:
        """Write an agent's vectors as ``version`` of its collection (user replicas: own rows)."""
        vectors = agent.vectors()
        if vectors is None or agent.publishes is None:
            return
        ids = self._ids(agent.publishes)
        rows = np.arange(len(ids))
        metadatas: list[dict[str, Any]] | None = None
        if isinstance(agent, UserProfileAgent):
            rows = agent.owned_users(self.context)
        if isinstance(agent, ItemAgent):
            bias = agent.biases()
            metadatas = [{"bias": float(bias[i])} for i in rows]
        name = collection_name(self.namespace, agent.publishes, version)
        self.store.upsert(name, [ids[i] for i in rows], vectors[rows], metadatas)

    def pull(self, kind: str) -> dict[str, np.ndarray]:
        """Peers' latest vectors of ``kind`` as read back from the store (empty when none)."""
        version = latest_version(self.store, self.namespace, kind)
        if version is None:
            return {}
        ids, vectors, metadatas = self.store.get(
            collection_name(self.namespace, kind, version), self._ids(kind)
        )
        out = {kind: vectors.astype(np.float32)}
        if kind == ITEM and metadatas and "bias" in metadatas[0]:
            out["item_bias"] = np.array([float(m["bias"]) for m in metadatas], dtype=np.float32)
        return out

    def peers_for(self, agent: Agent) -> dict[str, np.ndarray]:
        """What ``agent`` consumes, from the store."""
        peers: dict[str, np.ndarray] = {}
        for kind in agent.consumes:
            peers.update(self.pull(kind))
        return peers

    # -- scoring -----------------------------------------------------------------------------

    @property
    def user_agents(self) -> list[UserProfileAgent]:
        """The user-profile replicas (one unless sharded)."""
        return [a for a in self.agents if isinstance(a, UserProfileAgent)]

    @property
    def item_agent(self) -> ItemAgent | None:
        """The item agent, if it takes part."""
        return next((a for a in self.agents if isinstance(a, ItemAgent)), None)

    @property
    def ranker(self) -> Agent | None:
        """The last role that ranks items, if any."""
        return next((a for a in reversed(self.agents) if a.scores), None)

    def serving_peers(self, matrix: Any) -> dict[str, np.ndarray]:
        """User vectors conditioned on ``matrix`` (e.g. all of train) plus the items' vectors."""
        peers: dict[str, np.ndarray] = {}
        users = np.arange(self.context.n_users)
        if self.user_agents:
            vectors = np.zeros((self.context.n_users, self.context.dim), dtype=np.float32)
            for agent in self.user_agents:
                own = agent.owned_users(self.context)
                vectors[own] = agent.encode(own, matrix[own])
            peers[USER] = vectors
        else:
            peers[USER] = seed_user_vectors(self.context, matrix)[users]
        item = self.item_agent
        if item is not None:
            peers[ITEM] = item.vectors()
            peers["item_bias"] = item.biases()
        else:
            peers[ITEM] = self.context.item_text
        return peers

    def scorer(self, matrix: Any, *, towers_only: bool = False) -> Any:
        """``score(users) -> scores`` conditioned on the interactions in ``matrix``."""
        peers = self.serving_peers(matrix)
        ranker = None if towers_only else self.ranker
        if ranker is not None and ranker.rounds_trained > 0:
            return lambda users: ranker.score(np.asarray(users), peers, matrix)
        return lambda users: tower_scores(peers[USER][users], peers[ITEM], peers.get("item_bias"))

    def validate(self, *, towers_only: bool = False) -> dict[str, float]:
        """Valid metrics, ranking with everything in train (valid is never input)."""
        if self.context.valid is None:
            return {"ndcg@10": 0.0}
        score = self.scorer(self.context.train, towers_only=towers_only)
        result = evaluate_ranking(score, self.context.valid, self.context.train)
        return {k: round(v, 6) for k, v in result.items() if "@" in k}

    # -- rounds ------------------------------------------------------------------------------

    def run(self, *, resume: bool = False) -> TrainingReport:
        """Round 0 (seed), then rounds until valid NDCG@10 stops improving."""
        torch.manual_seed(self.context.seed)
        start_round = 0
        if resume:
            start_round = self._resume()
        if start_round == 0:
            for agent in self.agents:
                agent.setup(self.context)
            self._finish_round(0, {a.instance: {"seed": True} for a in self.agents}, time.time())
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
            began = time.time()
            metrics: dict[str, dict[str, Any]] = {}
            for agent in self.agents:
                metrics[agent.instance] = agent.partial_fit(self.context, self.peers_for(agent))
                if not (isinstance(agent, UserProfileAgent) and self.user_shards > 1):
                    self.publish(agent, number)
                elif agent is self.user_agents[-1]:
                    self._merge_user_replicas()
                    for replica in self.user_agents:
                        self.publish(replica, number)
            record = self._finish_round(number, metrics, began)
            bar.set_postfix(valid_ndcg=f"{record.valid['ndcg@10']:.4f}")
        if not self.report.stopped:
            self.report.stopped = f"reached max_rounds={self.max_rounds}"
        self._restore_best()
        self._finalize()
        return self.report

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
        valid = self.validate()
        record = RoundRecord(number, valid, metrics, time.time() - began)
        self.report.rounds.append(record)
        best = max(self.report.rounds, key=lambda r: r.valid["ndcg@10"])
        self.report.best_round = best.round
        logger.info(
            "round %d: valid ndcg@10 %.4f (%.1f s)", number, valid["ndcg@10"], record.seconds
        )
        self._checkpoint(number)
        return record

    def _merge_user_replicas(self) -> None:
        """Federated averaging of the replicas' shared weights, weighted by interactions."""
        replicas = self.user_agents
        fit = self.context.fit
        per_item = []
        totals = []
        for agent in replicas:
            own = agent.owned_users(self.context)
            per_item.append(np.asarray(fit[own].sum(axis=0)).ravel() + 1e-6)
            totals.append(float(fit[own].sum()) + 1e-6)
        item_w = torch.from_numpy(np.stack(per_item) / np.sum(per_item, axis=0))
        total_w = torch.tensor(totals) / sum(totals)
        models = [agent.model for agent in replicas]
        with torch.no_grad():
            item_in = sum(item_w[k][:, None].float() * m.item_in for k, m in enumerate(models))
            history = sum(total_w[k] * m.history_map for k, m in enumerate(models))
            text = sum(total_w[k] * m.text_map for k, m in enumerate(models))
            residual = torch.zeros_like(models[0].user_residual)
            for agent, model in zip(replicas, models, strict=True):
                own = torch.from_numpy(agent.owned_users(self.context))
                residual[own] = model.user_residual[own]
            for model in models:
                model.item_in.copy_(item_in)
                model.history_map.copy_(history)
                model.text_map.copy_(text)
                model.user_residual.copy_(residual)

    # -- checkpoints -------------------------------------------------------------------------

    def _round_dir(self, number: int) -> Path:
        assert self.run_dir is not None
        return self.run_dir / f"round-{number:04d}"

    def _checkpoint(self, number: int) -> None:
        if self.run_dir is None:
            # No folder to checkpoint into: keep the best round's weights in memory instead, so
            # that what is served is always the round the report calls best.
            if number == self.report.best_round:
                self._best_in_memory = {
                    agent.instance: (
                        {k: np.array(v, copy=True) for k, v in agent.state().items()},
                        agent.rounds_trained,
                    )
                    for agent in self.agents
                }
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        final = self._round_dir(number)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for agent in self.agents:
            agent.save(tmp)
        (tmp / "DONE").write_text(str(number), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)  # a crash mid-save leaves the previous round intact
        self._write_metrics()

    def _write_metrics(self) -> None:
        if self.run_dir is None:
            return
        data = {
            **self.report.to_dict(),
            "namespace": self.namespace,
            "roles": self.roles,
            "user_shards": self.user_shards,
        }
        tmp = self.run_dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.run_dir / "metrics.json")
        plot_rounds(self.report, self.run_dir / "rounds.png")

    def _resume(self) -> int:
        if self.run_dir is None or not (self.run_dir / "metrics.json").exists():
            logger.info("nothing to resume in %s: starting fresh", self.run_dir)
            return 0
        data = json.loads((self.run_dir / "metrics.json").read_text(encoding="utf-8"))
        if data.get("roles") != self.roles or data.get("user_shards") != self.user_shards:
            raise ConfigError(
                f"cannot resume {self.run_dir}: it was trained with roles {data.get('roles')} "
                f"and {data.get('user_shards')} user shards; pass the same options or a new run"
            )
        done = sorted(
            int(p.name.split("-")[1])
            for p in self.run_dir.glob("round-*")
            if not p.name.endswith(".tmp") and (p / "DONE").exists()
        )
        if not done:
            return 0
        last = done[-1]
        for agent in self.agents:
            agent.load(self._round_dir(last), self.context)
        self.report.rounds = [
            RoundRecord(r["round"], r["valid"], r["agents"], r["seconds"])
            for r in data["rounds"]
            if r["round"] <= last
        ]
        self.report.best_round = max(self.report.rounds, key=lambda r: r.valid["ndcg@10"]).round
        for agent in self.agents:  # the store may have lost the last round (new server)
            self.publish(agent, last)
        logger.info("resumed %s after round %d", self.run_dir, last)
        return last

    def _restore_best(self) -> None:
        best = self.report.best_round
        last = self.report.rounds[-1].round
        if best == last:
            return
        if self.run_dir is not None:
            for agent in self.agents:
                agent.load(self._round_dir(best), self.context)
        elif self._best_in_memory:
            for agent in self.agents:
                arrays, rounds = self._best_in_memory[agent.instance]
                agent.load_state(self.context, arrays)
                agent.rounds_trained = rounds  # after load_state, as in Agent.load
        logger.info("restored round %d (best valid NDCG@10)", best)

    def _finalize(self) -> None:
        """Publish serving vectors (users conditioned on all of train) as the final version."""
        ranker = self.ranker
        if ranker is not None and hasattr(ranker, "refit_history"):
            ranker.refit_history(self.context.train)
        peers = self.serving_peers(self.context.train)
        version = self.report.rounds[-1].round + 1
        ids = self._ids(USER)
        self.store.upsert(collection_name(self.namespace, USER, version), ids, peers[USER])
        item_ids = self._ids(ITEM)
        bias = peers.get("item_bias", np.zeros(len(item_ids)))
        metadata = item_metadata(self.context.dataset.items)
        for meta, value in zip(metadata, bias, strict=True):
            meta["bias"] = float(value)
        self.store.upsert(
            collection_name(self.namespace, ITEM, version), item_ids, peers[ITEM], metadata
        )
        self.report.final_version = version
        if self.run_dir is not None:
            final = self.run_dir / "final"
            tmp = self.run_dir / "final.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            for agent in self.agents:
                agent.save(tmp)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            self._write_metrics()


def plot_rounds(report: TrainingReport, path: Path) -> None:
    """Valid NDCG@10 and Recall@10 per round as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r.round for r in report.rounds]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key in ("ndcg@10", "recall@10"):
        ax.plot(rounds, [r.valid.get(key, 0.0) for r in report.rounds], marker="o", label=key)
    ax.axvline(report.best_round, color="grey", linestyle="--", linewidth=1, label="chosen round")
    ax.set_xlabel("round")
    ax.set_ylabel("validation")
    ax.set_title("Collaborative rounds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_configs(values: Mapping[str, Mapping[str, Any]] | None) -> dict[str, AgentConfig]:
    """Turn plain per-role tables into configs (helper for settings files)."""
    return {role: AgentConfig.from_mapping(cfg) for role, cfg in (values or {}).items()}


__all__ = ["Coordinator", "RoundRecord", "TrainingReport"]
