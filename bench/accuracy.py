"""Accuracy benchmark: models on RecBole's RS split of a dataset, full ranking, @10.

Usage:
    .venv/bin/python bench/accuracy.py [--dataset movielens-100k] [--seeds 2020,1,2]
        [--models pop,itemknn,ease,text] [--encode-timing] [--json]

Prints one row per model with the median over seeds of each metric and of the training time,
plus (with --encode-timing) the catalog encoding time with a cold cache and a warm one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from recagents.env import ensure_offline

ensure_offline()

import torch  # noqa: E402

from recagents.agents.trainer import MODELS  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.splits import rs_split  # noqa: E402
from recagents.data.texts import item_texts  # noqa: E402
from recagents.encoder import TextEncoder  # noqa: E402
from recagents.eval.experiment import fit_and_evaluate  # noqa: E402

METRICS = ("ndcg@10", "recall@10", "hit@10", "mrr@10", "precision@10")


def encode_timing(dataset_name: str) -> dict[str, float]:
    """Seconds to encode the catalog with an empty cache (model load included), then warm."""
    dataset = load_dataset(dataset_name)
    texts = item_texts(dataset)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        TextEncoder(cache_dir=Path(cache)).encode(texts)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        TextEncoder(cache_dir=Path(cache)).encode(item_texts(dataset))
        warm = time.perf_counter() - start
    return {"items": len(texts), "cold_s": round(cold, 2), "warm_s": round(warm, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--seeds", default="2020,1,2")
    parser.add_argument("--models", default="pop,itemknn,ease,text")
    parser.add_argument("--home", type=Path, help="settings home (default: a temporary folder)")
    parser.add_argument("--encode-timing", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    out: dict[str, object] = {"dataset": args.dataset, "seeds": args.seeds}
    if args.encode_timing:
        out["encoding"] = encode_timing(args.dataset)

    home = args.home or Path(tempfile.mkdtemp(prefix="recagents-bench-"))
    settings = Settings.load(home=home)
    dataset = load_dataset(args.dataset)
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; known: {sorted(MODELS)}")
    rows = {}
    for model in models:
        runs = []
        for seed in seeds:
            split = rs_split(dataset, seed)
            result = fit_and_evaluate(split, model, settings.replace(seed=seed), models=MODELS)
            runs.append(result)
            print(
                f"  {model} seed {seed}: ndcg@10 {result['metrics']['ndcg@10']:.4f} "
                f"({result['train_seconds']:.1f} s)",
                file=sys.stderr,
            )
        rows[model] = {
            **{m: statistics.median(r["metrics"][m] for r in runs) for m in METRICS},
            "ndcg@10_min": min(r["metrics"]["ndcg@10"] for r in runs),
            "ndcg@10_max": max(r["metrics"]["ndcg@10"] for r in runs),
            "train_s": statistics.median(r["train_seconds"] for r in runs),
        }
    out["models"] = rows
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.dataset}, RecBole RS split 8:1:1, full ranking, median over seeds {args.seeds}")
    header = f"| model | {' | '.join(METRICS)} | NDCG range | train s |"
    print(header)
    print("|" + "---|" * (len(METRICS) + 3))
    for model, row in rows.items():
        cells = " | ".join(f"{row[m]:.4f}" for m in METRICS)
        print(
            f"| {model} | {cells} | {row['ndcg@10_min']:.3f}-{row['ndcg@10_max']:.3f} "
            f"| {row['train_s']:.1f} |"
        )
    if "encoding" in out:
        enc = out["encoding"]
        print(
            f"\nencoding {enc['items']} item texts: cold cache {enc['cold_s']} s "  # type: ignore[index]
            f"(model load included), warm cache {enc['warm_s']} s"
        )  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
