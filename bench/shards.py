"""What sharding costs in accuracy: the agents trained with M item (or N user) replicas (issue 13).

Usage:
    .venv/bin/python bench/shards.py [--item-shards 1,2,4] [--user-shards 1] [--seed 2020]
        [--dataset movielens-100k] [--home DIR]

One process, the local engine: the RS split of ``--seed``, the text embeddings encoded once (cached
under the home), then ``train_agents`` once per item-shard count, each run in its own namespace.
Prints one JSON line per run: valid NDCG@10 per round, the chosen round, test NDCG@10 (ranked
with train and valid as history) and the wall time of the ``train_agents`` call.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from recagents.env import ensure_offline

ensure_offline()

from recagents.agents.trainer import build_context, train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.splits import rs_split  # noqa: E402
from recagents.eval.metrics import evaluate_ranking  # noqa: E402


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--item-shards", default="1,2,4")
    parser.add_argument("--user-shards", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--home", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recagents-shards-") as tmp:
        settings = Settings.load(home=Path(args.home or tmp), seed=args.seed, dataset=args.dataset)
        dataset = load_dataset(args.dataset)
        split = rs_split(dataset, args.seed)
        build_context(dataset, split.train, settings)  # encode once: every run reads the cache
        history = (split.matrix("train") + split.matrix("valid")).tocsr()
        for shards in (int(m) for m in args.item_shards.split(",")):
            began = time.perf_counter()
            trained = train_agents(
                split, settings, run_name=f"items{shards}", progress=False,
                item_shards=shards, user_shards=args.user_shards,
            )  # fmt: skip
            seconds = time.perf_counter() - began
            test = evaluate_ranking(trained.score, split.matrix("test"), history)
            row = {
                "item_shards": shards,
                "user_shards": args.user_shards,
                "seconds": round(seconds, 1),
                "valid_ndcg@10_per_round": [
                    round(r.valid["ndcg@10"], 4) for r in trained.report.rounds
                ],
                "best_round": trained.report.best_round,
                "test_ndcg@10": round(test["ndcg@10"], 6),
            }
            print(json.dumps(row), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
