"""Collaborative rounds on a Ray cluster: every agent (and replica) an actor in its own process.

Each actor reads its peers from, and publishes to, a ChromaDB server.

The round is the local engine's (:class:`~recagents.agents.rounds.Coordinator`); this module only
says *where* each step runs. :class:`RayCoordinator` is a ``Coordinator`` whose agents are
:class:`RemoteAgent` handles: each step of a round (:func:`~recagents.agents.rounds.train_step`:
read peers from the store, train, publish) runs inside the agent's actor, a role's replicas at
the same time; the driver merges replicas (federated averaging, weighted as in the local engine),
scores valid, checkpoints (each actor writes its own files into the run folder, which every node
must see), stops early, restores the best round and publishes the serving vectors.

Why actors rather than tasks: an agent keeps its model and optimiser between rounds, so it must
live somewhere; an actor is that place, and Ray restarts it when its process dies
(``max_restarts``). A restarted actor comes back with its data slice but no model: the driver then
restores *every* agent from the last finished round's checkpoint and trains the round again, so no
finished round is lost and the retried round starts from the same weights and optimiser state
(and the same random draws: every step reseeds torch from the seed, the agent and the round,
:func:`~recagents.agents.rounds.step_seed`). A node gone for good (an
actor that cannot be restarted within :data:`RESTART_TIMEOUT_S`) ends the run with a message
naming the lost shard and how to resume.

Each actor holds only its slice of the data: a replica of a role that shards by user
(``user % N == k``) gets the interaction rows of its own users, one of a role that shards by item
(``item % M == k``) the columns of its own items (the others are empty), so its data and work
shrink with ``N`` or ``M``; the other roles get the whole training context. The driver
keeps the whole context (it validates and merges).

Ray binds the machine's external address unless told otherwise, even with
``--node-ip-address=127.0.0.1``; :data:`RAY_ENV` keeps every socket on loopback when a single
machine hosts the cluster (measured; see README "Run on a cluster").
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recagents.agents.base import ITEM, USER, Agent, Publication, TrainContext
from recagents.agents.checkpoints import RunFolder
from recagents.agents.report import RoundRecord
from recagents.agents.rounds import Coordinator, StoreChannel, train_step
from recagents.agents.sharding import merge
from recagents.agents.train_state import load_training_state
from recagents.errors import ConfigError, RecagentsError
from recagents.vectorstore.base import EmbeddingStore

logger = logging.getLogger(__name__)

#: Environment every Ray process of ours needs: without the first variable Ray rewrote
#: 127.0.0.1 to the machine's external address; usage statistics would try the network.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
#: How often a lost actor's round is retried from the last finished round before giving up.
MAX_ROUND_RETRIES = 2
#: How long the driver waits for a lost actor to be running again (Ray restarts it).
RESTART_TIMEOUT_S = 60.0
#: Ray restarts an actor whose process died this many times over a run.
MAX_RESTARTS = 4


class ActorRestarted(RuntimeError):
    """Raised by an actor Ray restarted after its process died.

    It holds no model until the driver restores it, so anything but a restore is refused rather
    than answered wrongly.
    """


class DistributedTrainingError(RecagentsError):
    """A shard's actor was lost for good (its node is gone); the message says how to resume."""


