"""Agent roles, their registry and the collaborative rounds.

Importing this package registers the built-in roles (user_profile, item, ranking, and the opt-in
diversity re-ranker) and pulls in torch; ``import recagents`` alone does not.
"""

from recagents.agents.base import (
    ITEM,
    ITEM_BIAS,
    USER,
    USER_DECODER,
    Agent,
    AgentConfig,
    ConversingRole,
    Explainer,
    Publication,
    ReplicaWeights,
    TrainContext,
    peer_key,
)
from recagents.agents.diversity import DiversityReranker
from recagents.agents.ranking import RankingAgent
from recagents.agents.registry import AgentRegistry, register, registry
from recagents.agents.towers import ItemAgent, UserProfileAgent

__all__ = [
    "ITEM",
    "ITEM_BIAS",
    "USER",
    "USER_DECODER",
    "Agent",
    "AgentConfig",
    "AgentRegistry",
    "ConversingRole",
    "DiversityReranker",
    "Explainer",
    "ItemAgent",
    "Publication",
    "RankingAgent",
    "ReplicaWeights",
    "TrainContext",
    "UserProfileAgent",
    "peer_key",
    "register",
    "registry",
]
