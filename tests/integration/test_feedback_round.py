"""A feedback round (issue 12): the live threads of the interaction log join the rounds as users,
the served model is warm-started onto the grown user table, and what the threads taught reaches
a new person. Real encoder, real rounds, real log, on the 32-film block catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recagents.agents.trainer import train_agents
from recagents.config import Settings
from recagents.data.feedback import FeedbackLog, LogEntry, snapshot_feedback
from recagents.data.splits import rs_split
from recagents.vectorstore.memory import InMemoryStore
from tests.agent_fixtures import block_dataset


def rank_of(trained, settings, liked: list[str], item: str) -> int:  # type: ignore[no-untyped-def]
    """Where ``item`` ranks for a new person who liked ``liked`` (0 = first), as served."""
    from recagents.ui.facade import Recommender

    recs = Recommender(trained, settings, log=None).recommend(None, k=32, liked=liked)
    return [r.id for r in recs].index(item)


def ingest_blocks(folder: Path) -> Path:
    """A home holding the block catalog as the ingested dataset ``blocks`` (CLI ingest)."""
    import pandas as pd

    from recagents.ui.cli import main

    blocks = block_dataset()
    columns = ["item_id", "title", "year", "genres"]
    blocks.items.to_csv(folder / "items.csv", index=False, columns=columns)
    frame = blocks.interactions
    rows = {
        "user_id": [blocks.user_map.external(int(u)) for u in frame["user"]],
        "item_id": [blocks.item_map.external(int(i)) for i in frame["item"]],
    }
    pd.DataFrame(rows).to_csv(folder / "ratings.csv", index=False)
    home = folder / "home"
    args = ["--home", str(home), "ingest", "--name", "blocks"]
    args += ["--interactions", str(folder / "ratings.csv"), "--items", str(folder / "items.csv")]
    assert main(args) == 0
    return home


@pytest.fixture(scope="module")
def base(tmp_path_factory, torch_one_thread):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("feedback-round")
    settings = Settings.load(home=home)
    split = rs_split(block_dataset(), settings.seed)
    store = InMemoryStore()
    trained = train_agents(split, settings, max_rounds=2, patience=1, store=store, progress=False)
    return settings, split, store, trained


def test_threads_teach_a_coupling_the_catalog_lacks(base) -> None:  # type: ignore[no-untyped-def]
    settings, split, store, before = base
    # Film 1 is a Drama (block 0) and Film 20 a Horror film (block 2): no catalog user has both.
    log = FeedbackLog.in_home(settings.home)
    log.append(
        LogEntry(
            thread_id=f"t{n}",
            time=float(n),
            catalog="blocks",
            message="I loved Film 1 and Film 20",
            liked=("i1", "i20"),
        )
        for n in range(6)
    )
    snapshot = snapshot_feedback(settings.home, "blocks")
    assert snapshot is not None
    after = train_agents(
        split,
        settings,
        run_name="feedback",
        dialogues=[snapshot],
        warm_start=before,
        max_rounds=1,
        patience=1,
        store=store,
        progress=False,
    )
    assert after.dialogues is not None and after.dialogues["users"] == 6
    assert after.report.rounds[0].agents["user_profile"]["warm"] is True
    # round 0 is the served model as it scores (its ranker has trained): the bar round 1 meets
    assert after.report.rounds[0].valid["ndcg@10"] >= 0.95 * before.report.best_ndcg
    assert rank_of(after, settings, ["i1"], "i20") < rank_of(before, settings, ["i1"], "i20")
    assert rank_of(after, settings, ["i1"], "i20") < 8  # among the first films shown

    # The served home reloads the same union (the snapshot is recorded with the run).
    again = train_agents(
        split, settings, run_name="feedback", resume=True, store=store, progress=False
    )
    assert again.context.dataset.n_users == split.dataset.n_users + 6
    assert rank_of(again, settings, ["i1"], "i20") == rank_of(after, settings, ["i1"], "i20")


def test_the_warm_start_keeps_each_known_user_row(base) -> None:  # type: ignore[no-untyped-def]
    from recagents.agents.trainer import grow_states
    from recagents.data.feedback import feedback_corpus
    from recagents.data.union import dialogue_union

    settings, split, _, before = base
    corpus = feedback_corpus(
        [LogEntry("x", 1.0, "blocks", liked=("i3",)), LogEntry("y", 1.0, "blocks", liked=("i9",))],
        "blocks",
        "feedback-rows",
    )
    union, _, _ = dialogue_union(split, [corpus])
    states = grow_states(before, union.dataset)
    old = next(a for a in before.coordinator.agents if a.name == "user_profile").state()
    rows = states["user_profile"]["user_residual"]
    assert rows.shape[0] == split.dataset.n_users + 2
    np.testing.assert_array_equal(rows[: split.dataset.n_users], old["user_residual"])
    assert not rows[split.dataset.n_users :].any()
    item = next(a for a in before.coordinator.agents if a.name == "item").state()
    for key, value in item.items():
        np.testing.assert_array_equal(states["item"][key], value)


def test_a_warm_start_from_another_catalog_is_refused(base, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from recagents.agents.trainer import grow_states
    from recagents.data import build_dataset
    from recagents.errors import ConfigError

    _, _, _, before = base
    other = build_dataset(
        "other",
        pd.DataFrame({"user_id": ["u"], "item_id": ["z"]}),
        pd.DataFrame({"item_id": ["z"], "title": ["Z"]}),
    )
    with pytest.raises(ConfigError, match="other items"):
        grow_states(before, other)


def test_the_train_option_runs_a_feedback_round_and_keeps_the_threads(tmp_path: Path) -> None:
    """The Learning tab's option, through ``Service`` and the server's trainer, on an ingested
    catalog with a real SQLite checkpointer and the embedded ChromaDB."""
    from recagents.data import load_dataset
    from recagents.ui.facade import Recommender, open_checkpointer
    from recagents.ui.server import make_trainer
    from recagents.ui.service import Service

    home = ingest_blocks(tmp_path)
    settings = Settings.load(home=home, dataset="blocks")
    split = rs_split(load_dataset("blocks", home=home), settings.seed)
    base = train_agents(split, settings, max_rounds=1, patience=1, progress=False)
    rec = Recommender(base, settings, checkpointer=open_checkpointer("sqlite", settings))
    for n in range(6):
        rec.chat("I loved Film 1", thread_id=f"t{n}")
        rec.chat("I also loved Film 20", thread_id=f"t{n}")
    assert rec.state("t0")["liked"] == ["i1", "i20"]

    service: Service = Service(rec)
    service.trainer = make_trainer(settings, lambda: service.recommender, max_rounds=1, patience=1)
    assert service.start_training(with_feedback=True)
    status = service.wait_training(600)
    assert status.state == "done", status.error

    served = service.recommender
    assert served is not rec and served.engine.namespace.endswith("-ui")
    assert served.engine.trained.dialogues["users"] == 6
    assert served.engine.report.rounds[0].agents["user_profile"]["warm"] is True
    assert served.state("t0")["liked"] == ["i1", "i20"]  # thread memory survives the swap
    assert rank_of(served.engine.trained, settings, ["i1"], "i20") < rank_of(
        base, settings, ["i1"], "i20"
    )
    served.chat("more please", thread_id="t0")  # turns go on, and are logged, after the swap
    assert FeedbackLog.in_home(home).entries()[-1].message == "more please"


def test_cli_train_resume_with_feedback_continues_the_served_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from recagents.graph.engine import Engine
    from recagents.ui.cli import main
    from recagents.ui.facade import Recommender

    home = ingest_blocks(tmp_path)
    base = ["--home", str(home), "train", "--dataset", "blocks", "--rounds", "1"]
    assert main(base) == 0
    settings = Settings.load(home=home, dataset="blocks")
    rec = Recommender(Engine.load(settings, max_rounds=1), settings)
    for n in range(4):
        rec.chat("I loved Film 1", thread_id=f"t{n}")
        rec.chat("I also loved Film 20", thread_id=f"t{n}")
    capsys.readouterr()
    assert main([*base, "--resume", "--with-feedback"]) == 0
    out = capsys.readouterr().out
    assert "training run 'ui'" in out and "starting from run 'default'" in out
    metrics = json.loads(
        (settings.runs_dir / "blocks-s2020-ui" / "metrics.json").read_text(encoding="utf-8")
    )
    assert metrics["dialogues"]["users"] == 4
    assert metrics["dialogues"]["corpora"][0].startswith("feedback-")
    assert metrics["rounds"][0]["agents"]["user_profile"]["warm"] is True


def test_a_warm_round_0_scores_as_the_served_model() -> None:
    """Round 0 of a warm start keeps each agent's trained rounds, so its ranker ranks in the
    validation that later rounds must beat (a towers-only round 0 set the bar too low)."""
    from tests.agent_fixtures import block_context, block_coordinator

    served = block_coordinator(block_context(), max_rounds=1, patience=1)
    served.seed_round()
    served.train_round(1)  # one round: every agent has trained once, the ranker ranks
    assert served.ranker is not None and served.ranker.rounds_trained == 1
    warm = {a.instance: (a.state(), a.rounds_trained) for a in served.agents}
    started = block_coordinator(block_context(), warm=warm, max_rounds=1, patience=1)
    record = started.seed_round()
    assert {a.instance: a.rounds_trained for a in started.agents} == {
        a.instance: 1 for a in served.agents
    }
    assert record.valid == served.validate()
