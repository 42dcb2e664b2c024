"""Feedback-loop benchmark: do live conversations, folded into one feedback round, help the next
people with similar tastes?

Usage:
    .venv/bin/python bench/feedback_loop.py [--home H] [--groups 12] [--teachers 6]
        [--learners 5] [--rounds 1] [--seeds 2020,1,2] [--json]

Simulated people with hidden tastes, on MovieLens-100K (new users: they start cold, as anyone
opening the chat does). A *taste group* is one film everyone in it names first (the anchor, drawn
among the 300 most rated) and three films they all love but never name up front (the hidden
films, drawn among films with 20 to 150 ratings). The coupling is drawn at random, so the ratings
do not already hold it: it is what only conversations can teach.

1. *Teachers* (``--teachers`` per group) chat with the served model through the real facade,
   which appends every turn and 👍 to the interaction log: "I loved <anchor>", then a 👍 on any
   hidden film shown (a suggestion taken), else "I also loved <a hidden film>" (one per turn,
   at most three turns).
2. The feedback round: the log is snapshotted as a dialogue corpus and the agents are trained on
   the union of the catalog and those threads, starting from the served model's weights
   (``train_agents(..., dialogues=[snapshot], warm_start=served)``: what ``recagents train
   --resume --with-feedback`` and the Learning tab's option run), with the same round budget as
   the control; a second row trains the same union from the text seeds (``train
   --with-feedback``).
3. *Learners* (``--learners`` per group, new threads, never seen in training) say "I loved
   <anchor>", then one hint a turn about a hidden film (its genre, its decade, "none of
   those"), for at most 5 turns. Success@5: a hidden film of their group among the 5 films of a
   reply; turns-to-success: the turn it first happens (mean over successes). The same learners,
   with the same messages, run against the model without the feedback round (control) and with
   it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from recagents.env import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from recagents.agents.trainer import train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.feedback import FeedbackLog, snapshot_feedback  # noqa: E402
from recagents.data.splits import rs_split  # noqa: E402
from recagents.ui.facade import Recommender  # noqa: E402

MAX_TURNS = 5
K = 5


def draw_groups(dataset: Any, groups: int, seed: int) -> list[tuple[int, list[int]]]:
    """(anchor, hidden films) per group: anchors among the 300 most rated, hidden 20-150 ratings."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(dataset.interactions["item"].to_numpy(), minlength=dataset.n_items)
    popular = np.argsort(-counts, kind="stable")[:300]
    middle = np.flatnonzero((counts >= 20) & (counts <= 150))
    anchors = rng.choice(popular, size=groups, replace=False)
    hidden = rng.choice(middle, size=(groups, 3), replace=False)
    return [(int(a), [int(h) for h in row]) for a, row in zip(anchors, hidden, strict=True)]


def title(dataset: Any, item: int) -> str:
    """The catalog's display title (``Heat (1995)``), as a person would type it."""
    return str(dataset.item_title(item))


def hints(dataset: Any, item: int) -> list[str]:
    """What a learner says about a hidden film, one hint a turn, never its title."""
    row = dataset.items.iloc[item]
    genres = [g for g in str(row["genres"]).split("|") if g and g != "unknown"]
    said = []
    if genres:
        said.append(f"None of those. I'm in the mood for a {genres[0].lower()} movie.")
    year = row.get("year")
    if year is not None and not (isinstance(year, float) and np.isnan(year)):
        said.append(f"None of those. Something from the {int(year) // 10 * 10 % 100:02d}s.")
    if len(genres) > 1:
        said.append(f"None of those. Maybe some {genres[1].lower()} too.")
    while len(said) < MAX_TURNS - 1:
        said.append("None of those. Something else?")
    return said[: MAX_TURNS - 1]


def teach(rec: Recommender, groups: list[tuple[int, list[int]]], teachers: int) -> dict[str, int]:
    """Phase 1: teachers chat (every turn and 👍 is logged by the facade)."""
    dataset = rec.dataset
    turns = likes = named = 0
    for g, (anchor, hidden) in enumerate(groups):
        for u in range(teachers):
            thread = f"teach-{g}-{u}"
            reply = rec.chat(f"I loved {title(dataset, anchor)}", thread_id=thread, k=K)
            turns += 1
            order = hidden[u % 3 :] + hidden[: u % 3]  # teachers reveal them in other orders
            for step in range(3):
                shown = [dataset.item_map.index(i.id) for i in reply.items]
                taken = [h for h in hidden if h in shown]
                if taken:
                    for h in taken:
                        rec.feedback(thread, dataset.item_map.external(h), liked=True)
                        likes += 1
                    message = "More like that, please."
                else:
                    message = f"I also loved {title(dataset, order[step])}"
                    named += 1
                reply = rec.chat(message, thread_id=thread, k=K)
                turns += 1
    return {"teacher_turns": turns, "teacher_likes": likes, "teacher_named": named}


def learn(rec: Recommender, groups: list[tuple[int, list[int]]], learners: int, label: str) -> dict:
    """Phase 2: new people of each group look for a hidden film; success@5 and turns."""
    dataset = rec.dataset
    successes, needed, latencies, episodes = 0, [], [], 0
    for g, (anchor, hidden) in enumerate(groups):
        wanted = {dataset.item_map.external(h) for h in hidden}
        for u in range(learners):
            episodes += 1
            target = hidden[u % 3]
            messages = [f"I loved {title(dataset, anchor)}", *hints(dataset, target)]
            for turn, message in enumerate(messages, 1):
                start = time.perf_counter()
                reply = rec.chat(message, thread_id=f"{label}-{g}-{u}", k=K)
                latencies.append(time.perf_counter() - start)
                if wanted & {item.id for item in reply.items}:
                    successes += 1
                    needed.append(turn)
                    break
    return {
        "episodes": episodes,
        "success@5": successes / max(1, episodes),
        "mean_turns": statistics.mean(needed) if needed else float("nan"),
        "p50_ms": float(np.percentile(np.array(latencies) * 1000, 50)),
    }


