"""Agents benchmark: ablation, sharding, cold items, training time and peak memory.

Usage:
    .venv/bin/python bench/agents.py [--seeds 2020,1,2] [--skip-cold] [--json]

Every row trains on the RecBole RS split's train part of MovieLens-100K, picks its round on valid
and reports test metrics (full ranking @10), with an in-memory-free real ChromaDB store under a
temporary home. Rows:

- ``round 0 (text only)``: the seed vectors, no learning;
- ``user_profile alone`` / ``item alone`` / ``ranking alone``: one role, its peers' vectors stay
  at the text seed;
- ``full collaboration``: every role, collaborating through the store;
- ``sharded (4 user replicas)``: same, the user side split in four data-parallel replicas.

Cold items: 10% of items (random, seeded) lose every train interaction; after training, users'
test interactions with those items are ranked among the cold items only, scored from text alone
(the item agent's learned text map vs the raw text embeddings).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from recagents.env import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import recagents.agents.trainer  # noqa: E402,F401  (registers the agents models)
from recagents.agents.base import ITEM, USER  # noqa: E402
from recagents.agents.trainer import MODELS, train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.splits import Split, rs_split  # noqa: E402
from recagents.eval.experiment import fit_and_evaluate  # noqa: E402

ROWS = [
    ("round 0 (text only)", "agents-text"),
    ("user_profile alone", "agents-user_profile"),
    ("item alone", "agents-item"),
    ("ranking alone", "agents-ranking"),
    ("full collaboration", "agents"),
    ("sharded (4 user replicas)", "agents-shards4"),
    ("EASE (reference)", "ease"),
]


def cold_items(dataset, seed: int, settings: Settings) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Recall@10 of withheld items ranked among themselves from text alone."""
    split = rs_split(dataset, seed)
    rng = np.random.default_rng(seed + 99)
    cold = np.sort(rng.choice(dataset.n_items, size=dataset.n_items // 10, replace=False))
    is_cold = np.zeros(dataset.n_items, dtype=bool)
    is_cold[cold] = True
    warm_train = split.train[~is_cold[split.train["item"].to_numpy()]]
    warm_valid = split.valid[~is_cold[split.valid["item"].to_numpy()]]
    cold_split = Split(
        dataset,
        warm_train.reset_index(drop=True),
        warm_valid.reset_index(drop=True),
        split.test,
        protocol="rs-cold",
        seed=seed,
    )
    trained = train_agents(cold_split, settings, run_name="cold", progress=False)
    coordinator, context = trained.coordinator, trained.context
    peers = coordinator.serving_peers(context.train)
    item_agent = coordinator.publishers(ITEM)[0]
    test = split.test[is_cold[split.test["item"].to_numpy()]]
    position = {int(item): k for k, item in enumerate(cold)}
    texts = context.item_text[cold]
    learned = item_agent.fold_in_items(texts)
    assert learned is not None
    user_text = np.asarray(context.train @ context.item_text)
    scorers = {
        "agents (learned text map)": peers[USER] @ learned.T,
        "text-only baseline": user_text @ texts.T,
    }
    out: dict[str, float] = {"random": 10 / len(cold), "cold_items": float(len(cold))}
    for name, scores in scorers.items():
        recalls = []
        for user, group in test.groupby("user"):
            relevant = {position[int(i)] for i in group["item"]}
            top = np.argsort(-scores[int(user)])[:10]
            recalls.append(len(relevant & set(top.tolist())) / len(relevant))
        out[name] = float(np.mean(recalls))
        out["users"] = float(len(recalls))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="2020,1,2")
    parser.add_argument("--rows", help="comma-separated model names to run (default: all)")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    dataset = load_dataset("movielens-100k")
    home = Path(tempfile.mkdtemp(prefix="recagents-bench-agents-"))
    wanted = set(args.rows.split(",")) if args.rows else None
    results: dict[str, dict[str, float]] = {}
    for label, model in ROWS:
        if wanted and model not in wanted:
            continue
        runs = []
        for seed in seeds:
            settings = Settings.load(home=home, seed=seed)
            result = fit_and_evaluate(rs_split(dataset, seed), model, settings, models=MODELS)
            runs.append(result)
            print(
                f"  {label} seed {seed}: test ndcg@10 {result['metrics']['ndcg@10']:.4f} "
                f"best round {result['model_info'].get('best_round', '-')} "
                f"({result['train_seconds']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        results[label] = {
            "ndcg@10": statistics.median(r["metrics"]["ndcg@10"] for r in runs),
            "recall@10": statistics.median(r["metrics"]["recall@10"] for r in runs),
            "valid_ndcg@10": statistics.median(r["valid_metrics"]["ndcg@10"] for r in runs),
            "train_s": statistics.median(r["train_seconds"] for r in runs),
            "best_round": statistics.median(r["model_info"].get("best_round", 0) for r in runs),
        }
    out: dict[str, object] = {"seeds": seeds, "rows": results}
    if not args.skip_cold:
        settings = Settings.load(home=home, seed=seeds[0])
        out["cold"] = cold_items(dataset, seeds[0], settings)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"MovieLens-100K, RecBole RS split, full ranking @10, median over seeds {args.seeds}")
    print(
        "| configuration | test NDCG@10 | test Recall@10 | valid NDCG@10 | chosen round | train s |"
    )
    print("|---|---|---|---|---|---|")
    for label, row in results.items():
        print(
            f"| {label} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | "
            f"{row['valid_ndcg@10']:.4f} | {row['best_round']:g} | {row['train_s']:.1f} |"
        )
    if "cold" in out:
        cold = out["cold"]
        print(
            f"\ncold items (seed {seeds[0]}, {int(cold['cold_items'])} items withheld, "  # type: ignore[index]
            f"{int(cold['users'])} users), Recall@10 among cold items:"
        )  # type: ignore[index]
        for key in ("agents (learned text map)", "text-only baseline", "random"):
            print(f"  {key}: {cold[key]:.4f}")  # type: ignore[index]
    print(f"\npeak RSS of the benchmark process: {out['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
