"""Re-check dumped LLM explanations with the current claim checker.

Usage:
    .venv/bin/python bench/recheck_explanations.py bench/results/explain-accepted.jsonl

``bench/conversation.py --dump-accepted`` writes each reply its checks accepted, with the
evidence it was checked against. When the checker changes (say, after a hand-check found false
statements it let through), this script says which of those replies the current checker would
still accept, so a change is measured on the very replies that motivated it, without re-running
the model. Film facts come from the dataset's fact sheets, as in the graph.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from recagents.env import ensure_offline

ensure_offline()

from recagents.data import load_dataset  # noqa: E402
from recagents.graph.explain import check_reply  # noqa: E402
from recagents.types import Contribution, Evidence, Recommendation  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", type=Path, help="JSONL written by conversation.py --dump-accepted")
    parser.add_argument("--show", action="store_true", help="print each newly rejected reply")
    args = parser.parse_args()
    dataset = load_dataset("movielens-100k")
    records = [json.loads(line) for line in args.dump.read_text(encoding="utf-8").splitlines()]
    reasons: Counter[str] = Counter()
    kept = 0
    for n, record in enumerate(records, 1):
        rec = Recommendation(
            record["item_id"],
            record["title"],
            0.0,
            Evidence(
                because_of=tuple(Contribution("", t, 1.0) for t in record["liked"]),
                shared_attributes=tuple(record["shared"]),
            ),
        )
        sheet = dataset.fact_sheet(dataset.item_map.index(record["item_id"]))
        reason = check_reply(record["reason"], rec, None, sheet)
        if reason is None:
            kept += 1
            continue
        reasons[reason.split(":")[0]] += 1
        if args.show:
            print(f"#{n} {record['reason']}\n    -> {reason}")
    print(f"{kept}/{len(records)} replies still accepted by the current checker")
    for reason, count in reasons.most_common():
        print(f"- {count} × {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
