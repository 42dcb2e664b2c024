"""Agents benchmark: our agents side by side with RecBole 1.2.1 on the same split files.

Usage:
    .venv/bin/python bench/agents.py [--seeds 2020,1,2] [--rows agents,ease,...] [--skip-cold]
        [--no-recbole | --recbole-json FILE] [--recbole-models "EASE RecVAE MultiVAE ItemKNN BPR"]
        [--recbole-script PATH] [--recbole-out FILE] [--determinism] [--train-cost]
        [--text-cache HOME/cache/text-embeddings.sqlite] [--json]

Per seed, the RecBole RS split of MovieLens-100K (per user, random 8:1:1) is written to a
temporary folder with the functions ``recagents split --out DIR --seed S`` calls (``rs_split``,
``save_split``). Both sides see that split: our rows train on its train part, pick their round on
valid and report test (full ranking @10) under a temporary home with a real embedded ChromaDB;
RecBole runs on the written files through ``<repo>/../shared/anchors/recbole.sh SPLIT_DIR MODEL...``
(in a git worktree, ``<repo>`` is the main checkout; ``--recbole-script`` overrides it; models from
``--recbole-models``), which trains on train, early-stops on valid NDCG@10 and reports test with
full ranking. Its stderr lines starting with ``error:`` are
reported as failed models, not fatal. ``--recbole-out FILE`` writes the JSON lines it printed,
each with ``"seed"`` added; ``--recbole-json FILE`` reads such lines back instead of running
RecBole again (a line without ``"seed"`` counts for every seed). ``--no-recbole`` leaves RecBole
out (the ratios that need it then read n/a).

Our rows (``--rows`` takes their model names):

- ``round 0 (text only)`` (``agents-text``): the seed vectors, no learning;
- ``user_profile alone`` / ``item alone`` / ``ranking alone`` (``agents-user_profile``,
  ``agents-item``, ``agents-ranking``): one role, ranking with its own model (the user agent's
  autoencoder with its own decoder, the item agent's item-item model; the ranking agent's
  re-ranker over its item-item model, its peers' vectors at the text seed), fitted on all of
  train (no role of these runs learns from the hold-out);
- ``full collaboration`` (``agents``): every role, collaborating through the store;
- ``full collaboration, round 1 only`` (``agents-round1``): the same run stopped after round 1
  (rounds are seeded per agent and round, so it is the full run's round 1): its test figure is
  what the later rounds are judged against;
- ``sharded (4 user replicas)`` (``agents-shards4``): same, the user side in four replicas;
- ``EASE (ours)`` (``ease``): our EASE baseline.

Output: one table per seed and the median table (RecBole models and our rows together: test
NDCG@10, test Recall@10, valid NDCG@10, train seconds, chosen round), then test-NDCG@10 ratios
per seed and their median over seeds: full / RecVAE, user_profile alone / MultiVAE, item alone /
ItemKNN, item alone / MultiVAE, full / best single agent (the best of user_profile, item and
ranking alone in that seed), and the full run's valid NDCG@10 in round 1 vs its best later
round, and its test NDCG@10 vs the round-1-only run's. Targets, each printed PASS, FAIL or N/A
(not measured) with the numbers:

- full / RecVAE >= 1.03 (median) and >= 1.0 in every seed;
- user_profile alone / MultiVAE >= 1.0 (median);
- item alone / ItemKNN >= 1.0 (median);
- full / best single agent >= 1.02 in every seed;
- the rounds matter: the full run serves a round >= 2 that beats round 1 on valid NDCG@10 and
  on test NDCG@10 (vs the round-1-only row) in every seed.

Cold items (``--skip-cold`` leaves it out; first seed): 10% of items (random, seeded) lose every
train interaction; after training, users' test interactions with those items are ranked among the
cold items only, scored from text alone (the item agent's learned text map vs the raw text
embeddings). Cold users from text alone (same seed): 10% of users lose every train and valid
interaction; each is then described only by what the catalog knows without ratings (ML-100K:
age, gender, occupation), folded in by the user agent and ranked over all items against their test
items, next to popularity and random. Cold users who name 1-3 films: ``bench/coldstart.py``;
from a dialogue's words and films: ``bench/redial.py``.

``--determinism``: ``recagents --home H evaluate --model agents --seed S --json`` (first seed) in
two fresh subprocesses, each with its own temporary home; reports whether test NDCG@10 and every
round's valid figures are identical. ``--train-cost``: ``recagents --home H prepare`` then
``recagents --home H train`` on MovieLens-100K (first seed) in a fresh temporary home, each a
subprocess; reports the train command's wall seconds and peak RSS (``os.wait4``'s rusage of that
child) against the targets <= 90 s and <= 2 GB (the first-use prepare is printed, not counted).
``--text-cache FILE`` copies a home's text-embeddings cache into every fresh home (each would
otherwise encode the catalog texts again, about 3 minutes on two cores; the figures are the same).
``--json`` prints everything as one JSON object instead of the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recagents.env import ensure_offline

ensure_offline()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import recagents.agents.trainer  # noqa: E402,F401  (registers the agents models)
from recagents.agents.base import ITEM, ITEM_BIAS, USER  # noqa: E402
from recagents.agents.trainer import MODELS, train_agents  # noqa: E402
from recagents.config import Settings  # noqa: E402
from recagents.data import load_dataset  # noqa: E402
from recagents.data.splits import Split, rs_split, save_split  # noqa: E402
from recagents.eval.experiment import fit_and_evaluate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ANCHOR = Path("..") / "shared" / "anchors" / "recbole.sh"


def default_recbole_script() -> Path:
    """``<repo>/../shared/anchors/recbole.sh``; in a git worktree, the main checkout's repo."""
    script = REPO / ANCHOR
    if script.exists():
        return script
    try:
        common = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--path-format=absolute", "--git-common-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return script
    main_script = Path(common).parent / ANCHOR
    return main_script if main_script.exists() else script


