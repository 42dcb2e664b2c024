"""Data-parallel replicas of a role: replica ``k`` of ``N`` owns the rows with ``row % N == k``.

The rows are users for a role that shards by user (``user_shards``), items for one that shards
by item (``item_shards``). Each replica trains on its own rows only, so replicas can run apart
(processes, machines); after each round the role merges their shared state by federated
averaging. This module decides who owns what and how much each replica counts; the role merges
its own tensors (:meth:`~recagents.agents.base.Agent.merge_replicas`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recagents.agents.base import ITEM, Agent, ReplicaWeights, TrainContext
from recagents.agents.registry import AgentRegistry

#: Added to every count, so an item no replica saw still has a defined weighted average.
_EPSILON = 1e-6


def make_replicas(
    registry: AgentRegistry, role: str, config: Mapping[str, Any], shards: int
) -> list[Agent]:
    """``shards`` instances of ``role``, each told its shard; named ``<role>-<k>``."""
    replicas = []
    for shard in range(shards):
        agent = registry.create(role, {**config, "shard": shard, "shards": shards})
        agent.instance = f"{role}-{shard}"
        replicas.append(agent)
    return replicas


def replica_weights(replicas: Sequence[Agent], context: TrainContext) -> ReplicaWeights:
    """Each replica's weight: the interactions of its rows, per item and in all.

    A user replica holds its users' interactions with every item; an item replica holds every
    user's interactions with its own items (zero for the other items).
    """
    fit = context.fit
    per_item = []
    totals = []
    for agent in replicas:
        own = agent.owned_rows(context)
        if agent.shards_by == ITEM:
            counts = np.zeros(context.n_items)
            counts[own] = np.asarray(fit[:, own].sum(axis=0)).ravel()
            total = float(counts.sum())
        else:
            counts = np.asarray(fit[own].sum(axis=0)).ravel()
            total = float(fit[own].sum())
        per_item.append(counts + _EPSILON)
        totals.append(total + _EPSILON)
    return ReplicaWeights(np.stack(per_item), tuple(totals))


def merge(replicas: Sequence[Agent], context: TrainContext) -> None:
    """Merge the replicas' shared state in place (the role does the arithmetic)."""
    type(replicas[0]).merge_replicas(replicas, replica_weights(replicas, context))


__all__ = ["make_replicas", "merge", "replica_weights"]
