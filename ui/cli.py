"""The ``recagents`` command line.

Every command accepts ``--help``. Errors the user can fix (bad files, unknown ids, bad settings)
print one line ``error: ...`` and exit with status 2; only bugs produce a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recagents.config import Settings
from recagents.env import ensure_offline
from recagents.errors import ConfigError, DataError, RecagentsError

logger = logging.getLogger("recagents.ui.cli")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(
        args.config,
        home=args.home,
        dataset=getattr(args, "dataset", None),
        seed=getattr(args, "seed", None),
        encoder=args.encoder,
        chroma_url=args.chroma_url,
        engine=getattr(args, "engine", None),
        ray_address=getattr(args, "ray_address", None),
        user_shards=getattr(args, "user_shards", None),
        item_shards=getattr(args, "item_shards", None),
        run_dir=args.run_dir,
        memory_url=args.memory_url,
    )


def _threads(settings: Settings) -> None:
    import torch

    torch.set_num_threads(settings.threads)


# -- commands -----------------------------------------------------------------------------------


def cmd_prepare(args: argparse.Namespace) -> int:
    """Load a dataset, enrich it and encode its items (cached)."""
    from recagents.data import load_dataset
    from recagents.data.texts import item_texts
    from recagents.encoder import encoder_from_settings

    settings = _settings(args)
    _threads(settings)
    dataset = load_dataset(settings.dataset, home=settings.home)
    _out(dataset.summary())
    if "enrich_rate" in dataset.info:
        _out(
            f"enriched from movies.db: {dataset.info['enriched']}/{dataset.n_items} items "
            f"({100 * float(dataset.info['enrich_rate']):.1f}%)"  # type: ignore[arg-type]
        )
    start = time.perf_counter()
    vectors = encoder_from_settings(settings).encode(item_texts(dataset), progress=True)
    _out(
        f"item text embeddings: {vectors.shape[0]} x {vectors.shape[1]} "
        f"in {time.perf_counter() - start:.1f} s (cache: {settings.cache_dir})"
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Validate CSV files and save them as a named dataset, or map a dialogue corpus."""
    if args.dialogues:
        if args.interactions or args.items or args.users:
            raise ConfigError(
                "ingest takes either --dialogues FILE or CSV files (--interactions, --items), "
                "not both"
            )
        return _ingest_dialogues(args)
    if not (args.interactions and args.items):
        raise ConfigError(
            "ingest needs --interactions and --items (CSV files), or --dialogues FILE"
        )
    if args.catalog:
        raise ConfigError("--catalog is for --dialogues (the catalog the dialogues talk about)")
    from recagents.data.ingest import (
        BadRowsError,
        parse_delimiter,
        parse_rating_range,
        read_catalog,
        save_ingested,
    )

    settings = _settings(args)
    try:
        dataset, report = read_catalog(
            Path(args.interactions),
            Path(args.items),
            Path(args.users) if args.users else None,
            delimiter=parse_delimiter(args.delimiter) if args.delimiter else None,
            rating_range=parse_rating_range(args.rating_range),
            skip_bad_rows=args.skip_bad_rows,
            name=args.name,
        )
    except BadRowsError as exc:
        sys.stderr.write(exc.report.format(max_rows=200) + "\n")
        raise
    folder = save_ingested(dataset, report, settings.home, args.name)
    _out(report.format())
    _out(f"saved dataset {args.name!r} to {folder}; use it with --dataset {args.name}")
    return 0


