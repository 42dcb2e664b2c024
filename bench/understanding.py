"""Understanding benchmark: intent accuracy and per-film liked/disliked/seen on labelled turns.

Usage:
    V/bin/python bench/understanding.py [--split heldout|dev|all] [--mode router|rules]
        [--code DIR] [--json]

``--mode rules`` reads every turn with the keyword rules only; ``--mode router`` (default) adds
the semantic router (nearest labelled exemplars, ``graph/understand/words/exemplars.toml``,
embedded with the bundled all-MiniLM-L6-v2), the rules deciding where it is unsure. ``--code DIR``
imports ``recagents`` from another checkout instead of this one, e.g. the branch base, to measure
*before*: ``git worktree add /tmp/base <commit>`` then ``--code /tmp/base --mode rules``. It works
with the editable install this repository's venv uses (its path mapping is redirected).

The labelled set, ``bench/data/understanding.jsonl`` (402 seeker turns), one JSON object a line:

- ``text``: the turn. ``intent``: the action it asks for (``recommend``, ``why``, ``about``,
  ``smalltalk``, ``start_over``, ``other_language``, ``empty``), or null where a turn asks for
  nothing a recommender acts on (38 ReDial remarks such as "It has some catchy tunes"): those
  count only for the film labels.
- ``films``: ``{"Title (Year)": {"liked": "yes"|"no"|null, "seen": "yes"|"no"|null}}`` for the
  catalog films the turn names.
- ``source``: ``hand`` (150 written for this benchmark: the issue's failures, typos, corrections,
  questions about a shown list, other languages...), or ``redial:<conversationId>:<messageId>``
  (252 seeker messages of ``/work/shared/data/redial/train.jsonl``: the 142 whose every ``@id``
  maps to an ML-100K film, with ``@id`` spelled as the ReDial title without its year, and 110
  drawn at random (seed 10) among those with no movie; their intents labelled by hand). A
  ReDial film's labels are the seeker's own questionnaire (``initiatorQuestions``: liked 1 ->
  "yes", 0 -> "no", 2 -> null; seen likewise): they describe the whole dialogue, not the single
  message, so they are noisy per turn ("I haven't seen Boogie Nights" is labelled liked: the
  seeker wants to see it). Hand films are labelled for the turn itself.
- ``split``: ``dev`` or ``heldout`` (CRC32 of the text, even -> dev). The router's thresholds
  were set looking at dev only; report held-out.

Turns written as ``hand`` are read with a shown list (Star Wars, The Usual Suspects, Fargo), so
"the second one" resolves; ReDial turns with none. Turns whose text equals a router exemplar
(case and spaces folded) are left out of every mode, so the router is never scored on its own
examples; the count is printed.

Film metrics, over (turn, labelled film) pairs whose gold label is known:

- ``liked``: gold liked = yes; predicted when the film is in the turn's ``liked``.
- ``positive``: the same gold; predicted when in ``liked`` or ``anchors`` ("something like X"
  reads X as a positive seed).
- ``disliked``: gold liked = no; predicted when in ``disliked`` or ``rejected``.
- ``seen``: gold seen = yes; predicted when in ``seen``, ``liked`` or ``disliked`` (an opinion
  implies having seen it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "understanding.jsonl"
EXEMPLARS = ROOT / "graph" / "understand" / "words" / "exemplars.toml"
SHOWN_TITLES = ["Star Wars (1977)", "The Usual Suspects (1995)", "Fargo (1996)"]
INTENTS = ["recommend", "why", "about", "smalltalk", "start_over", "other_language", "empty"]


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _redirect(code: Path) -> None:
    """Import ``recagents`` from ``code`` (another checkout) through the editable finder."""
    try:
        import __editable___recagents_0_1_0_finder as finder  # type: ignore[import-not-found]
    except ImportError as exc:  # not an editable install: say so, do not guess
        raise SystemExit("--code needs the editable install of this repository's venv") from exc
    for name, path in list(finder.MAPPING.items()):
        folder = Path(path).name
        finder.MAPPING[name] = str(code / folder)


def load_set(path: Path = DATA) -> list[dict[str, Any]]:
    """The labelled turns."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run(split: str, mode: str) -> dict[str, Any]:
    """Read every turn of ``split`` with the parser in ``mode``; return the metrics."""
    from recagents.data import load_dataset
    from recagents.graph.understand import IntentParser

    dataset = load_dataset("movielens-100k")
    parser = IntentParser(dataset)
    if mode == "router":
        from recagents.encoder import TextEncoder
        from recagents.graph.understand import SemanticRouter

        encoder = TextEncoder()
        parser.router = SemanticRouter(
            encoder.encode, encode_query=lambda texts: encoder.encode(texts, cache=False)
        )
        parser.router.route("warm up")  # exemplars embedded before timing
    matcher = parser.matcher
    shown = [matcher.find(t) for t in SHOWN_TITLES]
    exemplars = {_fold(t) for texts in tomllib.loads(EXEMPLARS.read_text()).values() for t in texts}
    rows = [r for r in load_set() if split == "all" or r["split"] == split]
    kept = [r for r in rows if _fold(r["text"]) not in exemplars]
    confusion: Counter[tuple[str, str]] = Counter()
    films = {name: Counter() for name in ("liked", "positive", "disliked", "seen")}
    seconds: list[float] = []
    wrong: list[tuple[str, str, str]] = []
    for row in kept:
        started = time.perf_counter()
        intent = parser.parse(row["text"], shown if row["source"] == "hand" else [])
        seconds.append(time.perf_counter() - started)
        if row["intent"] is not None:
            confusion[(row["intent"], intent.action)] += 1
            if row["intent"] != intent.action:
                wrong.append((row["text"], row["intent"], intent.action))
        for title, gold in row["films"].items():
            item = matcher.find(title)
            liked, anchors = set(intent.liked), set(intent.anchors)
            negative = set(intent.disliked) | set(intent.rejected)
            opinion = set(intent.seen) | liked | set(intent.disliked)
            checks = {
                "liked": (gold.get("liked"), "yes", item in liked),
                "positive": (gold.get("liked"), "yes", item in liked | anchors),
                "disliked": (gold.get("liked"), "no", item in negative),
                "seen": (gold.get("seen"), "yes", item in opinion),
            }
            for name, (label, positive, predicted) in checks.items():
                if label is None:
                    continue
                actual = label == positive
                films[name][
                    ("tp" if actual else "fp") if predicted else ("fn" if actual else "tn")
                ] += 1
    total = sum(confusion.values())
    correct = sum(n for (gold, got), n in confusion.items() if gold == got)
    per_intent = {}
    for name in INTENTS:
        gold_n = sum(n for (g, _), n in confusion.items() if g == name)
        got_n = sum(n for (_, p), n in confusion.items() if p == name)
        hit = confusion[(name, name)]
        per_intent[name] = {
            "n": gold_n,
            "recall": hit / gold_n if gold_n else None,
            "precision": hit / got_n if got_n else None,
        }
    film_scores = {}
    for name, c in films.items():
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        film_scores[name] = {
            "pairs": sum(c.values()),
            "positives": tp + fn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
        }
    return {
        "split": split,
        "mode": mode,
        "turns": len(rows),
        "left_out_as_exemplars": len(rows) - len(kept),
        "intent_turns": total,
        "intent_accuracy": correct / total if total else None,
        "per_intent": per_intent,
        "films": film_scores,
        "median_ms": 1000 * statistics.median(seconds) if seconds else None,
        "wrong": wrong,
    }


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{100 * value:5.1f}"