DEFAULT_RECBOLE_MODELS = "EASE RecVAE MultiVAE ItemKNN BPR"

ROWS = [
    ("round 0 (text only)", "agents-text"),
    ("user_profile alone", "agents-user_profile"),
    ("item alone", "agents-item"),
    ("ranking alone", "agents-ranking"),
    ("full collaboration", "agents"),
    ("full collaboration, round 1 only", "agents-round1"),
    ("sharded (4 user replicas)", "agents-shards4"),
    ("EASE (ours)", "ease"),
]
FULL, USER_ALONE, ITEM_ALONE = "full collaboration", "user_profile alone", "item alone"
ROUND1 = "full collaboration, round 1 only"
SINGLES = (USER_ALONE, ITEM_ALONE, "ranking alone")
#: Ratio name -> (numerator row, denominator row); RecBole rows are "RecBole <model>".
RATIOS = {
    "full / RecVAE": (FULL, "RecBole RecVAE"),
    "user_profile alone / MultiVAE": (USER_ALONE, "RecBole MultiVAE"),
    "item alone / ItemKNN": (ITEM_ALONE, "RecBole ItemKNN"),
    "item alone / MultiVAE": (ITEM_ALONE, "RecBole MultiVAE"),
}
BEST_SINGLE = "full / best single agent"
TRAIN_TARGET_S, TRAIN_TARGET_MB = 90.0, 2048.0

Row = dict[str, Any]


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


