"""The serving engine: a finished run, seen from the conversation.

The graph's nodes need a handful of answers from the trained agents: every item's score for a
(possibly cold) profile, whether an item passes the hard constraints, the evidence behind a pick,
and where the item agent's serving vectors are. :class:`Engine` gives exactly those, typed, so no
node reaches into the training coordinator. It wraps :class:`~recagents.agents.trainer.
TrainedAgents` (what a run leaves behind) and is built once per process by :meth:`Engine.load`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np

from recagents.agents.base import ITEM, Agent, ConversingRole
from recagents.agents.report import TrainingReport
from recagents.agents.trainer import ProfileScores, TrainedAgents
from recagents.config import Settings
from recagents.data import Dataset
from recagents.graph.coldstart import MAX_SEEDS, ColdStart, diversify
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

    @cached_property
    def coldstart(self) -> ColdStart:
        """Popularity, damped mean ratings and content similarity for short profiles."""
        context = self.trained.context
        union = self.trained.dialogues or {}
        return ColdStart.from_training(
            context.dataset,
            context.train,
            context.item_text,
            user_weight=context.user_weight,
            dialogue_users=int(union.get("users", 0)),
        )

    def profile_scores(
        self,
        user_id: str | None,
        liked: Sequence[str] = (),
        text_vector: np.ndarray | None = None,
        constraints: dict[str, Any] | None = None,
    ) -> ProfileScores:
        """Every item's score for a known user, or a cold one described by items (and words).

        A known user keeps the agents' scores. Someone new with no liked film gets the popular,
        well-liked order (``kind="cold"``); with one to :data:`MAX_SEEDS` liked films, the
        agents' scores blended with co-liking and content similarity (``kind="seeds"``), and
        when the hard ``constraints`` exclude every one of those films, their kind first
        (:meth:`ColdStart.keep_kind`); see :mod:`recagents.graph.coldstart` for why.
        """
        profile = self.trained.profile_scores(user_id, liked, text_vector)
        if user_id is not None and user_id in self.dataset.user_map:
            return profile
        seeds = [int(i) for i in profile.history]
        if not seeds and text_vector is None:
            return replace(profile, scores=self.coldstart.cold_scores(), kind="cold")
        if seeds and len(seeds) <= MAX_SEEDS:
            scores = self.coldstart.blend(seeds, profile.scores)
            if constraints and not any(self.allowed(s, constraints) for s in seeds):
                scores = self.coldstart.keep_kind(seeds, scores)
            return replace(profile, scores=scores, kind="seeds")
        return profile

    def evidence(self, profile: ProfileScores, item: int) -> Recommendation:
        """One item with its score, match and the evidence behind it, for a scored profile.

        The catalog facts the explanations may cite (train ratings, mean rating, whether the
        film is among the most-rated) are added to ``agent_scores``; a cold list, ranked by
        them alone, carries only them (the agents' views did not rank it).
        """
        rec = self.trained.recommendation(profile, item)
        facts = self.coldstart.facts(item)
        scores = dict(rec.evidence.agent_scores)
        if profile.kind == "cold":
            scores = {"popularity": scores.get("popularity", 0.0), "final": rec.score}
        return replace(rec, evidence=replace(rec.evidence, agent_scores={**scores, **facts}))

    def choose(self, profile: ProfileScores, ordered: Sequence[int], k: int) -> list[int]:
        """The first ``k`` of ``ordered`` (best first); a cold list is spread over genres."""
        if profile.kind != "cold":
            return [int(i) for i in ordered[:k]]
        pool = [int(i) for i in ordered[: max(30, 5 * k)]]
        return diversify(pool, profile.scores, self.coldstart.genres, k)

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
