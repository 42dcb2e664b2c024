"""How much a fusion of EASE and the user agent's own model can give on ML-100K, at most.

Issue 14 asks the agents together for 1.02x the best single agent (the ranking agent alone: its
own EASE plus its re-ranker). This bench bounds what fusing the two models the collaboration has
can give: per seed (RecBole's RS split, as ``bench/agents.py`` writes it) it trains the user agent
alone on all of train (``roles = [user_profile]``, as the ``agents-user_profile`` row), fits EASE
(lambda 400, the agents' value) on all of train, and scores the per-user z-score sum
``EASE + w * user agent`` (z-scores over each user's unseen items, as the ranking agent's
features) for a grid of weights ``w``. It prints valid and test NDCG@10 per weight, the weight
picked on valid, and the best test figure over the grid: picking on test is not a model, it is
the ceiling of this family of fusions on that seed.

Usage: ``.venv/bin/python bench/fusion_ceiling.py [--seeds 2020,1,2] [--home H]`` (``--home``: a
home whose text-embedding cache is filled saves minutes of encoding; the run adds its own runs).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from recagents.env import ensure_offline

WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


def main() -> int:
    ensure_offline()
    from recagents.agents.ranking import _zscore
    from recagents.agents.trainer import train_agents
    from recagents.config import Settings
    from recagents.data import load_dataset
    from recagents.data.splits import rs_split
    from recagents.eval.baselines import ease_weights
    from recagents.eval.metrics import evaluate_ranking

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="2020,1,2")
    parser.add_argument("--home", type=Path, help="a recagents home (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    home = args.home or Path(tempfile.mkdtemp(prefix="recagents-bench-fusion-"))
    dataset = load_dataset("movielens-100k")
    print("| seed | fusion | valid NDCG@10 | test NDCG@10 |")
    print("|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        split = rs_split(dataset, seed)
        settings = Settings.load(home=home, seed=seed)
        trained = train_agents(
            split, settings, run_name="fusion-user", roles=["user_profile"], progress=False
        )
        train, valid = trained.context.train, trained.context.valid
        test = split.matrix("test")
        users = np.arange(train.shape[0])
        seen = np.asarray(train.todense()) > 0
        user = _zscore(trained.coordinator.scorer(train)(users), seen)
        ease = _zscore(np.asarray(train @ ease_weights(train, 400.0)), seen)

        def ndcg(scores: np.ndarray, target, masked) -> float:  # type: ignore[no-untyped-def]
            return float(evaluate_ranking(lambda u: scores[u], target, masked)["ndcg@10"])

        rows = [("EASE alone", ease), ("user agent alone", user)]
        rows += [(f"EASE + {w:g} x user agent", ease + w * user) for w in WEIGHTS]
        figures = []
        for name, scores in rows:
            v, t = ndcg(scores, valid, train), ndcg(scores, test, train + valid)
            figures.append((name, v, t))
            print(f"| {seed} | {name} | {v:.4f} | {t:.4f} |", flush=True)
        fused = figures[2:]
        on_valid = max(fused, key=lambda f: f[1])
        on_test = max(fused, key=lambda f: f[2])
        for label, (name, v, t) in (("picked on valid", on_valid), ("ceiling (on test)", on_test)):
            print(f"| {seed} | {label}: {name} | {v:.4f} | {t:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
