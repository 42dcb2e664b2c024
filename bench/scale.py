"""Scale figures (issue 13): per-round cost of the Ray engine on planted catalogs of growing size.

Usage:
    V/bin/python bench/scale.py [--sizes 10000x10000,100000x10000] [--shards 1,2,4]
        [--item-shards 1] [--rounds 2] [--epochs 2] [--valid-users 2000] [--holdout-users 20000]
        [--item-item auto|dense|sparse] [--compare-history USERSxITEMS] [--quick] [--json]

For each size ``USERSxITEMS`` a seeded synthetic catalog (:mod:`recagents.data.synthetic`:
planted latent factors, Zipf popularity, a known oracle ranking) is drawn, and for each number of
user shards the default roles train ``--rounds`` rounds on the Ray engine (a private local
cluster, every agent and user replica an actor) publishing to a ChromaDB server (``chroma run``
on a free loopback port, stopped by PID at the end). Per run it reports:

* seconds per round (train + merge + publish + the coordinator's valid scoring), round 0 apart
  (with several rounds, the mean of rounds 2 and later: round 1 pays first-call warm-up);
* peak RSS of every actor's process, read inside the actor (``getrusage``), and the driver's;
* bytes moved through the store per round: the float32 payload of the vectors and extras every
  ``StoreChannel`` (each actor's and the driver's) wrote and read back, counted in
  :class:`~recagents.agents.rounds.StoreChannel` (not the HTTP/JSON wire size);
* valid NDCG@10 of the best round beside the oracle's and popularity's on the same valid users.

``--compare-history`` trains the same catalog twice on the local engine, the ranking agent's
history model dense (EASE) and sparse (top-k neighbours), to price the sparse form.
``--quick`` is a tiny size that finishes in well under a minute (the test runs it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from recagents.env import ensure_offline

ensure_offline()

from recagents.agents.base import TrainContext  # noqa: E402
from recagents.agents.rounds import Coordinator  # noqa: E402
from recagents.agents.synthetic import synthetic_context  # noqa: E402
from recagents.data.synthetic import Synthetic, generate  # noqa: E402
from recagents.eval.metrics import evaluate_ranking  # noqa: E402

QUICK = {"sizes": "800x300", "shards": "2", "rounds": 1, "epochs": 1, "valid_users": 200}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_chroma(folder: Path) -> tuple[subprocess.Popen, str]:
    """A ChromaDB server on a free loopback port (the caller stops it by PID)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(folder), "--host",
         "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("chroma run did not start")


def _size(text: str) -> tuple[int, int]:
    users, items = text.lower().split("x")
    return int(float(users)), int(float(items))


def _configs(args: argparse.Namespace, item_item: str | None = None) -> dict[str, dict]:
    tower = {"epochs": args.epochs}
    ranking: dict[str, Any] = {"item_item": item_item or args.item_item}
    if args.holdout_users:
        ranking["holdout_users"] = args.holdout_users
    return {"user_profile": tower, "item": tower, "ranking": ranking}


def reference(data: Synthetic, context: TrainContext) -> dict[str, float]:
    """Oracle and popularity valid NDCG@10 on the context's valid users (the known answer)."""
    assert context.valid is not None
    return {
        name: round(evaluate_ranking(score, context.valid, context.train)["ndcg@10"], 4)
        for name, score in (("oracle", data.oracle), ("popularity", data.popularity))
    }


