"""The Ray engine against the local engine on one dataset, side by side in one run (issue 13).

Usage:
    .venv/bin/python bench/engines.py [--dataset movielens-100k] [--seed 2020] [--user-shards 1]
        [--ray-address ADDRESS] [--json]

Starts a ChromaDB server (``chroma run`` on a free loopback port, stopped by PID at the end) and
trains the same split twice into one temporary home, both engines publishing to that server:
``--engine local`` (every agent in this process) and ``--engine ray`` (every agent, and every
user replica, a Ray actor; a private single-machine cluster unless ``--ray-address`` is given).
Text embeddings are encoded once before either run (cached under the home), so both runs time
only the rounds plus loading. Prints each round's valid NDCG@10 for both engines, the best
round, test NDCG@10 and the wall time of each ``train_agents`` call, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from recagents.env import ensure_offline

ensure_offline()

import torch  # noqa: E402
from scale import start_chroma  # noqa: E402  (bench/: the script's own folder)

from recagents.agents.trainer import build_context, train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.splits import rs_split  # noqa: E402
from recagents.eval.metrics import evaluate_ranking  # noqa: E402


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--user-shards", type=int, default=1)
    parser.add_argument("--ray-address", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="recagents-engines-") as tmp:
        home = Path(tmp)
        proc, url = start_chroma(home / "chroma-server")
        try:
            base = Settings.load(home=home, seed=args.seed, chroma_url=url, dataset=args.dataset)
            # Torch threads as `recagents train` sets them (settings.threads, 1 by default): the
            # local engine trains in this process, the Ray engine's actors use as many each.
            torch.set_num_threads(base.threads)
            dataset = load_dataset(args.dataset)
            split = rs_split(dataset, args.seed)
            build_context(dataset, split.train, base)  # encode once: both runs read the cache
            rows = {}
            for engine in ("local", "ray"):
                settings = base.replace(engine=engine, ray_address=args.ray_address or None)
                began = time.perf_counter()
                trained = train_agents(
                    split, settings, run_name=f"engine-{engine}", progress=False,
                    user_shards=args.user_shards,
                )  # fmt: skip
                seconds = time.perf_counter() - began
                test = evaluate_ranking(
                    trained.score,
                    split.matrix("test"),
                    (split.matrix("train") + split.matrix("valid")).tocsr(),
                )
                rows[engine] = {
                    "seconds": round(seconds, 1),
                    "valid_ndcg@10_per_round": [
                        round(r.valid["ndcg@10"], 4) for r in trained.report.rounds
                    ],
                    "best_round": trained.report.best_round,
                    "test_ndcg@10": round(test["ndcg@10"], 4),
                }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    report = {
        "dataset": args.dataset,
        "seed": args.seed,
        "user_shards": args.user_shards,
        "engines": rows,
        "ray_over_local_seconds": round(rows["ray"]["seconds"] / rows["local"]["seconds"], 2),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{'engine':<7} {'seconds':>8} {'best':>4} {'test NDCG@10':>12}  valid NDCG@10 per round")
    for engine, row in rows.items():
        rounds = " ".join(f"{v:.4f}" for v in row["valid_ndcg@10_per_round"])
        print(
            f"{engine:<7} {row['seconds']:>8.1f} {row['best_round']:>4} "
            f"{row['test_ndcg@10']:>12.4f}  {rounds}"
        )
    print(f"ray / local wall time: {report['ray_over_local_seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