def append_cost(home: Path, entries: int = 200) -> dict[str, float]:
    """What logging adds to a turn: one durable append (flock, write, fsync) of a typical entry."""
    from recagents.data.feedback import LogEntry

    log = FeedbackLog(home / "append-cost" / "log.jsonl")
    log.clear()
    took = []
    for n in range(entries):
        entry = LogEntry(
            thread_id=f"t{n % 20}",
            time=float(n),
            catalog="movielens-100k",
            message="I loved Heat (1995), something like it but funnier",
            liked=("6",),
            shown=("50", "181", "100", "258", "1"),
        )
        began = time.perf_counter()
        log.append([entry])
        took.append((time.perf_counter() - began) * 1000)
    log.clear()
    return {
        "entries": entries,
        "p50_ms": float(np.percentile(took, 50)),
        "p95_ms": float(np.percentile(took, 95)),
    }


def one_seed(home: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Teach, fold, and score learners against the control, for one seed."""
    settings = Settings.load(home=home, seed=seed)
    dataset = load_dataset("movielens-100k")
    split = rs_split(dataset, settings.seed)
    began = time.perf_counter()
    base = train_agents(
        split, settings, max_rounds=args.rounds, patience=1, resume=True, progress=False
    )
    base_seconds = time.perf_counter() - began
    FeedbackLog.in_home(home).clear()  # each seed starts from an empty log
    groups = draw_groups(dataset, args.groups, seed)

    served = Recommender(base, settings, checkpointer=InMemorySaver())  # logs to home
    taught = teach(served, groups, args.teachers)
    snapshot = snapshot_feedback(home, dataset.name)
    assert snapshot is not None
    models: dict[str, Any] = {"control (no feedback round)": base}
    seconds = {"base": round(base_seconds, 1)}
    for label, warm in (
        ("feedback round (warm start)", base),
        ("feedback union, text seeds", None),
    ):
        began = time.perf_counter()
        models[label] = train_agents(
            split,
            settings,
            run_name="feedback" if warm is not None else "feedback-fresh",
            dialogues=[snapshot],
            warm_start=warm,
            max_rounds=args.rounds,
            patience=1,
            progress=False,
        )
        seconds[label] = round(time.perf_counter() - began, 1)
    rows = {}
    for n, (label, trained) in enumerate(models.items()):
        rec = Recommender(trained, settings, checkpointer=InMemorySaver(), log=None)
        rows[label] = learn(rec, groups, args.learners, f"learner{n}")
        # the catalog's own users: the served round's valid NDCG@10 (MovieLens users only)
        rows[label]["catalog_valid_ndcg@10"] = float(trained.report.best_ndcg)
    return {
        "seed": seed,
        "groups": [
            {"anchor": title(dataset, a), "hidden": [title(dataset, h) for h in hs]}
            for a, hs in groups
        ],
        **taught,
        "log_entries": len(FeedbackLog.in_home(home).entries()),
        "snapshot": snapshot,
        "thread_users": (models["feedback round (warm start)"].dialogues or {}).get("users"),
        "train_seconds": seconds,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="bench home (default: a temporary folder)")
    parser.add_argument("--groups", type=int, default=12)
    parser.add_argument("--teachers", type=int, default=6)
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every training")
    parser.add_argument("--seeds", default="2020", help="comma separated (tastes and models)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--append-cost-only", action="store_true", help="only time 200 log appends (fsync)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    home = args.home or Path(tempfile.mkdtemp(prefix="feedback-loop-"))
    if args.append_cost_only:
        cost = append_cost(home)
        sys.stdout.write(
            f"log append ({cost['entries']} entries, flock + write + fsync): "
            f"p50 {cost['p50_ms']:.2f} ms, p95 {cost['p95_ms']:.2f} ms\n"
        )
        return 0
    runs = [one_seed(home, int(seed), args) for seed in args.seeds.split(",")]
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "runs": runs,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout.write
    for run in runs:
        out(
            f"seed {run['seed']}: {args.groups} taste groups; {run['teacher_turns']} teacher "
            f"turns, {run['teacher_likes']} 👍 on shown hidden films, {run['log_entries']} log "
            f"entries -> {run['thread_users']} thread users; training s {run['train_seconds']}\n"
        )
    out(
        "\n| model | seed | learners | success@5 | mean turns to success | ML-100K valid "
        "NDCG@10 | turn p50 (ms) |\n"
    )
    out("|---|---|---|---|---|---|---|\n")
    labels = list(runs[0]["rows"])
    for label in labels:
        for run in runs:
            row = run["rows"][label]
            out(
                f"| {label} | {run['seed']} | {row['episodes']} | {row['success@5']:.2f} | "
                f"{row['mean_turns']:.2f} | {row['catalog_valid_ndcg@10']:.4f} | "
                f"{row['p50_ms']:.0f} |\n"
            )
        if len(runs) > 1:
            success = statistics.median(r["rows"][label]["success@5"] for r in runs)
            turns = statistics.median(r["rows"][label]["mean_turns"] for r in runs)
            ndcg = statistics.median(r["rows"][label]["catalog_valid_ndcg@10"] for r in runs)
            out(f"| {label} | median | | {success:.2f} | {turns:.2f} | {ndcg:.4f} | |\n")
    cost = append_cost(home)
    out(
        f"\nlog append ({cost['entries']} entries, flock + write + fsync): "
        f"p50 {cost['p50_ms']:.2f} ms, p95 {cost['p95_ms']:.2f} ms\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
