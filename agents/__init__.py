"""Agent roles, their registry and the collaborative rounds.

Importing this package registers the built-in roles (user_profile, item, ranking) and pulls in
torch; ``import recagents`` alone does not.
"""

from recagents.agents.base import ITEM, USER, Agent, AgentConfig, TrainContext
from recagents.agents.ranking import RankingAgent
from recagents.agents.registry import AgentRegistry, register, registry
from recagents.agents.towers import ItemAgent, UserProfileAgent

__all__ = [
    "ITEM",
    "USER",
    "Agent",
    "AgentConfig",
    "AgentRegistry",
    "ItemAgent",
    "RankingAgent",
    "TrainContext",
    "UserProfileAgent",
    "register",
    "registry",
]
