"""Where a run's rounds are kept, so the best one can be restored and a crashed run resumed.

:class:`RunFolder` writes every round to ``round-NNNN/`` (renamed into place with a ``DONE``
marker, so a crash mid-save leaves the previous round intact), the report to ``metrics.json``
(with its plot, ``rounds.png``) and the served agents to ``final/``. Without a folder,
:class:`BestInMemory` keeps only the best round's weights, so what is served is always the round
the report calls best.

Each round folder also holds the report as of that round (``metrics.json``) and a ``SHA256SUMS``
of its files, written before the folder is renamed into place: at start a damaged round or a
damaged run ``metrics.json`` is found and the run falls back to its last good round
(:mod:`recagents.agents.integrity`).
"""

from __future__ import annotations

import json
import logging
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recagents.agents.base import Agent, TrainContext
from recagents.agents.report import RoundRecord, TrainingReport, plot_rounds
from recagents.agents.train_state import (
    drop_training_state,
    load_training_state,
    save_training_state,
)
from recagents.errors import ConfigError
from recagents.integrity import write_manifest

logger = logging.getLogger(__name__)


class Checkpoints(ABC):
    """How the round loop keeps rounds: saved after each, restored once the best is known."""

    @abstractmethod
    def save_round(self, number: int, agents: Sequence[Agent], report: TrainingReport) -> None:
        """Keep round ``number`` (``report`` already records it)."""

    @abstractmethod
    def restore(self, number: int, agents: Sequence[Agent], context: TrainContext) -> None:
        """Put round ``number``'s weights back into ``agents``."""

    def resume(
        self, agents: Sequence[Agent], context: TrainContext
    ) -> tuple[int, list[RoundRecord]] | None:
        """Load the last finished round into ``agents``; its number and the records up to it.

        Returns ``None`` when there is nothing to resume (a fresh run starts at round 0).
        """
        logger.info("nothing to resume: starting fresh")
        return None

    def save_final(self, agents: Sequence[Agent], report: TrainingReport) -> None:
        """Keep the agents that serve (after the best round is restored and refitted)."""
        return None


class BestInMemory(Checkpoints):
    """No folder: a copy of the best round's weights in memory, nothing on disk."""

    def __init__(self) -> None:
        self._best: dict[str, tuple[dict[str, np.ndarray], int]] = {}

    def save_round(self, number: int, agents: Sequence[Agent], report: TrainingReport) -> None:
        """Copy the weights when ``number`` is (so far) the best round."""
        if number == report.best_round:
            self._best = {
                agent.instance: (
                    {k: np.array(v, copy=True) for k, v in agent.state().items()},
                    agent.rounds_trained,
                )
                for agent in agents
            }

    def restore(self, number: int, agents: Sequence[Agent], context: TrainContext) -> None:
        """Load the copied weights (``number`` is the best round, the only one kept)."""
        if not self._best:
            return
        for agent in agents:
            arrays, rounds = self._best[agent.instance]
            agent.load_state(context, arrays)
            agent.rounds_trained = rounds  # after load_state, as in Agent.load