def _ingest_dialogues(args: argparse.Namespace) -> int:
    """Map a dialogue corpus onto a catalog with the chat's own title matcher."""
    from recagents.data import load_dataset
    from recagents.data.dialogues import read_redial, save_dialogues
    from recagents.data.ingest import BadRowsError
    from recagents.graph.understand import CatalogMatcher

    settings = _settings(args)
    catalog = args.catalog or settings.dataset
    dataset = load_dataset(catalog, home=settings.home)
    matcher = CatalogMatcher(dataset)
    try:
        corpus = read_redial(
            Path(args.dialogues),
            dataset,
            matcher.find,
            name=args.name,
            skip_bad_rows=args.skip_bad_rows,
        )
    except BadRowsError as exc:
        sys.stderr.write("\n".join(str(p) for p in exc.problems[:200]) + "\n")
        raise
    folder = save_dialogues(corpus, settings.home)
    info = corpus.info
    _out(corpus.summary())
    if info.get("dialogues_without_catalog_film"):
        _out(f"{info['dialogues_without_catalog_film']} dialogues name no film of the catalog")
    if info.get("unmapped"):
        shown = ", ".join(f"{t} ({c})" for t, c in info["unmapped"][:10])
        _out(f"most named films the catalog lacks: {shown}")
    if info.get("problems"):
        _out(f"{len(info['problems'])} bad lines dropped:")
        for problem in info["problems"][:20]:
            _out(f"  {problem['file']}:{problem['line']}: {problem['reason']}")
    _out(
        f"saved dialogues {args.name!r} to {folder}; train with "
        f"--dataset {catalog} --with-dialogues {args.name}"
    )
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    """Write RecBole's RS split as train/valid/test.tsv."""
    from recagents.data import load_dataset
    from recagents.data.splits import rs_split, save_split

    settings = _settings(args)
    dataset = load_dataset(settings.dataset, home=settings.home, enrich=False)
    split = rs_split(dataset, settings.seed)
    save_split(split, Path(args.out))
    _out(f"wrote {split.describe()} to {args.out}")
    return 0


