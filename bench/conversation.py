"""Conversation benchmark: simulated users on MovieLens-100K test targets, turn latency, titles.

Usage:
    .venv/bin/python bench/conversation.py [--episodes 200] [--seed 2020] [--llm none|local]
        [--llm-episodes 20] [--llm-only] [--dump-accepted PATH] [--stop-after-accepted N] [--json]

Each episode picks a (user, hidden test item) pair from the RS split's test part. The simulated
user never names the target; it reveals one attribute per turn (a genre, the decade, a person, a
movie it liked that is similar to the target, a second genre) and reacts to what was shown ("none
of those"). Success = the target among the 10 items shown within 5 turns. The same episodes run
with the learned agents and with round-0 (text-only) agents. Every reply is checked for titles
outside the catalog or outside what was recommended/cited (hallucinated titles).

With the embedded LLM, the model phrases each turn's top pick and code checks the phrasing
(titles, and every claim against the film's fact sheet, :mod:`recagents.graph.claims`): the
table reports the share of those replies the checks accepted, and the rejection reasons are
counted. ``--dump-accepted PATH`` writes each accepted reply with the fact sheet and evidence it
was checked against (JSON lines), for reading by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

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
        if ranker is not None and hasattr(ranker, "history_weights"):
            sims = ranker.history_weights(history, target)
        else:
            text = engine.context.item_text
            sims = text[history] @ text[target]
        similar = int(history[int(np.argmax(sims))])
        turns.append(f"I really liked {dataset.item_title(similar)}, something like that.")
    if len(genres) > 1:
        turns.append(f"It could also be {genres[1].lower()}.")
    return turns[:MAX_TURNS]


class RejectionLog(logging.Handler):
    """Collects why model phrasings were rejected (``recagents.graph.explain`` logs each)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("rejected phrasing") and len(record.args or ()) >= 2:
            reason = str(record.args[1])  # type: ignore[index]
            # "says 'horror' of a film filed under Drama" -> "says" (the kind of claim)
            kind = re.sub(r"'[^']*'", "...", reason)  # the quoted words vary, the check does not
            self.reasons[re.split(r";|:|\(| filed under| are |\d", kind)[0].strip()] += 1


def run_episodes(  # type: ignore[type-arg]
    rec: Recommender,
    episodes: list[tuple[int, int]],
    label: str,
    dump: TextIO | None = None,
    stop_after_accepted: int = 0,
) -> dict:
    dataset = rec.dataset
    successes, turns_needed, latencies, hallucinated = 0, [], [], 0
    phrased = explained = 0
    run = 0
    for n, (user, target) in enumerate(episodes):
        if stop_after_accepted and phrased >= stop_after_accepted:
            break
        run += 1
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
                top = reply.items[0]
                if top.reason_source == "llm":
                    phrased += 1
                    if dump is not None:
                        dump.write(json.dumps(accepted_record(rec, top, message, n, t)) + "\n")
                        dump.flush()
            if target_id in {item.id for item in reply.items}:
                successes += 1
                turns_needed.append(t)
                break
    lat = np.array(latencies) * 1000
    return {
        "episodes": run,
        "success@5": successes / max(1, run),
        "mean_turns": statistics.mean(turns_needed) if turns_needed else float("nan"),
        "turns": len(latencies),
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "hallucinated_titles": hallucinated,
        "llm_phrased_share": phrased / explained if explained else None,
        "llm_replies": explained,
        "llm_accepted": phrased,
    }


def accepted_record(
    rec: Recommender, item, message: str, episode: int, turn: int
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An accepted reply with everything it was checked against, for reading by hand."""
    dataset = rec.dataset
    sheet = dataset.fact_sheet(dataset.item_map.index(item.id))
    return {
        "episode": episode,
        "turn": turn,
        "message": message,
        "item_id": item.id,
        "title": item.title,
        "reason": item.reason,
        "facts": sheet.lines(),
        "liked": [c.title for c in item.evidence.because_of],
        "shared": list(item.evidence.shared_attributes),
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
    parser.add_argument(
        "--llm-only", action="store_true", help="skip the template rows (no LLM) and text-only"
    )
    parser.add_argument(
        "--dump-accepted", type=Path, help="write accepted LLM replies and their facts (JSONL)"
    )
    parser.add_argument(
        "--stop-after-accepted",
        type=int,
        default=0,
        help="end the LLM episodes once this many replies were accepted (0: run them all)",
    )
    parser.add_argument(
        "--llm-skip",
        type=int,
        default=0,
        help="skip this many LLM episodes first (a fresh sample after an earlier run)",
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
    results = {}
    if not args.llm_only:
        text_only = train_agents(
            split, settings, run_name="conv-text", progress=False, rounds_only_seed=True
        )
        for label, engine in (("learned vectors", learned), ("text-only vectors", text_only)):
            rec = Recommender(engine, settings, checkpointer=None)
            results[label] = run_episodes(rec, episodes, label.split()[0])
            print(f"  {label}: {results[label]}", file=sys.stderr, flush=True)
    rejections = RejectionLog()
    if args.llm_episodes:
        chat_model = load_chat_model("local", settings)
        rec = Recommender(learned, settings, chat_model=chat_model)
        explain_log = logging.getLogger("recagents.graph.explain")
        explain_log.setLevel(logging.INFO)
        explain_log.addHandler(rejections)
        llm_episodes = llm_episode_list(split, rng, episodes, args.llm_skip + args.llm_episodes)[
            args.llm_skip :
        ]
        dump = args.dump_accepted.open("w", encoding="utf-8") if args.dump_accepted else None
        try:
            results["learned + embedded LLM"] = run_episodes(
                rec, llm_episodes, "llm", dump, args.stop_after_accepted
            )
        finally:
            if dump is not None:
                dump.close()
    if args.json:
        print(json.dumps({**results, "rejections": dict(rejections.reasons)}))
        return 0
    print(
        f"simulated users, MovieLens-100K RS split seed {args.seed}, {args.episodes} episodes, "
        f"success = target in the 10 shown within {MAX_TURNS} turns"
    )
    print(
        "| agents | episodes | success@5 | mean turns (successes) | turn p50 ms | turn p95 ms "
        "| hallucinated titles | LLM replies accepted by the checks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, row in results.items():
        share = row["llm_phrased_share"]
        accepted = (
            "—" if share is None else f"{row['llm_accepted']}/{row['llm_replies']} ({share:.0%})"
        )
        print(
            f"| {label} | {row['episodes']} | {row['success@5']:.3f} | {row['mean_turns']:.2f} "
            f"| {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['hallucinated_titles']} "
            f"| {accepted} |"
        )
    if rejections.reasons:
        print("\nLLM replies rejected, by reason (the template sentence was shown instead):")
        for reason, count in rejections.reasons.most_common():
            print(f"- {count} × {reason}")
    return 0


def llm_episode_list(
    split, rng, episodes: list[tuple[int, int]], count: int
) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """The first ``count`` episodes, drawn further from the test part when more are asked for."""
    if count <= len(episodes):
        return episodes[:count]
    test = split.test.iloc[rng.permutation(len(split.test))[:count]]
    more = [(int(u), int(i)) for u, i in zip(test["user"], test["item"], strict=True)]
    return list(dict.fromkeys([*episodes, *more]))[:count]


if __name__ == "__main__":
    sys.exit(main())