def _ray() -> Any:
    """Ray, imported on first use (it costs seconds and the local engine never needs it)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise ConfigError("the Ray engine needs the 'ray' package: pip install ray") from exc
    return ray


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the one running on this machine).

    Without an address a private single-machine cluster starts inside this process (loopback
    only, no dashboard). Returns whether this call connected (and so should disconnect).

    Raises:
        ConfigError: No cluster answers at ``address``.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(
                _node_ip_address="127.0.0.1",
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"no Ray cluster at {address or 'this machine'}: {exc}. Start one with "
            "`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address=127.0.0.1 "
            "--port 6379`, then pass --ray-address 127.0.0.1:6379 (or auto)"
        ) from exc
    return True


def cluster_summary() -> dict[str, Any]:
    """What ``ray status`` shows: alive nodes with their CPUs and memory, and resources in use."""
    ray = _ray()
    nodes = [
        {
            "node_id": n["NodeID"],
            "address": n.get("NodeManagerAddress"),
            "cpus": n.get("Resources", {}).get("CPU", 0.0),
            "memory_gb": round(n.get("Resources", {}).get("memory", 0.0) / 2**30, 2),
            "head": "node:__internal_head__" in n.get("Resources", {}),
        }
        for n in ray.nodes()
        if n.get("Alive")
    ]
    return {"nodes": nodes, "cluster_resources": ray.cluster_resources()}


def slice_context(
    context: TrainContext, agent: Agent, *, peers_publish_users: bool = True
) -> TrainContext:
    """The part of ``context`` an agent's actor holds: its own rows for a replica.

    A user replica (``user % N == k``) keeps its users' interaction rows, an item replica
    (``item % M == k``) its items' columns plus every user's history size (its loss needs the
    whole row's count); the other entries are empty. An item replica keeps every column when no
    role publishes user vectors (``peers_publish_users``): it then seeds users from their whole
    history. ``valid`` never leaves the driver (actors do not select rounds).
    """
    if agent.shards_by is None or agent.shard()[1] <= 1:
        return _for_actors(context)
    if agent.shards_by == ITEM and not peers_publish_users:
        return _for_actors(context)
    own = agent.owned_rows(context)
    by_item = agent.shards_by == ITEM
    keep = np.zeros(context.n_items if by_item else context.n_users)
    keep[own] = 1.0

    def part(matrix: sp.csr_matrix) -> sp.csr_matrix:
        # The mask in the matrix's own dtype: a float64 mask turned float32 interactions into
        # float64, and a replica's dense blocks doubled (measured: 5.5 GB user replicas at
        # 10^5 items, against 2.4 GB for the unsliced tower).
        mask = sp.diags(keep.astype(matrix.dtype))
        out = sp.csr_matrix(matrix @ mask if by_item else mask @ matrix)
        out.eliminate_zeros()
        return out

    sliced = _for_actors(context)
    if by_item:
        sliced.history_size = context.history_sizes()
    sliced.fit, sliced.holdout, sliced.train = (
        part(context.fit),
        part(context.holdout),
        part(context.train),
    )
    return sliced


def _for_actors(context: TrainContext) -> TrainContext:
    """What every actor holds: no ``valid``, and the catalog without its interaction table.

    The agents train on the context's matrices; the dataset's raw interaction table (one row per
    interaction, every user's) would travel to every actor and make each one's memory grow with
    the whole data set, not its slice (pickled, 53 MB of a 99 MB context at 10^5 users x 10^4
    items; a user replica of 4 now ships 28 MB).
    """
    out = copy.copy(context)
    out.valid = None
    dataset = copy.copy(context.dataset)
    dataset.interactions = context.dataset.interactions.iloc[:0]
    out.dataset = dataset
    return out


class AgentActor:
    """The process that owns one agent (or replica): its model, optimiser and data slice."""

    def __init__(
        self,
        agent: Agent,
        context: TrainContext,
        store_url: str,
        namespace: str,
        ids: Mapping[str, Sequence[str]],
        extras: Mapping[str, Sequence[str]],
        threads: int = 1,
    ) -> None:
        import torch

        from recagents.vectorstore.chroma import ChromaStore

        torch.set_num_threads(max(1, int(threads)))
        logging.basicConfig(
            level=logging.INFO,
            format=f"[{agent.instance}] %(levelname)s %(name)s: %(message)s",
            force=True,
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per store request
        import ray

        self.agent = agent
        self.context = context
        self.channel = StoreChannel(ChromaStore(url=store_url), namespace, ids, extras)
        #: Ray re-ran this constructor after the process died: no model until restored.
        self.restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)

    def _live(self) -> None:
        if self.restarted:
            raise ActorRestarted(f"{self.agent.instance} was restarted and holds no model")

    def __repr__(self) -> str:
        # Ray prefixes the actor's log lines with this: "(user_profile-1 pid=...)"
        return self.agent.instance

    def where(self) -> dict[str, Any]:
        """Node, process and the interactions this actor holds."""
        import ray

        return {
            "instance": self.agent.instance,
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "interactions": int(self.context.fit.nnz + self.context.holdout.nnz),
        }

    def usage(self) -> dict[str, int]:
        """Peak resident memory of this actor's process and its store traffic so far (bytes).

        Read inside the actor because that is the process whose size matters when planning
        how many actors a node holds (``bench/scale.py``).
        """
        import resource

        return {
            "pid": os.getpid(),
            "max_rss": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            **{f"store_{k}": int(v) for k, v in self.channel.traffic.items()},
        }

    def setup(self) -> None:
        """Round 0: the text seed."""
        self.agent.setup(self.context)
        self.restarted = False

    def step(self, number: int, publish: bool) -> dict[str, Any]:
        """This agent's part of round ``number`` (:func:`train_step`)."""
        self._live()
        began = time.time()
        metrics = train_step(self.agent, self.context, self.channel, number, publish)
        logger.info("round %d trained in %.1f s", number, time.time() - began)
        return metrics

    def call(self, method: str, *args: Any) -> Any:
        """Any other agent method, run here (``load_state``/``load``: with this actor's data)."""
        if method in ("load_state", "load"):
            getattr(self.agent, method)(args[0], self.context)
            self.restarted = False
            return None
        self._live()
        return getattr(self.agent, method)(*args)

    def rounds(self, value: int | None = None) -> int:
        """The agent's trained rounds (set when ``value`` is given)."""
        self._live()
        if value is not None:
            self.agent.rounds_trained = int(value)
        return int(self.agent.rounds_trained)

    def assign(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Replace the weights in place (merged replicas): the optimiser keeps its moments."""
        import torch

        self._live()
        state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        self.agent.model.load_state_dict(state, strict=False)  # type: ignore[attr-defined]


class Shipped:
    """Large driver-side arguments put into the object store once, then passed by reference.

    Validation scores the valid users in batches with the same serving peers (every user's and
    item's vectors, megabytes) and the same train matrix; passing them by value serialised and
    copied them into the object store again on every call. The ``ObjectRef`` of the last few
    objects is kept, keyed by identity (a strong reference is held, so an id is never reused
    while cached): the driver never changes a peers mapping or a matrix it has passed.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._refs: list[tuple[Any, Any]] = []

    def __call__(self, value: Any) -> Any:
        """The ``ObjectRef`` of ``value`` (put now unless it was put already)."""
        for kept, ref in self._refs:
            if kept is value:
                return ref
        ref = _ray().put(value)
        self._refs = [(value, ref), *self._refs][: self.size]
        return ref


class RemoteAgent:
    """The driver's handle on an agent living in an :class:`AgentActor`.

    It answers what the coordinator asks of an :class:`~recagents.agents.base.Agent`; the
    role's description (name, kinds, config, owned rows) comes from the local prototype, the
    work from the actor.

    Calls that return nothing (``setup``, ``load``, ``refit_history``) are sent without waiting:
    the coordinator asks them of every agent in turn, and waiting for each made the actors work
    one after another (round 0's text seeds alone cost a second per actor). An actor runs the
    calls of one caller in the order they were sent, so every later call still sees their
    effect; the next call that waits (:meth:`settle`) raises their errors.
    """

    def __init__(self, prototype: Agent, actor: Any, shipped: Shipped | None = None) -> None:
        self.prototype = prototype
        self.actor = actor
        self.shipped = shipped if shipped is not None else Shipped()
        self._pending: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.prototype, name)

    def settle(self) -> None:
        """Wait for the calls sent without waiting; raise the first one's error."""
        if self._pending:
            pending, self._pending = self._pending, []
            _ray().get(pending)

    def forget(self) -> None:
        """Drop the calls sent without waiting: their round is being trained again."""
        self._pending = []

    def _send(self, method: str, *args: Any) -> None:
        self._pending.append(self.actor.call.remote(method, *args))

    def _call(self, method: str, *args: Any) -> Any:
        ref = self.actor.call.remote(method, *args)
        self.settle()
        return _ray().get(ref)

    @property
    def rounds_trained(self) -> int:
        """Rounds the actor's agent has trained."""
        ref = self.actor.rounds.remote()
        self.settle()
        return int(_ray().get(ref))

    @rounds_trained.setter
    def rounds_trained(self, value: int) -> None:
        ref = self.actor.rounds.remote(int(value))
        self.settle()
        _ray().get(ref)

    def setup(self, context: TrainContext) -> None:
        """The text seed, in the actor (with its own slice of ``context``); not waited for."""
        self._pending.append(self.actor.setup.remote())

    def publication(self) -> Publication | None:
        """What the actor's agent publishes."""
        return self._call("publication")

    def serving(self, matrix: sp.csr_matrix) -> Publication | None:
        """Serving vectors conditioned on ``matrix``."""
        return self._call("serving", self.shipped(matrix))

    def score(
        self, users: np.ndarray, peers: Mapping[str, np.ndarray], matrix: sp.csr_matrix
    ) -> np.ndarray:
        """Scores of every item for ``users`` (peers and matrix shipped once per object)."""
        return self._call("score", users, self.shipped(peers), self.shipped(matrix))

    def own_scores(self, users: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray | None:
        """The actor's agent's own scores for ``users`` (matrix shipped once per object)."""
        return self._call("own_scores", users, self.shipped(matrix))

    def refit_history(self, matrix: sp.csr_matrix) -> None:
        """Refit what the agent derives from history on ``matrix``; not waited for."""
        self._send("refit_history", self.shipped(matrix))

    def state(self) -> dict[str, np.ndarray]:
        """The agent's weights."""
        return self._call("state")

    def training_state(self) -> dict[str, np.ndarray]:
        """The agent's optimiser state."""
        return self._call("training_state")

    def load_training_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore optimiser state."""
        self._call("load_training_state", dict(arrays))

    def load_state(self, context: TrainContext, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore weights (the actor uses its own slice of the data)."""
        self._call("load_state", dict(arrays))

    def save(self, folder: Path) -> Path:
        """The actor writes its checkpoint files into ``folder`` (which every node sees)."""
        return self._call("save", folder)

    def load(self, folder: Path, context: TrainContext) -> None:
        """The actor loads its checkpoint files from ``folder``; not waited for."""
        self._send("load", folder)


class RayCoordinator(Coordinator):
    """A :class:`Coordinator` whose agents run as Ray actors (see the module docstring).

    Args (beyond the coordinator's):
        store_url: The ChromaDB server every actor reaches (the driver's ``store`` must be the
            same server).
        actor_threads: Torch threads per actor.
    """

    def __init__(
        self,
        context: TrainContext,
        store: EmbeddingStore,
        *,
        store_url: str,
        actor_threads: int = 1,
        **options: Any,
    ) -> None:
        if options.get("run_dir") is None:
            raise ConfigError("the Ray engine checkpoints every round: give the run a folder")
        if options.get("warm"):
            raise ConfigError("a warm start (feedback round) runs on the local engine")
        super().__init__(context, store, **options)
        ray = _ray()
        if not ray.is_initialized():
            raise ConfigError("connect to a Ray cluster first (agents.distributed.connect)")
        channel = self.channel
        actor_class = ray.remote(AgentActor)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n["node_id"] for n in cluster_summary()["nodes"]]
        handles: dict[str, RemoteAgent] = {}
        shipped = Shipped()
        for number, agent in enumerate(self.agents):
            # Round-robin over the nodes (SPREAD, and soft affinity, left every actor on the head
            # at times). Hard: an actor whose process dies restarts on its node; one whose node
            # is gone cannot, and the run stops naming its shard (see _lost).
            place = NodeAffinitySchedulingStrategy(nodes[number % len(nodes)], soft=False)
            actor = actor_class.options(
                num_cpus=0,
                scheduling_strategy=place,
                max_restarts=MAX_RESTARTS,
                max_task_retries=0,
            ).remote(
                agent,
                slice_context(context, agent, peers_publish_users=bool(self.publishers(USER))),
                store_url,
                self.namespace,
                channel.ids,
                channel.extras,
                actor_threads,
            )
            handles[agent.instance] = RemoteAgent(agent, actor, shipped)
        self.remote = handles
        self.agents = [handles[a.instance] for a in self.agents]  # type: ignore[misc]
        self.replicas = {
            role: [handles[a.instance] for a in group]  # type: ignore[misc]
            for role, group in self.replicas.items()
        }
        self.placement = ray.get([h.actor.where.remote() for h in handles.values()])
        self.report.cluster = {
            "engine": "ray",
            **cluster_summary(),
            "actors": self.placement,
            "retried_rounds": [],
        }

    # -- where the steps run -------------------------------------------------------------------

    def run_group(
        self, group: Sequence[Agent], number: int, *, publish: bool
    ) -> dict[str, dict[str, Any]]:
        """The role's actors train at once (replicas in parallel), each reading the store."""
        ray = _ray()
        handles = [self.remote[a.instance] for a in group]
        steps = [h.actor.step.remote(number, publish) for h in handles]
        for handle in handles:
            handle.settle()
        results = ray.get(steps)
        return {h.instance: m for h, m in zip(handles, results, strict=True)}

    def merge_group(self, replicas: Sequence[Agent]) -> None:
        """Federated averaging in the driver, written back into each replica's actor in place."""
        ray = _ray()
        handles = [self.remote[a.instance] for a in replicas]
        arrays = ray.get([h.actor.call.remote("state") for h in handles])
        shadows = []
        for handle, state in zip(handles, arrays, strict=True):
            shadow = copy.deepcopy(handle.prototype)
            shadow.load_state(self.context, state)
            shadows.append(shadow)
        merge(shadows, self.context)
        ray.get([h.actor.assign.remote(s.state()) for h, s in zip(handles, shadows, strict=True)])

    # -- faults --------------------------------------------------------------------------------

    def seed_round(self, metrics: Mapping[str, Any] | None = None) -> RoundRecord:
        """Round 0, retried when an actor dies during it."""
        return self._retrying(-1, lambda: super(RayCoordinator, self).seed_round(metrics))

    def train_round(self, number: int) -> RoundRecord:
        """One round; an actor lost mid-round is restarted and the round trained again."""
        return self._retrying(number - 1, lambda: super(RayCoordinator, self).train_round(number))

    def _retrying(self, last: int, attempt: Any) -> RoundRecord:
        ray = _ray()
        for tries in range(MAX_ROUND_RETRIES + 1):
            try:
                return attempt()
            except (
                ray.exceptions.RayActorError,
                ray.exceptions.ActorUnschedulableError,
                ray.exceptions.RayTaskError,
            ) as exc:
                if isinstance(exc, ray.exceptions.RayTaskError) and not isinstance(
                    getattr(exc, "cause", None), ActorRestarted
                ):
                    raise
                logger.warning("an actor was lost during round %d: %s", last + 1, exc)
                for handle in self.remote.values():
                    handle.forget()  # their errors are this one's: not raised again on retry
                lost = self._wait_for_actors()
                if lost or tries == MAX_ROUND_RETRIES:
                    raise self._lost(lost or self._suspects(exc), last) from exc
                self.report.cluster["retried_rounds"].append(last + 1)
                self._restore_finished(last)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_for_actors(self) -> list[str]:
        """Wait until every actor answers again; the ones that never did."""
        ray = _ray()
        deadline = time.time() + RESTART_TIMEOUT_S
        lost = []
        for handle in self.remote.values():
            while True:
                try:
                    ray.get(handle.actor.where.remote(), timeout=max(1.0, deadline - time.time()))
                    break
                except ray.exceptions.RayActorError:
                    if time.time() >= deadline:
                        lost.append(handle.instance)
                        break
                    time.sleep(0.5)
                except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnschedulableError):
                    lost.append(handle.instance)  # its node is gone: no restart will come
                    break
        return lost

    def _suspects(self, exc: BaseException) -> list[str]:
        text = str(exc)
        named = [name for name in self.remote if name in text]
        return named or list(self.remote)

    def _restore_finished(self, last: int) -> None:
        """Every agent back to round ``last``'s checkpoint (or the text seed before round 0)."""
        assert isinstance(self.checkpoints, RunFolder)
        if last < 0:
            return  # round 0 is set up again from the text seed
        self.checkpoints.restore(last, self.agents, self.context)
        load_training_state(self.checkpoints.round_dir(last), self.agents)
        logger.info("restored round %d after losing an actor; round %d again", last, last + 1)

    def _lost(self, lost: Sequence[str], last: int) -> DistributedTrainingError:
        shards = []
        for name in lost:
            agent = self.remote[name].prototype
            k, n = agent.shard()
            where = next((p for p in self.placement if p["instance"] == name), {})
            kind = "item" if agent.shards_by == ITEM else "user"
            shard = f"{kind} shard {k} of {n}" if n > 1 else "no shard"
            shards.append(f"{name} ({shard}, was on node {where.get('node_id', '?')[:12]})")
        return DistributedTrainingError(
            f"lost for good during round {last + 1}: {', '.join(shards)}; the finished rounds "
            f"(up to {last}) are saved in {self.run_dir}. Bring the node back (or add one), then "
            "run the same `recagents train --engine ray ... --resume`"
        )

    # -- the end -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every actor of this run."""
        ray = _ray()
        for handle in self.remote.values():
            ray.kill(handle.actor, no_restart=True)


__all__ = [
    "MAX_ROUND_RETRIES",
    "ActorRestarted",
    "RAY_ENV",
    "AgentActor",
    "DistributedTrainingError",
    "RayCoordinator",
    "RemoteAgent",
    "Shipped",
    "cluster_summary",
    "connect",
    "slice_context",
]