def _load_split(args: argparse.Namespace, settings: Settings) -> Any:
    from recagents.data import load_dataset
    from recagents.data.splits import load_split, rs_split

    dataset = load_dataset(settings.dataset, home=settings.home)
    if args.split:
        return load_split(Path(args.split), dataset)
    return rs_split(dataset, settings.seed)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Train on train, select on valid, report on test (full ranking)."""
    from recagents.agents.trainer import MODELS
    from recagents.eval.experiment import fit_and_evaluate

    settings = _settings(args)
    _threads(settings)
    split = _load_split(args, settings)
    ks = sorted({int(k) for k in args.k.split(",")}) if args.k else [10]
    result = fit_and_evaluate(split, args.model, settings, ks=ks, models=MODELS)
    if args.json:
        _out(json.dumps(result))
        return 0
    _out(
        f"{result['model']} on {result['dataset']} ({result['split']['protocol']}, "
        f"seed {result['split']['seed']}): {result['users']} test users, "
        f"trained in {result['train_seconds']:.1f} s"
    )
    for key, value in result["metrics"].items():
        _out(f"  {key:<14} {value:.4f}   (valid {result['valid_metrics'][key]:.4f})")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    """Top-k for one user with the chosen model."""
    import numpy as np

    from recagents.data import load_dataset
    from recagents.eval.baselines import FitContext
    from recagents.eval.experiment import item_vectors_fn, make_model
    from recagents.eval.metrics import top_k

    settings = _settings(args)
    _threads(settings)
    dataset = load_dataset(settings.dataset, home=settings.home)
    user = dataset.user_map.index(args.user)
    if args.model == "agents":
        # Reuse the default run's checkpoints (trains it first if there are none).
        from recagents.agents.integrity import recover_run
        from recagents.agents.trainer import run_dir_for, train_agents
        from recagents.data.splits import rs_split

        recover_run(run_dir_for(settings, dataset.name))  # a damaged round: the last good one
        trained = train_agents(rs_split(dataset, settings.seed), settings, resume=True)
        return _show_recommendations(trained, args.user, args.k)
    train = dataset.matrix()
    from recagents.agents.trainer import MODELS

    model = make_model(args.model, settings, MODELS)
    model.fit(
        FitContext(
            train=train,
            item_vectors=item_vectors_fn(dataset, settings),
            seed=settings.seed,
            extras={"dataset": dataset, "settings": settings},
        )
    )
    scores = np.array(model.score(np.array([user])), dtype=np.float64)
    seen = train[user].indices
    scores[0, seen] = -np.inf
    _out(f"top {args.k} for user {args.user} ({len(seen)} rated) with {args.model}:")
    for rank, item in enumerate(top_k(scores, args.k)[0], 1):
        _out(f"  {rank:>2}. {dataset.item_title(item)}  [{dataset.items.iloc[item]['genres']}]")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Collaborative rounds on the RS split's train part, round chosen on valid."""
    from recagents.agents import registry
    from recagents.agents.trainer import train_agents
    from recagents.data import load_dataset
    from recagents.data.splits import rs_split
    from recagents.eval.metrics import evaluate_ranking

    settings = _settings(args)
    # Check options before minutes of loading and encoding.
    roles = registry.validate(r.strip() for r in args.roles.split(",")) if args.roles else None
    if args.rounds < 1 or args.patience < 1:
        raise ConfigError("--rounds and --patience must be at least 1")
    _threads(settings)
    dataset = load_dataset(settings.dataset, home=settings.home)
    if args.resume:  # a damaged round: resume from the last good one (agents.integrity)
        from recagents.agents.integrity import recover_run
        from recagents.agents.trainer import run_dir_for

        recover_run(run_dir_for(settings, dataset.name, args.run))
    split = rs_split(dataset, settings.seed)
    # None: as the run recorded (resume) or none
    dialogues, resume, run_name, warm = args.with_dialogues, args.resume, args.run, None
    if args.with_feedback:
        from recagents.agents.trainer import recorded_dialogues, run_dir_for
        from recagents.ui.server import feedback_corpora, feedback_round_source

        if args.resume:  # an incremental round: continue the served model on the grown users
            warm = feedback_round_source(split, settings, args.run, roles=roles)
            run_name = other_run(args.run)
        if dialogues is None:  # the corpora the run learned from stay
            recorded = recorded_dialogues(run_dir_for(settings, dataset.name, args.run)) or {}
            dialogues = list(recorded.get("corpora") or [])
        dialogues = feedback_corpora(settings, dataset.name, dialogues)
        _out(
            f"feedback round: training run '{run_name}' on {dataset.name} with dialogue corpora "
            f"{dialogues}" + (f", starting from run '{args.run}'" if warm is not None else "")
        )
        resume = False  # a new user table: a new run (warm-started from the served one)
    trained = train_agents(
        split,
        settings,
        roles=roles,
        user_shards=settings.user_shards,
        item_shards=settings.item_shards,
        max_rounds=args.rounds,
        patience=args.patience,
        run_name=run_name,
        resume=resume,
        dialogues=dialogues,
        dialogue_weight=args.dialogue_weight,
        warm_start=warm,
    )
    report = trained.report
    _out(f"{'round':>5}  {'valid ndcg@10':>13}  {'valid recall@10':>15}  {'seconds':>7}")
    for record in report.rounds:
        mark = "  <- chosen" if record.round == report.best_round else ""
        _out(
            f"{record.round:>5}  {record.valid['ndcg@10']:>13.4f}  "
            f"{record.valid.get('recall@10', 0.0):>15.4f}  {record.seconds:>7.1f}{mark}"
        )
    _out(f"stopped: {report.stopped}")
    if trained.dialogues:
        union = trained.dialogues
        _out(
            f"with dialogue corpora {', '.join(union['corpora'])}: {union['users']} dialogue users "
            f"({union['interactions']} films, weight {union['weight']:g}) in every round; the "
            "item agent and the ranking agent's item-item model learn which films are named "
            "together, the user agent the seekers' words and films, the ranking agent which "
            f"suggestions were accepted ({union['accepted_holdout']}); valid and test are "
            f"{dataset.name}'s own users"
        )
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    metrics = evaluate_ranking(trained.score, test, train + valid)
    _out(
        f"test ndcg@10 {metrics['ndcg@10']:.4f}, recall@10 {metrics['recall@10']:.4f} "
        f"({int(metrics['users'])} users); trained in {trained.seconds:.1f} s"
    )
    _out(f"checkpoints, metrics.json and rounds.png in {report.run_dir}")
    from recagents.ui.server import RUN_NAMES, write_serving

    if run_name in RUN_NAMES:  # a running `serve` (every replica) switches to it
        write_serving(settings, dataset.name, run_name)
        _out(f"serving pointer: run '{run_name}' (running servers load it on their next request)")
    args._trained = trained
    return 0


