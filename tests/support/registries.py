"""A registry per test: the default roles (plus any asked for), apart from the process-wide one."""

from __future__ import annotations

import recagents.agents  # noqa: F401  (registers the built-in roles)
from recagents.agents.registry import AgentRegistry, registry
from recagents.agents.rounds import DEFAULT_ROLES


def isolated_registry(*extra: str, entry_points: bool = False) -> AgentRegistry:
    """A fresh registry holding the default roles and ``extra`` registered roles, by name.

    Args:
        extra: Names of further roles from the process-wide registry (e.g. ``"diversity"``).
        entry_points: Also load roles advertised by installed packages (the plug-in tests
            patch what "installed" means); off by default so installed plug-ins stay out.
    """
    fresh = AgentRegistry(entry_points=entry_points)
    for name in (*DEFAULT_ROLES, *extra):
        fresh.register(registry.get(name))
    return fresh