def cold_users(dataset, seed: int, settings: Settings) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """NDCG@10 / Recall@10 over all items of withheld users, from their own description alone.

    10% of users (random, seeded) lose every train and valid interaction; after training, each
    is described by what the catalog knows without a rating (MovieLens-100K: age, gender,
    occupation), encoded by the language model, folded in by the user agent (its learned text
    map) and scored against the item agent's vectors; their test interactions are the truth.
    Popularity (train counts) and random are the references.
    """
    from recagents.data import interaction_matrix
    from recagents.data.texts import user_texts
    from recagents.encoder import encoder_from_settings
    from recagents.eval.metrics import evaluate_ranking

    split = rs_split(dataset, seed)
    rng = np.random.default_rng(seed + 7)
    cold = np.sort(rng.choice(dataset.n_users, size=dataset.n_users // 10, replace=False))
    is_cold = np.zeros(dataset.n_users, dtype=bool)
    is_cold[cold] = True
    warm = Split(
        dataset,
        split.train[~is_cold[split.train["user"].to_numpy()]].reset_index(drop=True),
        split.valid[~is_cold[split.valid["user"].to_numpy()]].reset_index(drop=True),
        split.test,
        protocol="rs-cold-users",
        seed=seed,
    )
    trained = train_agents(warm, settings, run_name="cold-users", progress=False)
    coordinator, context = trained.coordinator, trained.context
    peers = coordinator.serving_peers(context.train)
    user_agent = coordinator.publishers(USER)[0]
    texts = user_texts(dataset, split.train.iloc[:0], users=cold)  # no ratings: description only
    vectors = encoder_from_settings(settings).encode(texts, progress=False)
    folded = np.stack([user_agent.fold_in_user(np.zeros(0, dtype=np.int64), v) for v in vectors])
    scores = np.zeros((dataset.n_users, dataset.n_items))
    scores[cold] = folded @ peers[ITEM].T + peers.get(ITEM_BIAS, 0.0)
    popularity = np.asarray(context.train.sum(axis=0)).ravel()
    test = split.test[is_cold[split.test["user"].to_numpy()]]
    truth = interaction_matrix(test, dataset.n_users, dataset.n_items)
    nothing = interaction_matrix(test.iloc[:0], dataset.n_users, dataset.n_items)
    random = np.random.default_rng(seed + 8).random((dataset.n_users, dataset.n_items))
    out: dict[str, float] = {"cold_users": float(len(cold)), "example": texts[0]}  # type: ignore[dict-item]
    for name, matrix in {
        "agents (description folded in)": scores,
        "popularity": np.broadcast_to(popularity, scores.shape),
        "random": random,
    }.items():
        result = evaluate_ranking(lambda users, m=matrix: m[users], truth, nothing)
        out[f"{name} ndcg@10"] = float(result["ndcg@10"])
        out[f"{name} recall@10"] = float(result["recall@10"])
    return out


def recbole_row(line: dict[str, Any]) -> Row:
    """A RecBole JSON line as a table row."""
    return {
        "ndcg@10": float(line["test"]["ndcg@10"]),
        "recall@10": float(line["test"]["recall@10"]),
        "valid_ndcg@10": float(line["valid"]["ndcg@10"]),
        "train_s": float(line.get("secs", float("nan"))),
        "best_round": None,
    }


def run_recbole(script: Path, split_dir: Path, models: list[str]) -> tuple[list[dict], list[str]]:
    """Run the RecBole anchor script on one split: (parsed JSON lines, error lines)."""
    proc = subprocess.run(
        ["bash", str(script), str(split_dir), *models],
        capture_output=True,
        text=True,
        check=False,
    )
    lines, errors = [], []
    for text in proc.stdout.splitlines():
        text = text.strip()
        if not text.startswith("{"):
            continue
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            errors.append(f"unparsable RecBole line: {text[:200]}")
    errors += [t.strip() for t in proc.stderr.splitlines() if t.startswith("error:")]
    if proc.returncode != 0:
        errors.append(f"error: {script} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return lines, errors


def read_recbole_json(path: Path) -> list[dict]:
    """JSON lines recorded by ``--recbole-out`` (or by hand; a line without seed: every seed)."""
    out = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if text.strip():
            out.append(json.loads(text))
    return out


def our_row(result: dict[str, Any]) -> Row:
    """A ``fit_and_evaluate`` result as a table row."""
    return {
        "ndcg@10": float(result["metrics"]["ndcg@10"]),
        "recall@10": float(result["metrics"]["recall@10"]),
        "valid_ndcg@10": float(result["valid_metrics"]["ndcg@10"]),
        "train_s": float(result["train_seconds"]),
        "best_round": result["model_info"].get("best_round"),
    }


def round_check(model_info: dict[str, Any]) -> dict[str, Any]:
    """Valid NDCG@10 of round 1 vs the best round >= 2 of a training report.

    The test side (``test_round1``, ``test_served``, ``beats_test``) is filled in by
    :func:`test_check` once the round-1-only row has run.
    """
    valid = {int(r["round"]): float(r["valid"]["ndcg@10"]) for r in model_info.get("rounds", [])}
    later = {k: v for k, v in valid.items() if k >= 2}
    best = max(later, key=lambda k: later[k]) if later else None
    return {
        "round1": valid.get(1),
        "best_later_round": best,
        "best_later": later[best] if best is not None else None,
        "beats": bool(best is not None and 1 in valid and later[best] > valid[1]),
        "rounds": valid,
    }


def test_check(check: dict[str, Any], table: dict[str, Row]) -> dict[str, Any]:
    """Add the test side of the rounds check: the served round's test vs round 1's.

    Beaten only when the full run serves a round >= 2 (a run serving round 1 has its test).
    """
    first, served = table.get(ROUND1), table.get(FULL)
    check = {**check, "test_round1": None, "test_served": None, "beats_test": None}
    if first is not None and served is not None:
        later = (served.get("best_round") or 0) >= 2
        check["test_round1"], check["test_served"] = first["ndcg@10"], served["ndcg@10"]
        check["beats_test"] = bool(later and served["ndcg@10"] > first["ndcg@10"])
    return check


def ratios_for(table: dict[str, Row]) -> dict[str, Any]:
    """Test NDCG@10 ratios of one seed's table (None where a side is missing)."""
    out: dict[str, Any] = {}
    for name, (num, den) in RATIOS.items():
        a, b = table.get(num), table.get(den)
        out[name] = a["ndcg@10"] / b["ndcg@10"] if a and b and b["ndcg@10"] > 0 else None
    singles = {k: table[k]["ndcg@10"] for k in SINGLES if k in table}
    if FULL in table and len(singles) == len(SINGLES):
        best = max(singles, key=lambda k: singles[k])
        out[BEST_SINGLE] = table[FULL]["ndcg@10"] / singles[best] if singles[best] > 0 else None
        out["best single agent"] = best
    else:
        out[BEST_SINGLE] = None
        out["best single agent"] = None
    return out


def median_or_none(values: list[float | None]) -> float | None:
    """Median of the values when every seed has one, else None."""
    if not values or any(v is None for v in values):
        return None
    return float(statistics.median(v for v in values if v is not None))


def judge(
    per_seed: dict[int, dict[str, Any]], median: dict[str, Any], rounds: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """PASS / FAIL / N/A for each target, with the numbers it was judged on."""

    def fmt(v: float | None, digits: int = 3) -> str:
        return "n/a" if v is None else f"{v:.{digits}f}"

    def seeds_of(name: str) -> list[float | None]:
        return [r[name] for r in per_seed.values()]

    out = []
    full = seeds_of("full / RecVAE")
    if median["full / RecVAE"] is None:
        status = "N/A"
    else:
        ok = median["full / RecVAE"] >= 1.03 and all(v is not None and v >= 1.0 for v in full)
        status = "PASS" if ok else "FAIL"
    out.append(
        {
            "target": "full / RecVAE >= 1.03 median and >= 1.0 every seed",
            "status": status,
            "measured": f"median {fmt(median['full / RecVAE'])}, seeds "
            + ", ".join(fmt(v) for v in full),
        }
    )
    for name in ("user_profile alone / MultiVAE", "item alone / ItemKNN"):
        m = median[name]
        out.append(
            {
                "target": f"{name} >= 1.0 (median)",
                "status": "N/A" if m is None else ("PASS" if m >= 1.0 else "FAIL"),
                "measured": f"median {fmt(m)}, seeds " + ", ".join(fmt(v) for v in seeds_of(name)),
            }
        )
    best = seeds_of(BEST_SINGLE)
    out.append(
        {
            "target": "full / best single agent >= 1.02 every seed",
            "status": "N/A"
            if any(v is None for v in best) or not best
            else ("PASS" if all(v is not None and v >= 1.02 for v in best) else "FAIL"),
            "measured": ", ".join(
                f"seed {s} {fmt(r[BEST_SINGLE])} (vs {r['best single agent']})"
                for s, r in per_seed.items()
            ),
        }
    )

    def rounds_target(target: str, beats: str, line: Callable[[dict], str]) -> dict[str, str]:
        known = len(rounds) == len(per_seed) and bool(rounds)
        known = known and all(r.get(beats) is not None for r in rounds.values())
        passed = known and all(r[beats] for r in rounds.values())
        return {
            "target": target,
            "status": "N/A" if not known else ("PASS" if passed else "FAIL"),
            "measured": ", ".join(f"seed {s} {line(r)}" for s, r in rounds.items())
            or "full collaboration not run",
        }

    out.append(
        rounds_target(
            "rounds matter: a round >= 2 beats round 1 on valid NDCG@10 every seed",
            "beats",
            lambda r: (
                f"round 1 {fmt(r['round1'], 4)} vs round {r['best_later_round']} "
                f"{fmt(r['best_later'], 4)}"
            ),
        )
    )
    out.append(
        rounds_target(
            "rounds matter: the served round (>= 2) beats round 1 on test every seed",
            "beats_test",
            lambda r: (
                f"round 1 {fmt(r.get('test_round1'), 4)} vs served {fmt(r.get('test_served'), 4)}"
            ),
        )
    )
    return out


def cli_command(home: Path, *args: str) -> list[str]:
    """``recagents --home HOME ARGS...`` with this interpreter."""
    return [
        sys.executable,
        "-c",
        "import sys; from recagents.ui.cli import main; sys.exit(main())",
        "--home",
        str(home),
        *args,
    ]


def run_child(command: list[str]) -> dict[str, Any]:
    """Run a subprocess; its wall seconds, peak RSS (MB, ``os.wait4``), exit code and stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "wall_s": wall,
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "rc": proc.returncode,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr_tail": err.read().decode("utf-8", "replace")[-600:],
        }


#: A text-embeddings cache copied into every fresh home (``--text-cache``), or ``None``.
TEXT_CACHE: Path | None = None


def seed_home(home: Path) -> Path:
    """Put :data:`TEXT_CACHE` where a home keeps its text embeddings (saves minutes of encoding).

    The cache holds the encoder's outputs for the catalog texts; without it every fresh home
    encodes them again (about 3 minutes on two cores).
    """
    if TEXT_CACHE is not None:
        (home / "cache").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEXT_CACHE, home / "cache" / "text-embeddings.sqlite")
    return home


def determinism(seed: int) -> dict[str, Any]:
    """``recagents evaluate --model agents --json`` twice, each in a fresh home: same numbers?"""
    runs = []
    for k in range(2):
        with tempfile.TemporaryDirectory(prefix=f"recagents-det{k}-") as home:
            seed_home(Path(home))
            child = run_child(
                cli_command(Path(home), "evaluate", "--model", "agents", "--seed", str(seed))
                + ["--json"]
            )
        if child["rc"] != 0:
            return {"error": f"run {k + 1} exited {child['rc']}: {child['stderr_tail']}"}
        line = next(t for t in reversed(child["stdout"].splitlines()) if t.startswith("{"))
        result = json.loads(line)
        runs.append(
            {
                "test_ndcg@10": result["metrics"]["ndcg@10"],
                "rounds": [
                    {"round": r["round"], "valid": r["valid"]}
                    for r in result["model_info"].get("rounds", [])
                ],
                "wall_s": round(child["wall_s"], 1),
            }
        )
    same_test = runs[0]["test_ndcg@10"] == runs[1]["test_ndcg@10"]
    same_rounds = runs[0]["rounds"] == runs[1]["rounds"]
    return {
        "seed": seed,
        "runs": runs,
        "identical_test": same_test,
        "identical_rounds": same_rounds,
    }


def train_cost(seed: int) -> dict[str, Any]:
    """Wall seconds and peak RSS of ``recagents train`` in a fresh home (after ``prepare``)."""
    with tempfile.TemporaryDirectory(prefix="recagents-cost-") as home:
        seed_home(Path(home))
        prepare = run_child(cli_command(Path(home), "prepare"))
        if prepare["rc"] != 0:
            return {"error": f"prepare exited {prepare['rc']}: {prepare['stderr_tail']}"}
        train = run_child(cli_command(Path(home), "train", "--seed", str(seed)))
    if train["rc"] != 0:
        return {"error": f"train exited {train['rc']}: {train['stderr_tail']}"}
    return {
        "seed": seed,
        "prepare_wall_s": round(prepare["wall_s"], 1),
        "prepare_peak_rss_mb": round(prepare["peak_rss_mb"], 1),
        "train_wall_s": round(train["wall_s"], 1),
        "train_peak_rss_mb": round(train["peak_rss_mb"], 1),
        "time_target": "PASS" if train["wall_s"] <= TRAIN_TARGET_S else "FAIL",
        "memory_target": "PASS" if train["peak_rss_mb"] <= TRAIN_TARGET_MB else "FAIL",
    }


def print_table(title: str, table: dict[str, Row]) -> None:
    """One markdown table: RecBole models and our rows."""
    print(f"\n{title}")
    print(
        "| configuration | test NDCG@10 | test Recall@10 | valid NDCG@10 | train s | chosen round |"
    )
    print("|---|---|---|---|---|---|")
    for label, row in table.items():
        chosen = "-" if row["best_round"] is None else f"{row['best_round']:g}"
        print(
            f"| {label} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | "
            f"{row['valid_ndcg@10']:.4f} | {row['train_s']:.1f} | {chosen} |"
        )


def median_table(tables: dict[int, dict[str, Row]]) -> dict[str, Row]:
    """Per-field median over seeds of the rows every seed has."""
    labels = [k for k in next(iter(tables.values())) if all(k in t for t in tables.values())]
    out: dict[str, Row] = {}
    for label in labels:
        rows = [t[label] for t in tables.values()]
        out[label] = {
            key: statistics.median(r[key] for r in rows)
            for key in ("ndcg@10", "recall@10", "valid_ndcg@10", "train_s")
        }
        chosen = [r["best_round"] for r in rows]
        out[label]["best_round"] = (
            None if any(c is None for c in chosen) else statistics.median(chosen)
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="2020,1,2")
    parser.add_argument("--rows", help="comma-separated model names of our rows (default: all)")
    parser.add_argument("--skip-cold", action="store_true", help="leave out the cold-items run")
    parser.add_argument("--no-recbole", action="store_true", help="leave RecBole out")
    parser.add_argument(
        "--recbole-script",
        type=Path,
        default=default_recbole_script(),
        help="RecBole anchor script (default: <repo>/../shared/anchors/recbole.sh, <repo> the main "
        "checkout when this is a git worktree)",
    )
    parser.add_argument("--recbole-models", default=DEFAULT_RECBOLE_MODELS)
    parser.add_argument(
        "--recbole-json",
        type=Path,
        help="read RecBole's JSON lines (with 'seed') from this file instead of running it",
    )
    parser.add_argument(
        "--recbole-out", type=Path, help="write RecBole's JSON lines, seed added, to this file"
    )
    parser.add_argument("--determinism", action="store_true", help="two fresh evaluate runs")
    parser.add_argument("--train-cost", action="store_true", help="time and memory of train")
    parser.add_argument(
        "--text-cache",
        type=Path,
        help="a home's cache/text-embeddings.sqlite to copy into every fresh home",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.recbole_models.split()
    recorded = read_recbole_json(args.recbole_json) if args.recbole_json else None
    use_recbole = not args.no_recbole
    if use_recbole and recorded is None and not args.recbole_script.exists():
        parser.error(f"RecBole script not found: {args.recbole_script} (or use --no-recbole)")
    if args.recbole_out and use_recbole and recorded is None:
        args.recbole_out.write_text("", encoding="utf-8")
    dataset = load_dataset("movielens-100k")
    global TEXT_CACHE
    TEXT_CACHE = args.text_cache
    home = seed_home(Path(tempfile.mkdtemp(prefix="recagents-bench-agents-")))
    split_root = Path(tempfile.mkdtemp(prefix="recagents-bench-splits-"))
    wanted = set(args.rows.split(",")) if args.rows else None
    tables: dict[int, dict[str, Row]] = {}
    recbole_errors: dict[int, list[str]] = {}
    rounds: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        split = rs_split(dataset, seed)
        split_dir = split_root / f"seed-{seed}"
        save_split(split, split_dir)  # what `recagents split --out DIR --seed S` writes
        table: dict[str, Row] = {}
        errors: list[str] = []
        for label, model in ROWS:
            if wanted and model not in wanted:
                continue
            settings = Settings.load(home=home, seed=seed)
            result = fit_and_evaluate(split, model, settings, models=MODELS)
            table[label] = our_row(result)
            if label == FULL:
                rounds[seed] = round_check(result["model_info"])
            print(
                f"  {label} seed {seed}: test ndcg@10 {result['metrics']['ndcg@10']:.4f} "
                f"best round {result['model_info'].get('best_round', '-')} "
                f"({result['train_seconds']:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
        # RecBole after our rows: a --recbole-json file still being written for the later seeds
        # (a RecBole run started beside this one) has more of them by then
        if use_recbole:
            if recorded is not None:
                recorded = read_recbole_json(args.recbole_json)
                lines = [
                    r for r in recorded if r.get("seed", seed) == seed and r["model"] in models
                ]
                found = {r["model"] for r in lines}
                errors += [
                    f"error: RecBole {m}: no line for seed {seed} in {args.recbole_json}"
                    for m in models
                    if m not in found
                ]
            else:
                print(f"  RecBole seed {seed}: {' '.join(models)} ...", file=sys.stderr, flush=True)
                lines, run_errors = run_recbole(args.recbole_script, split_dir, models)
                errors += run_errors
                if args.recbole_out:
                    with args.recbole_out.open("a", encoding="utf-8") as handle:
                        for line in lines:
                            handle.write(json.dumps({**line, "seed": seed}) + "\n")
            for line in lines:
                try:
                    table[f"RecBole {line['model']}"] = recbole_row(line)
                except (KeyError, TypeError, ValueError) as exc:
                    errors.append(f"error: RecBole line without {exc}: {json.dumps(line)[:200]}")
                    continue
                print(
                    f"  RecBole {line['model']} seed {seed}: test ndcg@10 "
                    f"{line['test']['ndcg@10']:.4f} ({line.get('secs', float('nan'))} s)",
                    file=sys.stderr,
                    flush=True,
                )
            for error in errors:
                print(f"  {error}", file=sys.stderr, flush=True)
        recbole_errors[seed] = errors
        tables[seed] = table
        if seed in rounds:
            rounds[seed] = test_check(rounds[seed], table)
    per_seed = {seed: ratios_for(t) for seed, t in tables.items()}
    median = {
        name: median_or_none([r[name] for r in per_seed.values()])
        for name in (*RATIOS, BEST_SINGLE)
    }
    medians = median_table(tables)
    targets = judge(per_seed, median, rounds)
    out: dict[str, Any] = {
        "seeds": seeds,
        "tables": {str(s): t for s, t in tables.items()},
        "median": medians,
        "ratios": {str(s): r for s, r in per_seed.items()},
        "median_ratios": median,
        "rounds": {str(s): r for s, r in rounds.items()},
        "targets": targets,
        "recbole_errors": {str(s): e for s, e in recbole_errors.items()},
    }
    if not args.skip_cold:
        settings = Settings.load(home=home, seed=seeds[0])
        out["cold"] = cold_items(dataset, seeds[0], settings)
        out["cold_users"] = cold_users(dataset, seeds[0], settings)
    if args.determinism:
        print(f"  determinism: two fresh evaluate runs, seed {seeds[0]} ...", file=sys.stderr)
        out["determinism"] = determinism(seeds[0])
    if args.train_cost:
        print(f"  train cost: prepare + train, seed {seeds[0]} ...", file=sys.stderr)
        out["train_cost"] = train_cost(seeds[0])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(split_root, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
        return 0
    report(out, args)
    return 0


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    """The tables, ratios, targets and extra sections as text."""
    seeds = out["seeds"]
    source = (
        "RecBole left out"
        if args.no_recbole
        else f"RecBole from {args.recbole_json}"
        if args.recbole_json
        else f"RecBole 1.2.1 via {args.recbole_script}"
    )
    print(f"MovieLens-100K, RecBole RS split files (per seed), full ranking @10; {source}")
    for seed in seeds:
        print_table(f"seed {seed}", out["tables"][str(seed)])
        for error in out["recbole_errors"][str(seed)]:
            print(f"  RecBole failure, seed {seed}: {error}")
    print_table(f"median over seeds {','.join(map(str, seeds))}", out["median"])

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    def fmt4(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    names = [*RATIOS, BEST_SINGLE]
    print("\ntest NDCG@10 ratios (median column: median of the per-seed ratios)")
    print("| ratio | " + " | ".join(f"seed {s}" for s in seeds) + " | median |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for name in names:
        cells = [fmt(out["ratios"][str(s)][name]) for s in seeds]
        print(f"| {name} | " + " | ".join(cells) + f" | {fmt(out['median_ratios'][name])} |")
    best = ", ".join(
        f"seed {s}: {out['ratios'][str(s)]['best single agent'] or 'n/a (needs all three rows)'}"
        for s in seeds
    )
    print(f"best single agent per seed: {best}")
    if out["rounds"]:
        print("\nfull collaboration, valid NDCG@10 per round:")
        for seed, r in out["rounds"].items():
            figures = ", ".join(f"{k}: {v:.4f}" for k, v in sorted(r["rounds"].items()))
            print(
                f"  seed {seed}: round 1 {fmt4(r['round1'])}, best later round "
                f"{r['best_later_round']} {fmt4(r['best_later'])} -> "
                f"{'beats' if r['beats'] else 'does not beat'} round 1  ({figures})"
            )
            if r.get("test_round1") is not None:
                print(
                    f"    test: round 1 (round-1-only run) {fmt4(r['test_round1'])}, served "
                    f"{fmt4(r['test_served'])}"
                )
    print("\ntargets:")
    for t in out["targets"]:
        print(f"  {t['status']:<4}  {t['target']}: {t['measured']}")
    if "cold" in out:
        cold = out["cold"]
        print(
            f"\ncold items (seed {seeds[0]}, {int(cold['cold_items'])} items withheld, "
            f"{int(cold['users'])} users), Recall@10 among cold items:"
        )
        for key in ("agents (learned text map)", "text-only baseline", "random"):
            print(f"  {key}: {cold[key]:.4f}")
    if "cold_users" in out:
        users = out["cold_users"]
        print(
            f"\ncold users (seed {seeds[0]}, {int(users['cold_users'])} users withheld, described "
            f"by text alone, e.g. {users['example']!r}), their test items over all items:"
        )
        for key in ("agents (description folded in)", "popularity", "random"):
            print(
                f"  {key}: NDCG@10 {users[key + ' ndcg@10']:.4f}, "
                f"Recall@10 {users[key + ' recall@10']:.4f}"
            )
    print("cold users with 1-3 named films: bench/coldstart.py; from a dialogue: bench/redial.py")
    if "determinism" in out:
        det = out["determinism"]
        print(
            f"\ndeterminism (recagents evaluate --model agents, two fresh homes, seed {seeds[0]}):"
        )
        if "error" in det:
            print(f"  FAIL  could not run: {det['error']}")
        else:
            for k, run in enumerate(det["runs"], 1):
                figures = ", ".join(
                    f"{r['round']}: {r['valid']['ndcg@10']:.6f}" for r in run["rounds"]
                )
                print(
                    f"  run {k}: test ndcg@10 {run['test_ndcg@10']!r}, valid ndcg@10 per round "
                    f"{figures} ({run['wall_s']} s)"
                )
            ok = det["identical_test"] and det["identical_rounds"]
            print(
                f"  {'PASS' if ok else 'FAIL'}  identical test NDCG@10: {det['identical_test']}, "
                f"identical per-round valid figures: {det['identical_rounds']}"
            )
    if "train_cost" in out:
        cost = out["train_cost"]
        print(f"\ntrain cost (recagents train, movielens-100k, fresh home, seed {seeds[0]}):")
        if "error" in cost:
            print(f"  FAIL  could not run: {cost['error']}")
        else:
            print(
                f"  {cost['time_target']}  wall {cost['train_wall_s']:.1f} s "
                f"(target <= {TRAIN_TARGET_S:g} s)"
            )
            print(
                f"  {cost['memory_target']}  peak RSS {cost['train_peak_rss_mb']:.0f} MB "
                f"(target <= {TRAIN_TARGET_MB:g} MB)"
            )
            print(
                f"  (first-use prepare before it, not counted: {cost['prepare_wall_s']:.1f} s, "
                f"{cost['prepare_peak_rss_mb']:.0f} MB)"
            )
    print(f"\npeak RSS of the benchmark process: {out['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