def other_run(run_name: str) -> str:
    """Where a feedback round on run ``run_name`` goes: the other of ``serve``'s two runs.

    ``serve`` loads whichever of ``default`` and ``ui`` finished last, so a feedback round on
    one writes the other and the next start serves it; another run name is trained in place.
    """
    from recagents.ui.server import RUN_NAMES

    if run_name in RUN_NAMES:
        return RUN_NAMES[1] if run_name == RUN_NAMES[0] else RUN_NAMES[0]
    return run_name


def clear_snapshots(settings: Settings) -> tuple[list[str], list[str]]:
    """Delete the log's snapshots (``home/dialogues/feedback-*``) that no run records.

    Returns:
        The names removed and the names kept (recorded by a run's ``metrics.json``).
    """
    import shutil

    from recagents.agents.trainer import recorded_dialogues
    from recagents.data.dialogues import dialogue_names, dialogues_dir
    from recagents.data.feedback import FEEDBACK_PREFIX

    used: set[str] = set()
    if settings.runs_dir.is_dir():
        for run_dir in settings.runs_dir.iterdir():
            used.update((recorded_dialogues(run_dir) or {}).get("corpora") or [])
    removed, kept = [], []
    for name in dialogue_names(settings.home):
        if not name.startswith(FEEDBACK_PREFIX):
            continue
        if name in used:
            kept.append(name)
        else:
            shutil.rmtree(dialogues_dir(settings.home) / name)
            removed.append(name)
    return removed, kept


