"""Roles as plug-ins: a registry with a decorator, instances injectable for isolated tests.

Third-party packages add roles through the entry-point group ``recagents.agents``; a role registered
there joins the training rounds and the conversation without editing this package.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from recagents.agents.base import Agent, AgentConfig
from recagents.errors import ConfigError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "recagents.agents"
A = TypeVar("A", bound=type[Agent])


class AgentRegistry:
    """Name -> agent class; training order is each class's ``order``, then registration.

    Args:
        entry_points: Load the roles installed packages advertise (on first lookup); tests
            switch it off to stay isolated from whatever is installed.
    """

    def __init__(self, *, entry_points: bool = True) -> None:
        self._classes: dict[str, type[Agent]] = {}
        self._entry_points_loaded = not entry_points

    def register(self, cls: A | None = None, *, name: str | None = None) -> Any:
        """Register an :class:`Agent` subclass; usable as ``@registry.register``.

        Raises:
            ConfigError: The name is empty or already taken by another class.
        """

        def add(klass: A) -> A:
            key = name or klass.name
            if not key:
                raise ConfigError(f"{klass.__name__} has no name: set the class attribute `name`")
            if not (isinstance(klass, type) and issubclass(klass, Agent)):
                raise ConfigError(f"{klass!r} is not an Agent subclass")
            existing = self._classes.get(key)
            if existing is not None and existing is not klass:
                raise ConfigError(
                    f"agent role {key!r} is already registered by {existing.__module__}."
                    f"{existing.__qualname__}; pick another name"
                )
            self._classes[key] = klass
            return klass

        return add if cls is None else add(cls)

    def unregister(self, name: str) -> None:
        """Remove a role (tests, or replacing a built-in)."""
        self._classes.pop(name, None)

    def load_entry_points(self) -> None:
        """Import roles advertised by installed packages (once)."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                klass = entry.load()
            except Exception as exc:  # a broken plug-in must not break the core
                logger.warning("cannot load agent plug-in %s: %s", entry.value, exc)
                continue
            self.register(klass, name=entry.name)

    def names(self) -> list[str]:
        """Registered role names, in training order."""
        self.load_entry_points()
        position = {name: i for i, name in enumerate(self._classes)}
        return sorted(self._classes, key=lambda n: (self._classes[n].order, position[n]))

    def defaults(self) -> list[str]:
        """The roles a run trains when it names none: every registered role but the opt-in ones."""
        return [name for name in self.names() if not self._classes[name].opt_in]

    def get(self, name: str) -> type[Agent]:
        """The class of a role.

        Raises:
            ConfigError: Unknown name (the message lists the known ones).
        """
        self.load_entry_points()
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(
                f"unknown agent role {name!r}; registered roles: {', '.join(self._classes)}"
            ) from None

    def create(self, name: str, config: AgentConfig | Mapping[str, Any] | None = None) -> Agent:
        """Instantiate a role with its config."""
        klass = self.get(name)
        if not isinstance(config, AgentConfig):
            config = AgentConfig.from_mapping(
                {**klass.default_config().to_dict(), **dict(config or {})}
            )
        return klass(config)

    def validate(self, names: Iterable[str]) -> list[str]:
        """Check a role selection (known names, no duplicates); return it in training order.

        Raises:
            ConfigError: Unknown or repeated names.
        """
        chosen = list(names)
        seen: set[str] = set()
        for name in chosen:
            self.get(name)
            if name in seen:
                raise ConfigError(f"agent role {name!r} is listed twice")
            seen.add(name)
        if not chosen:
            raise ConfigError("no agent roles selected")
        order = self.names()
        return sorted(chosen, key=order.index)

    def __contains__(self, name: object) -> bool:
        self.load_entry_points()
        return name in self._classes


#: The process-wide registry the built-in roles register with.
registry = AgentRegistry()

register: Callable[..., Any] = registry.register
