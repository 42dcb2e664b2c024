"""What a training run reports: one record per round, the chosen round, and a plot of them.

Plain data (``metrics.json`` is its :meth:`TrainingReport.to_dict`), so the serving side can show
a run's history without importing the round machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundRecord:
        """Read back a record written by :meth:`to_dict` (resuming a run)."""
        return cls(data["round"], data["valid"], data["agents"], data["seconds"])


@dataclass
class TrainingReport:
    """The whole run: rounds, the chosen one, and where things were written."""

    rounds: list[RoundRecord] = field(default_factory=list)
    best_round: int = 0
    stopped: str = ""
    run_dir: str = ""
    final_version: int = 0
    #: Where the rounds ran when not in this process (the Ray engine): nodes, actors, retries.
    cluster: dict[str, Any] = field(default_factory=dict)

    @property
    def best_ndcg(self) -> float:
        """Valid NDCG@10 of the chosen round."""
        return next((r.valid["ndcg@10"] for r in self.rounds if r.round == self.best_round), 0.0)

    def choose_best(self) -> None:
        """Point :attr:`best_round` at the round with the highest valid NDCG@10 (first on ties)."""
        self.best_round = max(self.rounds, key=lambda r: r.valid["ndcg@10"]).round

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``metrics.json``)."""
        out = {
            "rounds": [r.to_dict() for r in self.rounds],
            "best_round": self.best_round,
            "best_valid_ndcg@10": self.best_ndcg,
            "stopped": self.stopped,
            "final_version": self.final_version,
        }
        if self.cluster:
            out["cluster"] = self.cluster
        return out


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


__all__ = ["RoundRecord", "TrainingReport", "plot_rounds"]