def print_table(result: dict[str, Any]) -> None:
    """The metrics as plain tables."""
    print(
        f"split={result['split']} mode={result['mode']} turns={result['turns']} "
        f"(left out as router exemplars: {result['left_out_as_exemplars']}) "
        f"median {result['median_ms']:.1f} ms/turn"
    )
    print(
        f"intent accuracy: {_pct(result['intent_accuracy'])}% over "
        f"{result['intent_turns']} labelled turns"
    )
    print(f"{'intent':15} {'n':>4} {'recall%':>8} {'precision%':>11}")
    for name, s in result["per_intent"].items():
        print(f"{name:15} {s['n']:4d} {_pct(s['recall']):>8} {_pct(s['precision']):>11}")
    print(f"{'film label':15} {'pairs':>5} {'gold+':>5} {'precision%':>11} {'recall%':>8}")
    for name, s in result["films"].items():
        print(
            f"{name:15} {s['pairs']:5d} {s['positives']:5d} {_pct(s['precision']):>11} "
            f"{_pct(s['recall']):>8}"
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--split", choices=["heldout", "dev", "all"], default="heldout")
    args.add_argument("--mode", choices=["router", "rules"], default="router")
    args.add_argument("--code", type=Path, help="import recagents from this checkout")
    args.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args.add_argument("--wrong", action="store_true", help="list the misread intents")
    opts = args.parse_args(argv)
    if opts.code is not None:
        _redirect(opts.code.resolve())
    from recagents.env import ensure_offline

    ensure_offline()
    result = run(opts.split, opts.mode)
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
        if opts.wrong:
            for text, gold, got in result["wrong"]:
                print(f"  {gold:>14} -> {got:14} {text[:90]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