def run_ray(
    context: TrainContext, url: str, shards: int, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    """One Ray-engine run; per-round seconds, store traffic and every actor's peak RSS."""
    from recagents.agents import distributed
    from recagents.vectorstore.chroma import ChromaStore

    ray = distributed._ray()
    rounds: list[dict[str, Any]] = []

    class Measured(distributed.RayCoordinator):
        def _traffic(self) -> int:
            usage = ray.get([h.actor.usage.remote() for h in self.remote.values()])
            driver = self.channel.traffic["written"] + self.channel.traffic["read"]
            return driver + sum(u["store_written"] + u["store_read"] for u in usage)

        def train_round(self, number: int) -> Any:
            before = self._traffic()
            record = super().train_round(number)
            rounds.append(
                {
                    "round": number,
                    "seconds": round(record.seconds, 2),
                    "store_bytes": self._traffic() - before,
                    "valid_ndcg@10": record.valid["ndcg@10"],
                }
            )
            return record

    namespace = f"scale{context.n_users}x{context.n_items}s{shards}i{args.item_shards}"
    began = time.perf_counter()
    coordinator = Measured(
        context,
        ChromaStore(url=url),
        store_url=url,
        namespace=namespace,
        configs=_configs(args),
        run_dir=folder / namespace,
        max_rounds=args.rounds,
        patience=args.rounds,
        user_shards=shards,
        item_shards=args.item_shards,
        progress=False,
    )
    started = time.perf_counter() - began
    try:
        report = coordinator.run()
        usage = {
            h.instance: ray.get(h.actor.usage.remote())["max_rss"]
            for h in coordinator.remote.values()
        }
    finally:
        coordinator.shutdown()
    return {
        "shards": shards,
        "item_shards": args.item_shards,
        "actors_started_s": round(started, 1),
        "seed_round_s": round(report.rounds[0].seconds, 2),
        "rounds": rounds,
        # Round 1 pays each actor's first-call costs (imports, allocator warm-up): with more
        # than one round, the per-round figure is the mean of the later ones.
        "seconds_per_round": round(float(np.mean([r["seconds"] for r in rounds[1:] or rounds])), 2),
        "store_bytes_per_round": int(sum(r["store_bytes"] for r in rounds) / len(rounds)),
        "peak_rss_mb": {k: round(v / 2**20) for k, v in usage.items()},
        "best_valid_ndcg@10": max(r.valid["ndcg@10"] for r in report.rounds),
        "total_s": round(time.perf_counter() - began, 1),
    }


def compare_history(size: str, args: argparse.Namespace) -> dict[str, Any]:
    """Dense EASE against sparse neighbours on one catalog (local engine, same seeds)."""
    from recagents.vectorstore.memory import InMemoryStore

    users, items = _size(size)
    data = generate(users, items, seed=args.seed)
    context = synthetic_context(data, seed=args.seed, valid_users=args.valid_users)
    out: dict[str, Any] = {"size": size, **reference(data, context)}
    for mode in ("dense", "sparse"):
        began = time.perf_counter()
        coordinator = Coordinator(
            context,
            InMemoryStore(),
            namespace=f"history-{mode}",
            configs=_configs(args, mode),
            max_rounds=args.rounds,
            patience=args.rounds,
            progress=False,
        )
        fitted = time.perf_counter()
        coordinator.agents[-1].setup(context)  # time the history model's fit alone
        fit_s = time.perf_counter() - fitted
        report = coordinator.run()
        out[mode] = {
            "valid_ndcg@10": max(r.valid["ndcg@10"] for r in report.rounds),
            "history_fit_s": round(fit_s, 1),
            "total_s": round(time.perf_counter() - began, 1),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point; returns the report (also printed)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000x10000,100000x10000")
    parser.add_argument("--shards", default="1,2,4", help="user shards, one run each")
    parser.add_argument("--item-shards", type=int, default=1, help="item shards in every run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="tower epochs per round")
    parser.add_argument("--valid-users", type=int, default=2000)
    parser.add_argument("--holdout-users", type=int, default=20000)
    parser.add_argument("--item-item", default="auto", choices=("auto", "dense", "sparse"))
    parser.add_argument("--compare-history", default="")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    logging.basicConfig(level=logging.WARNING)
    result: dict[str, Any] = {"seed": args.seed, "args": vars(args), "sizes": []}
    if args.compare_history:
        result["history"] = compare_history(args.compare_history, args)
        _emit(result["history"], args)
    if args.sizes:
        from recagents.agents import distributed

        with tempfile.TemporaryDirectory(prefix="recagents-scale-") as tmp:
            folder = Path(tmp)
            proc, url = start_chroma(folder / "chroma")
            connected = distributed.connect()
            try:
                for size in args.sizes.split(","):
                    users, items = _size(size)
                    began = time.perf_counter()
                    data = generate(users, items, seed=args.seed)
                    context = synthetic_context(data, seed=args.seed, valid_users=args.valid_users)
                    entry: dict[str, Any] = {
                        "users": users,
                        "items": items,
                        "interactions": int(data.fit.nnz + data.holdout.nnz),
                        "generate_s": round(time.perf_counter() - began, 1),
                        **reference(data, context),
                        "runs": [],
                    }
                    for shards in (int(s) for s in args.shards.split(",")):
                        entry["runs"].append(run_ray(context, url, shards, args, folder))
                        _emit({"size": size, **entry["runs"][-1]}, args)
                    result["sizes"].append(entry)
            finally:
                if connected:
                    distributed._ray().shutdown()
                proc.terminate()
                proc.wait(timeout=30)
    result["driver_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))  # noqa: T201
    return result


def _emit(row: dict[str, Any], args: argparse.Namespace) -> None:
    """One finished run on stderr, so a long benchmark shows progress."""
    print(json.dumps(row), file=sys.stderr, flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
