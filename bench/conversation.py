"""Conversation benchmark: simulated users on MovieLens-100K test targets, turn latency, titles.

Usage:
    .venv/bin/python bench/conversation.py [--episodes 200] [--seed 2020] [--llm none|local]
        [--json]

Each episode picks a (user, hidden test item) pair from the RS split's test part. The simulated
user never names the target; it reveals one attribute per turn (a genre, the decade, a person, a
movie it liked that is similar to the target, a second genre) and reacts to what was shown ("none
of those"). Success = the target among the 10 items shown within 5 turns. The same episodes run
with the learned agents and with round-0 (text-only) agents. Every reply is checked for titles
outside the catalog or outside what was recommended/cited (hallucinated titles).
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recagents.agents.trainer import train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.splits import rs_split  # noqa: E402
from recagents.graph.llm import load_chat_model  # noqa: E402
from recagents.ui.facade import Recommender  # noqa: E402

MAX_TURNS = 5


def attribute_turns(dataset, engine, user: int, target: int) -> list[str]:  # type: ignore[no-untyped-def]
    """What the simulated user reveals, one attribute per turn, never the title."""
    row = dataset.items.iloc[target]
    genres = [g for g in str(row["genres"]).split("|") if g and g != "unknown"]
    turns = []
    if genres:
        turns.append(f"I'm in the mood for a {genres[0].lower()} movie.")
    if row["year"] is not None and not np.isnan(float(row["year"])):
        turns.append(f"Something from the {int(row['year']) // 10 * 10 % 100:02d}s.")
    people = [p.strip() for p in str(row["director"]).split(",") if p.strip()]
    if people:
        turns.append(f"Maybe something directed by {people[0]}.")
    history = engine.context.train[user].indices
    if len(history):
        ranker = engine.coordinator.ranker
        if ranker is not None and hasattr(ranker, "item_item"):
            sims = ranker.item_item[history, target]
        else:
            text = engine.context.item_text
            sims = text[history] @ text[target]
        similar = int(history[int(np.argmax(sims))])
        turns.append(f"I really liked {dataset.item_title(similar)}, something like that.")
    if len(genres) > 1:
        turns.append(f"It could also be {genres[1].lower()}.")
    return turns[:MAX_TURNS]


def run_episodes(rec: Recommender, episodes: list[tuple[int, int]], label: str) -> dict:  # type: ignore[type-arg]
    dataset = rec.dataset
    successes, turns_needed, latencies, hallucinated = 0, [], [], 0
    phrased = explained = 0
    for n, (user, target) in enumerate(episodes):
        thread = f"{label}-{n}"
        user_id = dataset.user_map.external(user)
        target_id = dataset.item_map.external(target)
        turns = attribute_turns(dataset, rec.engine.trained, user, target)
        for t, attribute in enumerate(turns, 1):
            message = attribute if t == 1 else f"None of those. {attribute}"
            start = time.perf_counter()
            reply = rec.chat(message, thread_id=thread, user_id=user_id, k=10)
            latencies.append(time.perf_counter() - start)
            hallucinated += count_hallucinated(rec, reply)
            if reply.items and rec.deps.chat_model is not None:  # the model phrases the top pick
                explained += 1
                phrased += reply.items[0].reason_source == "llm"
            if target_id in {item.id for item in reply.items}:
                successes += 1
                turns_needed.append(t)
                break
    lat = np.array(latencies) * 1000
    return {
        "episodes": len(episodes),
        "success@5": successes / max(1, len(episodes)),
        "mean_turns": statistics.mean(turns_needed) if turns_needed else float("nan"),
        "turns": len(latencies),
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "hallucinated_titles": hallucinated,
        "llm_phrased_share": phrased / explained if explained else None,
    }


def count_hallucinated(rec: Recommender, reply) -> int:  # type: ignore[no-untyped-def]
    """Catalog titles named in the reply that were neither recommended nor cited as evidence."""
    from recagents.graph.explain import verify_titles

    allowed = [item.title for item in reply.items]
    for item in reply.items:
        allowed += [c.title for c in item.evidence.because_of]
    from recagents.graph.nodes import catalog_titles as titles_in

    def catalog_titles(text: str) -> list[str]:  # the check the graph uses
        return titles_in(rec.deps, text)

    offending = 0
    for item in reply.items:
        offending += len(verify_titles(item.reason, allowed, catalog_titles))
    return offending


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--llm", default="none", help="none (templates) or local (SmolLM2)")
    parser.add_argument(
        "--llm-episodes",
        type=int,
        default=20,
        help="episodes re-run with the embedded LLM for latency (0: skip)",
    )
    parser.add_argument("--home", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    home = args.home or Path(tempfile.mkdtemp(prefix="recagents-bench-conv-"))
    settings = Settings.load(home=home, seed=args.seed)
    dataset = load_dataset("movielens-100k")
    split = rs_split(dataset, args.seed)
    rng = np.random.default_rng(args.seed)
    test = split.test.iloc[rng.permutation(len(split.test))[: args.episodes]]
    episodes = [(int(u), int(i)) for u, i in zip(test["user"], test["item"], strict=True)]

    learned = train_agents(split, settings, run_name="conv", progress=False)
    text_only = train_agents(
        split, settings, run_name="conv-text", progress=False, rounds_only_seed=True
    )
    results = {}
    for label, engine in (("learned vectors", learned), ("text-only vectors", text_only)):
        rec = Recommender(engine, settings, checkpointer=None)
        results[label] = run_episodes(rec, episodes, label.split()[0])
        print(f"  {label}: {results[label]}", file=sys.stderr, flush=True)
    if args.llm_episodes:
        chat_model = load_chat_model("local", settings)
        rec = Recommender(learned, settings, chat_model=chat_model)
        results["learned + embedded LLM"] = run_episodes(rec, episodes[: args.llm_episodes], "llm")
    if args.json:
        print(json.dumps(results))
        return 0
    print(
        f"simulated users, MovieLens-100K RS split seed {args.seed}, {args.episodes} episodes, "
        f"success = target in the 10 shown within {MAX_TURNS} turns"
    )
    print(
        "| agents | episodes | success@5 | mean turns (successes) | turn p50 ms | turn p95 ms "
        "| hallucinated titles | top pick phrased by the LLM |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, row in results.items():
        share = row["llm_phrased_share"]
        print(
            f"| {label} | {row['episodes']} | {row['success@5']:.3f} | {row['mean_turns']:.2f} "
            f"| {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['hallucinated_titles']} "
            f"| {'—' if share is None else f'{share:.0%}'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