def cmd_feedback(args: argparse.Namespace) -> int:
    """Export, clear or forget in the interaction log (``home/feedback/log.jsonl``)."""
    from recagents.data.feedback import FeedbackLog

    settings = _settings(args)
    log = FeedbackLog.in_home(settings.home)
    if args.action == "export":
        if args.out is None:
            result = log.read()
            for entry in result.entries:
                _out(entry.to_json())
            return 0
        count = log.export(Path(args.out))
        _out(f"exported {count} entries of {log.path} to {args.out}")
    elif args.action == "clear":
        count = log.clear()
        _out(f"cleared {log.path}: {count} entries removed")
        removed, kept = clear_snapshots(settings)
        if removed:
            _out(f"removed the log's snapshots no run uses: {', '.join(removed)}")
        if kept:
            _out(
                f"kept the snapshots runs were trained with (they need them to reload): "
                f"{', '.join(kept)}; a feedback round on an empty log drops them"
            )
    else:
        if not args.thread:
            raise ConfigError("feedback forget needs --thread ID")
        from recagents.ui.facade import open_checkpointer
        from recagents.ui.threads import CheckpointJanitor

        checkpointer = open_checkpointer("sqlite", settings)
        janitor = CheckpointJanitor(checkpointer)
        known = janitor.head(args.thread) is not None
        removed = log.forget(args.thread)  # first: if it fails, the memory is still there
        janitor.rollback(args.thread, None)
        if not known and not removed:
            raise DataError(f"unknown thread {args.thread!r}: nothing was said in it")
        _out(f"forgot thread {args.thread}: its memory and {removed} log entries")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to the recommender in the terminal (or send one message with --message)."""
    from recagents.ui.facade import Recommender

    settings = _settings(args)
    _threads(settings)
    from recagents.data import load_dataset
    from recagents.ui.preflight import check_home

    dataset = load_dataset(settings.dataset, home=settings.home)
    check_home(settings, settings.runs_dir / f"{dataset.name}-s{settings.seed}-default")
    rec = Recommender.load(settings, llm=args.llm, progress=True)
    messages = [args.message] if args.message is not None else None
    if messages is None:
        _out("recagents chat: tell me what you like ('start over' resets, Ctrl-D quits)")
    while True:
        if messages is not None:
            if not messages:
                return 0
            text = messages.pop(0)
        else:
            try:
                text = input("you> ")
            except EOFError:
                _out()
                return 0
        reply = rec.chat(text, thread_id=args.thread, user_id=args.user, k=args.k)
        _out(reply.text)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the chat UI at / and the HTTP API at /api/v1 (docs at /docs) with uvicorn."""
    from recagents.ui.server import resolve_token, serve

    resolve_token(args.host)  # refuse an exposed server without a token before loading anything
    settings = _settings(args)
    _threads(settings)
    return serve(
        settings,
        host=args.host,
        port=args.port,
        llm=args.llm,
        log_level=args.log_level,
        hosts=args.allowed_hosts,
        workers=args.workers,
    )


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: prepare the default dataset, train the agents, show recommendations."""
    rc = cmd_prepare(args)
    if rc:
        return rc
    args.roles, args.user_shards, args.patience, args.resume = None, None, 2, False
    args.item_shards = None
    args.rounds, args.run = 8, "default"
    rc = cmd_train(args)
    if rc:
        return rc
    return _show_recommendations(args._trained, args.user or "1", args.k)


def _show_recommendations(trained: Any, user_id: str, k: int) -> int:
    import numpy as np

    from recagents.eval.metrics import top_k

    context = trained.context
    dataset = context.dataset
    user = dataset.user_map.index(user_id)
    scores = np.array(trained.score(np.array([user])), dtype=np.float64)
    history = context.train[user].indices
    scores[0, history] = -np.inf
    peers = trained.coordinator.serving_peers(context.train)
    ranker = trained.coordinator.ranker
    explainer = ranker.explainer() if ranker is not None else None
    _out(f"\ntop {k} for user {user_id} ({len(history)} items in train):")
    for rank, item in enumerate(top_k(scores, k)[0], 1):
        _out(f"  {rank:>2}. {dataset.item_title(item)}  [{dataset.items.iloc[item]['genres']}]")
        if explainer is not None:
            evidence = explainer.explain(
                history, int(item), peers["user"][user], peers, float(scores[0, item])
            )
            because = ", ".join(c.title for c in evidence.because_of)
            if because:
                _out(f"      because you watched {because}")
    return 0


# -- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs).

    One long function on purpose: it is a flat table of subcommands and their options, read
    top to bottom like ``recagents --help``; splitting it would scatter that table.
    """
    parser = argparse.ArgumentParser(
        prog="recagents",
        description="Conversational recommender whose specialist agents learn together.",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="data/cache/checkpoint folder (default ~/.cache/recagents or RECAGENTS_HOME)",
    )
    parser.add_argument("--config", type=Path, help="TOML settings file ([recagents] table)")
    parser.add_argument("--encoder", help="'bundled' or a sentence-transformers model folder")
    parser.add_argument("--chroma-url", help="ChromaDB server URL (default: embedded store)")
    parser.add_argument(
        "--run-dir",
        help="folder of the runs' checkpoints and metrics (default: home/runs; on a Ray cluster "
        "a folder every node sees)",
    )
    parser.add_argument(
        "--memory-url",
        help="where chat threads live: sqlite:///abs/path or postgresql://user@host:port/db "
        "(default: home/conversations.sqlite; replicas on several machines share Postgres)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str, dataset: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        if dataset:
            p.add_argument(
                "--dataset",
                help="movielens-100k (default), movielens-small, or an "
                "ingested dataset's name or folder",
            )
            p.add_argument("--seed", type=int, help="random seed (default 2020)")
        return p

    add("prepare", cmd_prepare, "load, enrich and encode a dataset (cached)")

    p = add(
        "ingest",
        cmd_ingest,
        "validate CSV files and save them as a dataset, or map a dialogue corpus onto a catalog",
        dataset=False,
    )
    p.add_argument("--interactions", help="CSV: user_id,item_id[,rating,timestamp]")
    p.add_argument("--items", help="CSV: item_id,title[,year,genres,...text]")
    p.add_argument("--users", help="optional CSV: user_id[,attributes...]")
    p.add_argument("--dialogues", help="a dialogue corpus (ReDial JSON lines) instead of CSV files")
    p.add_argument(
        "--catalog",
        help="with --dialogues: the dataset the dialogues' films are mapped to "
        "(default: the settings' dataset)",
    )
    p.add_argument("--name", default="custom", help="dataset or corpus name (default: custom)")
    p.add_argument("--delimiter", help="field delimiter (default: detected among , tab ; |)")
    p.add_argument("--rating-range", default="0,5", help="valid ratings MIN,MAX (default 0,5)")
    p.add_argument(
        "--skip-bad-rows", action="store_true", help="drop (and list) bad rows instead of failing"
    )

    p = add("split", cmd_split, "write RecBole's RS split (8:1:1 per user) to a folder")
    p.add_argument("--out", required=True, help="folder for train/valid/test.tsv")

    p = add("evaluate", cmd_evaluate, "fit on train, report full-ranking test metrics")
    p.add_argument(
        "--model",
        default="agents",
        help="agents (default), pop, itemknn, ease, text, or an agents-* ablation",
    )
    p.add_argument("--split", help="folder with train/valid/test.tsv instead of an RS split")
    p.add_argument("--k", help="cut-offs, comma separated (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add("recommend", cmd_recommend, "top-k recommendations for one user")
    p.add_argument("--user", required=True, help="external user id")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--model", default="agents")

    p = add("train", cmd_train, "train the agents in collaborative rounds (RS split)")
    p.add_argument("--rounds", type=int, default=8, help="most rounds after round 0 (default 8)")
    p.add_argument(
        "--patience",
        type=int,
        default=2,
        help="rounds without valid improvement before stopping (default 2)",
    )
    p.add_argument(
        "--user-shards",
        type=int,
        help="user-profile replicas, each owning the users with index %% N == k (default 1)",
    )
    p.add_argument(
        "--item-shards",
        type=int,
        help="item-agent replicas, each owning the items with index %% M == k (default 1)",
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        help="where the rounds run: local (this process, default) or ray (each agent an actor "
        "on a Ray cluster; needs --chroma-url)",
    )
    p.add_argument(
        "--ray-address",
        help="with --engine ray: the cluster to join (auto, or HOST:PORT; default: start a "
        "private one on this machine)",
    )
    p.add_argument("--roles", help="comma-separated roles (default: every registered role)")
    p.add_argument("--run", default="default", help="run name (checkpoint folder)")
    p.add_argument(
        "--resume", action="store_true", help="continue the named run after its last finished round"
    )
    p.add_argument(
        "--with-dialogues",
        action="append",
        metavar="NAME",
        help="also learn from an ingested dialogue corpus (repeatable; see `ingest --dialogues`); "
        "with --resume, the run's own corpora by default",
    )
    p.add_argument(
        "--dialogue-weight",
        type=float,
        help="a dialogue user's weight next to a catalog user's (default: chosen on ReDial train)",
    )
    p.add_argument(
        "--with-feedback",
        action="store_true",
        help="a feedback round: also train on the live conversations of the interaction log "
        "(each thread a user; see `recagents feedback`)",
    )

    p = add(
        "feedback",
        cmd_feedback,
        "the interaction log of live conversations: export it, clear it, or forget one thread",
        dataset=False,
    )
    p.add_argument("action", choices=["export", "clear", "forget"])
    p.add_argument("--out", help="export: write JSON lines to this file (default: stdout)")
    p.add_argument(
        "--thread", help="forget: the thread whose memory and entries go (server stopped)"
    )

    p = add("chat", cmd_chat, "chat with the recommender in the terminal")
    p.add_argument("--user", help="a known user id (default: a new user)")
    p.add_argument("--thread", default="cli", help="conversation id (memory survives restarts)")
    p.add_argument("--llm", help="local (default), none, or an init_chat_model spec")
    p.add_argument("--message", help="send one message, print the reply and exit")
    p.add_argument("--k", type=int, default=5)

    p = add(
        "serve",
        cmd_serve,
        "serve the chat UI (/) and the HTTP API (/api/v1, docs at /docs); trains on first use",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1); any other needs RECAGENTS_API_TOKEN "
        "(32+ random characters)",
    )
    p.add_argument(
        "--allowed-hosts",
        help="comma-separated Host names to answer besides 127.0.0.1, localhost, ::1 and "
        "--host (e.g. recs.example.org); '*' answers any (behind a proxy that checks it)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--llm", help="local (default), none, or an init_chat_model spec")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (replicas) behind the one port (default 1); they share threads "
        "through --memory-url and a new run through runs/SERVING-*.json",
    )

    p = add("run", cmd_run, "main job: prepare the default dataset, train, recommend")
    p.add_argument("--user", help="user to show (default 1)")
    p.add_argument("--k", type=int, default=10)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    ensure_offline()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "urllib3", "sentence_transformers", "chromadb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except RecagentsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