class RunFolder(Checkpoints):
    """A run's folder: round checkpoints, ``metrics.json``, ``rounds.png`` and ``final/``.

    Args:
        path: The run's folder (created on the first save).
        settings: What else ``metrics.json`` records about the run (``namespace``, ``roles``,
            ``user_shards``); ``roles`` and ``user_shards`` must match to resume.
    """

    def __init__(self, path: Path, settings: Mapping[str, Any]) -> None:
        self.path = path
        self.settings = dict(settings)

    def round_dir(self, number: int) -> Path:
        """Folder of one round's checkpoint."""
        return self.path / f"round-{number:04d}"

    def _save_agents(
        self,
        agents: Sequence[Agent],
        final: Path,
        marker: str | None,
        report: TrainingReport | None = None,
    ) -> None:
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for agent in agents:
            agent.save(tmp)
        if marker is not None:  # a round: what resuming needs to repeat the next rounds exactly
            save_training_state(tmp, agents)
        if report is not None:  # the report as of this round: restores a damaged metrics.json
            (tmp / "metrics.json").write_text(self._report_json(report), encoding="utf-8")
        write_manifest(tmp)  # SHA256SUMS, checked at start (recagents.agents.integrity)
        if marker is not None:
            (tmp / "DONE").write_text(marker, encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)  # a crash mid-save leaves the previous copy intact

    def save_round(self, number: int, agents: Sequence[Agent], report: TrainingReport) -> None:
        """Save every agent into ``round-NNNN`` (with ``DONE``), then the report."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._save_agents(agents, self.round_dir(number), str(number), report)
        self.write_report(report)
        for earlier in self.finished_rounds():  # resume needs only the last round's
            if earlier < number:
                drop_training_state(self.round_dir(earlier))

    def save_final(self, agents: Sequence[Agent], report: TrainingReport) -> None:
        """Save the serving agents into ``final/``, then the report."""
        self._save_agents(agents, self.path / "final", None)
        self.write_report(report)

    def write_report(self, report: TrainingReport) -> None:
        """``metrics.json`` (replaced atomically) and its plot ``rounds.png``."""
        tmp = self.path / "metrics.json.tmp"
        tmp.write_text(self._report_json(report), encoding="utf-8")
        tmp.replace(self.path / "metrics.json")
        plot_rounds(report, self.path / "rounds.png")

    def _report_json(self, report: TrainingReport) -> str:
        return json.dumps({**report.to_dict(), **self.settings}, indent=2)

    def restore(self, number: int, agents: Sequence[Agent], context: TrainContext) -> None:
        """Load round ``number``'s checkpoint."""
        for agent in agents:
            agent.load(self.round_dir(number), context)

    def finished_rounds(self) -> list[int]:
        """Rounds whose checkpoint was completely written, ascending."""
        return sorted(
            int(p.name.split("-")[1])
            for p in self.path.glob("round-*")
            if not p.name.endswith(".tmp") and (p / "DONE").exists()
        )

    def resume(
        self, agents: Sequence[Agent], context: TrainContext
    ) -> tuple[int, list[RoundRecord]] | None:
        """Load the last finished round, refusing a folder trained with other options.

        Raises:
            ConfigError: The folder was trained with other roles or user or item shards.
        """
        if not (self.path / "metrics.json").exists():
            logger.info("nothing to resume in %s: starting fresh", self.path)
            return None
        data = json.loads((self.path / "metrics.json").read_text(encoding="utf-8"))
        roles, shards = self.settings.get("roles"), self.settings.get("user_shards")
        items = self.settings.get("item_shards", 1)
        if (
            data.get("roles") != roles
            or data.get("user_shards") != shards
            or data.get("item_shards", 1) != items
        ):
            raise ConfigError(
                f"cannot resume {self.path}: it was trained with roles {data.get('roles')}, "
                f"{data.get('user_shards')} user shards and {data.get('item_shards', 1)} item "
                "shards; pass the same options or a new run"
            )
        # A round whose folder is in place but whose record is not (killed between the two
        # writes) is trained again rather than skipped: the history keeps every round once.
        recorded = {int(r["round"]) for r in data["rounds"]}
        done = [n for n in self.finished_rounds() if n in recorded]
        if not done:
            return None
        last = done[-1]
        self.restore(last, agents, context)
        load_training_state(self.round_dir(last), agents)  # after restore: it re-seeds
        records = [RoundRecord.from_dict(r) for r in data["rounds"] if r["round"] <= last]
        return last, records


def read_report(run_dir: Path) -> dict[str, Any]:
    """A run's ``metrics.json`` as plain data; empty when absent or unreadable.

    For what a run *recorded* (its corpora, where it trained, whether it finished); a damaged
    report is found and repaired by :mod:`recagents.agents.integrity`, not here.
    """
    try:
        data = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["BestInMemory", "Checkpoints", "RunFolder", "read_report"]
