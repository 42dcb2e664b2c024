"""Training with dialogue corpora (``recagents train --with-dialogues``), end to end.

A small ingested catalog in four genre blocks (its users only ever pick films of one block) and
ReDial-shaped dialogues written here, in which seekers who name Drama Story 0 are always
suggested Horror Story 17: a pairing no catalog user ever made. Real encoder, real embedded
ChromaDB, real collaborative rounds, the serving engine the chat graph uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recagents.agents.trainer import train_agents
from recagents.config import Settings
from recagents.data import load_dataset
from recagents.data.dialogues import load_dialogues
from recagents.data.splits import rs_split
from recagents.data.union import dialogue_union
from recagents.errors import ConfigError, DataError
from recagents.graph.engine import Engine
from recagents.ui.cli import main
from tests.integration.test_train_cli import GENRES, _write_catalog

pytestmark = pytest.mark.slow


def _redial(conversation: int, first: int, second: int, other: int) -> dict[str, Any]:
    """The seeker names two films; the recommender suggests ``other`` and Western Story 30,
    which the seeker takes (30, the last one taken, is the ranking agent's hold-out)."""
    titles = {
        str(n): f"{GENRES[i // 8]} Story {i} ({1990 + i})"
        for n, i in ((1, first), (2, second), (3, other), (4, 30))
    }
    forms = {
        "1": {"suggested": 0, "seen": 1, "liked": 1},
        "2": {"suggested": 0, "seen": 1, "liked": 1},
        "3": {"suggested": 1, "seen": 0, "liked": 1},
        "4": {"suggested": 1, "seen": 0, "liked": 1},
    }
    return {
        "conversationId": conversation,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": titles,
        "messages": [
            {"text": "hi! I loved @1 and @2 , something like them?", "senderWorkerId": 1},
            {"text": "you should watch @3 , or @4", "senderWorkerId": 2},
            {"text": "great, thanks", "senderWorkerId": 1},
        ],
        "initiatorQuestions": forms,
        "respondentQuestions": forms,
    }


def _write_dialogues(path: Path) -> None:
    # Drama 0 goes with Horror 17 in every dialogue, next to a film of either block
    records = [_redial(100 + n, 0, 1 + n % 7, 17) for n in range(12)]
    records += [_redial(200 + n, 16 + n % 7, 0, 17) for n in range(6) if 16 + n % 7 != 17]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the catalog ``blocks`` and the corpus ``talk`` ingested onto it."""
    folder = tmp_path_factory.mktemp("dialogues")
    _write_catalog(folder)
    base = ["--home", str(folder / "home")]
    ingest = ["ingest", "--interactions", str(folder / "ratings.csv")]
    assert main([*base, *ingest, "--items", str(folder / "items.csv"), "--name", "blocks"]) == 0
    _write_dialogues(folder / "talk.jsonl")
    dialogues = ["ingest", "--dialogues", str(folder / "talk.jsonl"), "--name", "talk"]
    assert main([*base, *dialogues, "--catalog", "blocks"]) == 0
    return folder / "home"


def _settings(home: Path) -> Settings:
    return Settings.load(home=home, dataset="blocks")


def _rank(engine: Engine, liked: list[str], item: str) -> int:
    """Where the served cold profile of ``liked`` puts ``item`` (0 = first)."""
    profile = engine.profile_scores(None, liked)
    scores = profile.scores.copy()
    scores[profile.history] = -np.inf
    order = np.argsort(-scores, kind="stable")
    return int(np.flatnonzero(order == engine.dataset.item_map.index(item))[0])


def test_dialogues_train_in_the_rounds_and_change_a_cold_users_list(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--home", str(home), "train", "--dataset", "blocks", "--rounds", "2"]
    assert main([*base, "--run", "plain"]) == 0
    # 17 dialogues next to 40 catalog users: at half a user each they teach without drowning
    # the catalog (heavier, the catalog's valid NDCG picks round 0, the text seed)
    talk = ["--with-dialogues", "talk", "--dialogue-weight", "0.5"]
    assert main([*base, "--run", "talk", *talk]) == 0
    out = capsys.readouterr().out
    assert "with dialogue corpora talk: 17 dialogue users" in out

    runs = home / "runs"
    recorded = json.loads((runs / "blocks-s2020-talk" / "metrics.json").read_text())
    assert recorded["dialogues"]["corpora"] == ["talk"]
    assert recorded["dialogues"]["users"] == 17
    plain = json.loads((runs / "blocks-s2020-plain" / "metrics.json").read_text())
    assert plain.get("dialogues") is None

    settings = _settings(home)
    dataset = load_dataset("blocks", home=home)
    split = rs_split(dataset, settings.seed)
    # a served home reloads the run's own union (no corpus named): dialogue users in the rounds
    served = train_agents(split, settings, run_name="talk", resume=True, progress=False)
    assert served.dialogues is not None and served.dialogues["corpora"] == ["talk"]
    assert served.report.best_round > 0  # the rounds learned (not the text seed)
    context = served.context
    assert context.n_users == dataset.n_users + 17
    assert context.train[dataset.n_users :].sum() > 0  # the dialogue users' films
    assert set(context.weights()[dataset.n_users :]) == {0.5}  # weighed apart
    with_talk = Engine(served)
    without = Engine(train_agents(split, settings, run_name="plain", resume=True, progress=False))
    # a cold user naming Drama Story 0: the dialogues put Horror Story 17 (never picked with it
    # by a catalog user) near the top; the catalog alone keeps it behind the Drama block
    assert _rank(with_talk, ["m0"], "m17") < 3
    assert _rank(without, ["m0"], "m17") >= 7
    # more than MAX_SEEDS films: the agents alone (no cold-start blend) learned it too
    assert _rank(with_talk, ["m0", "m1", "m2", "m3"], "m17") < _rank(
        without, ["m0", "m1", "m2", "m3"], "m17"
    )

    # resuming with other corpora than recorded is refused
    with pytest.raises(ConfigError, match="trained with dialogue corpora"):
        train_agents(split, settings, run_name="talk", resume=True, dialogues=[], progress=False)


def test_the_catalogs_valid_and_test_users_are_unchanged(home: Path) -> None:
    dataset = load_dataset("blocks", home=home)
    split = rs_split(dataset, 2020)
    union, weights, info = dialogue_union(split, [load_dialogues("talk", home)], 10.0)
    assert info.users == 17 and union.dataset.n_users == dataset.n_users + 17
    assert list(union.dataset.user_map.ids)[: dataset.n_users] == list(dataset.user_map.ids)
    assert union.valid.equals(split.valid) and union.test.equals(split.test)
    assert union.train["user"].max() >= dataset.n_users  # dialogue users: train only
    valid = union.matrix("valid")
    assert valid[dataset.n_users :].nnz == 0
    assert (weights[: dataset.n_users] == 1).all() and (weights[dataset.n_users :] == 10).all()
    # the accepted suggestion is the ranking agent's hold-out for its dialogue
    flagged = union.train[union.train["holdout"]]
    assert set(flagged["item"]) == {dataset.item_map.index("m30")}
    assert len(flagged) == 17


def test_a_corpus_mapped_to_another_catalog_is_a_clear_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_catalog(tmp_path, "2")
    ingest = ["--home", str(home), "ingest", "--interactions", str(tmp_path / "ratings2.csv")]
    assert main([*ingest, "--items", str(tmp_path / "items2.csv"), "--name", "other"]) == 0
    capsys.readouterr()
    train = ["--home", str(home), "train", "--dataset", "other", "--with-dialogues", "talk"]
    assert main([*train, "--rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert "dialogue corpus 'talk' is mapped to catalog 'blocks', not 'other'" in err
    assert not (home / "runs" / "other-s2020-default" / "metrics.json").exists()
    # an unknown corpus names the ingest command
    assert main([*train[:-1], "nope", "--rounds", "1"]) == 2
    assert "recagents ingest --dialogues" in capsys.readouterr().err
    with pytest.raises(DataError, match="mapped to catalog"):
        dialogue_union(
            rs_split(load_dataset("other", home=home), 1), [load_dialogues("talk", home)]
        )


def test_the_learning_tabs_option_trains_with_the_ticked_corpora(home: Path) -> None:
    import gradio as gr

    from recagents.ui.facade import Recommender
    from recagents.ui.gradio.learning import build_learning_tab
    from recagents.ui.server import make_trainer
    from recagents.ui.service import Service

    settings = _settings(home)
    split = rs_split(load_dataset("blocks", home=home), settings.seed)
    plain = train_agents(split, settings, run_name="ui", progress=False, max_rounds=1)
    rec = Recommender(plain, settings)
    service = Service(
        rec, trainer=make_trainer(settings, lambda: service.recommender, max_rounds=1)
    )
    assert service.dialogue_options() == (["talk"], [])  # offered, not yet learned from
    with gr.Blocks():
        tab = build_learning_tab(service)
    assert tab.dialogues.visible and tab.dialogues.choices == [("talk", "talk")]
    with pytest.raises(DataError, match="unknown dialogue corpus 'nope'"):
        service.start_training(["nope"])
    assert service.training.state == "idle"  # refused before anything started

    assert tab.on_train(["talk"], progress=lambda *a, **k: None).startswith("Training finished")
    served = service.recommender.engine.trained
    assert served.dialogues is not None and served.dialogues["corpora"] == ["talk"]
    assert service.agents()["run"]["dialogues"]["users"] == 17
    assert service.dialogue_options() == (["talk"], ["talk"])
    assert "Learned from conversations:** talk" in tab.learning_outputs()[0]
