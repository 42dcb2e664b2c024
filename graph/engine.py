"""The serving engine: a finished run, seen from the conversation.

The graph's nodes need a handful of answers from the trained agents: every item's score for a
(possibly cold) profile, whether an item passes the hard constraints, the evidence behind a pick,
and where the item agent's serving vectors are. :class:`Engine` gives exactly those, typed, so no
node reaches into the training coordinator. It wraps :class:`~recagents.agents.trainer.
TrainedAgents` (what a run leaves behind) and is built once per process by :meth:`Engine.load`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from recagents.agents.base import ITEM, Agent, ConversingRole
from recagents.agents.report import TrainingReport
from recagents.agents.trainer import ProfileScores, TrainedAgents
from recagents.config import Settings
from recagents.data import Dataset
from recagents.types import Recommendation
from recagents.vectorstore.base import EmbeddingStore
from recagents.vectorstore.schema import collection_name, item_genres, item_people, where_filter


class Engine:
    """Answers the conversation's questions about items and profiles from one finished run.

    Args:
        trained: The finished run (agents, report, training context).
    """

    def __init__(self, trained: TrainedAgents) -> None:
        self.trained = trained
        items = trained.context.dataset.items
        self._genres = item_genres(items)
        self._years = items["year"].astype("float").to_numpy()
        self._people = item_people(items)

    @classmethod
    def load(cls, settings: Settings, *, progress: bool = False, **train_options: Any) -> Engine:
        """The default run of ``settings`` (trained first when no finished run exists)."""
        from recagents.agents.trainer import train_agents
        from recagents.data import load_dataset
        from recagents.data.splits import rs_split

        dataset = load_dataset(settings.dataset, home=settings.home)
        trained = train_agents(
            rs_split(dataset, settings.seed),
            settings,
            resume=True,
            progress=progress,
            **train_options,
        )
        return cls(trained)

    # -- what the run holds ----------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset:
        """The catalog and its users."""
        return self.trained.context.dataset

    @property
    def store(self) -> EmbeddingStore:
        """The vector store the agents published to."""
        return self.trained.coordinator.store

    @property
    def namespace(self) -> str:
        """The run's collection namespace (``<dataset>-s<seed>-<run>``)."""
        return self.trained.coordinator.namespace

    @property
    def report(self) -> TrainingReport:
        """The run's rounds, the chosen round and where its files are."""
        return self.trained.report

    @property
    def item_collection(self) -> str:
        """The item agent's final (serving) collection."""
        return collection_name(self.namespace, ITEM, self.trained.report.final_version)

    @cached_property
    def popularity(self) -> np.ndarray:
        """Train interactions per item (the title matcher breaks ties with it)."""
        return np.asarray(self.trained.context.train.sum(axis=0)).ravel()

    @property
    def agents(self) -> list[Agent]:
        """Every trained role, in training order."""
        return list(self.trained.coordinator.agents)

    def conversing_roles(self) -> list[ConversingRole]:
        """The roles that take part in a conversation turn (they implement ``converse``)."""
        return [a for a in self.agents if isinstance(a, ConversingRole)]

    def history(self, user: int) -> np.ndarray:
        """A known user's train items (indices)."""
        return self.trained.context.train[user].indices

    # -- answers ----------------------------------------------------------------------------------

    def profile_scores(
        self,
        user_id: str | None,
        liked: Sequence[str] = (),
        text_vector: np.ndarray | None = None,
    ) -> ProfileScores:
        """Every item's score for a known user, or a cold one described by items (and words)."""
        return self.trained.profile_scores(user_id, liked, text_vector)

    def evidence(self, profile: ProfileScores, item: int) -> Recommendation:
        """One item with its score and the evidence behind it, for a scored profile."""
        return self.trained.recommendation(profile, item)

    def genres(self, item: int) -> set[str]:
        """An item's genres."""
        return self._genres[item]

    def allowed(self, item: int, constraints: dict[str, Any]) -> bool:
        """Whether an item satisfies the hard constraints (genres, years, people)."""
        genres = self._genres[item]
        if set(constraints.get("genres_exclude", [])) & genres:
            return False
        include = constraints.get("genres_include")
        if include and not set(include) & genres:
            return False
        year = self._years[item]
        if constraints.get("year_from") is not None and not year >= constraints["year_from"]:
            return False
        if constraints.get("year_to") is not None and not year <= constraints["year_to"]:
            return False
        people = [p.lower() for p in constraints.get("people", [])]
        if not people:
            return True
        match = any if constraints.get("people_any") else all
        return match(p in self._people[item] for p in people)

    @staticmethod
    def where(constraints: dict[str, Any]) -> dict[str, Any] | None:
        """The hard constraints as a vector-store ``where`` filter (people are checked in code)."""
        return where_filter(constraints)
