"""Collaborative rounds through real ChromaDB, checkpoints, resume, and outside roles."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest

import recagents.agents  # noqa: F401
from recagents.agents.base import ITEM, USER, Agent
from recagents.agents.registry import registry
from recagents.errors import ConfigError, ModelFitError
from recagents.eval.metrics import evaluate_ranking
from recagents.vectorstore.chroma import ChromaStore
from recagents.vectorstore.memory import InMemoryStore
from recagents.vectorstore.schema import collection_name, versions
from tests.agent_fixtures import block_context, block_coordinator
from tests.support.registries import isolated_registry


def test_rounds_publish_versions_to_chroma_and_learn_the_known_answer(tmp_path):
    context = block_context()
    with ChromaStore(path=tmp_path / "chroma") as store:
        coordinator = block_coordinator(
            context, store, namespace="blocks", run_dir=tmp_path / "run", max_rounds=3, patience=3
        )
        report = coordinator.run()
        assert [r.round for r in report.rounds] == [0, 1, 2, 3]
        # every round is a new version of each published collection, plus the final one
        assert versions(store, "blocks", USER) == [0, 1, 2, 3, 4]
        assert versions(store, "blocks", ITEM) == [0, 1, 2, 3, 4]
        # what the agents read is what the store holds: the store is their channel
        pulled = coordinator.pull(ITEM)
        ids, stored, metas = store.get(collection_name("blocks", ITEM, report.final_version))
        assert np.allclose(pulled[ITEM], stored, atol=1e-5)
        assert metas[0]["genre_drama"] is True and metas[0]["year"] == 1990
        # rounds do not degrade on data with a known answer, and beat the text seed
        ndcg = [r.valid["ndcg@10"] for r in report.rounds]
        assert report.best_ndcg >= ndcg[0]
        score = coordinator.scorer(context.train)
        result = evaluate_ranking(score, context.valid, context.train, ks=(8,))
        assert result["hit@8"] == 1.0  # the held-out item is always in the user's block


def test_checkpoints_metrics_and_plot_are_written(tmp_path):
    context = block_context()
    run = tmp_path / "run"
    block_coordinator(context, namespace="b", run_dir=run, max_rounds=2, patience=2).run()
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2]
    ndcg = [r["valid"]["ndcg@10"] for r in metrics["rounds"]]
    assert metrics["best_round"] == int(np.argmax(ndcg))  # the first round with the best NDCG
    assert metrics["best_valid_ndcg@10"] == max(ndcg)
    assert (run / "rounds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for number in (0, 1, 2):
        assert (run / f"round-{number:04d}" / "DONE").exists()
    assert (run / "final" / "ranking.safetensors").exists()


def test_resume_after_a_crash_loses_no_finished_round(tmp_path, monkeypatch):
    context = block_context()
    run = tmp_path / "run"
    store = InMemoryStore()
    calls = {"n": 0}
    original = registry.get("item").partial_fit

    def crash_in_round_3(self, ctx, peers):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return original(self, ctx, peers)

    monkeypatch.setattr(registry.get("item"), "partial_fit", crash_in_round_3)
    first = block_coordinator(context, store, namespace="b", run_dir=run, max_rounds=4, patience=4)
    with pytest.raises(RuntimeError, match="power cut"):
        first.run()
    finished = json.loads((run / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in finished] == [0, 1, 2]
    monkeypatch.setattr(registry.get("item"), "partial_fit", original)
    second = block_coordinator(context, store, namespace="b", run_dir=run, max_rounds=4, patience=4)
    report = second.run(resume=True)
    assert [r.round for r in report.rounds] == [0, 1, 2, 3, 4]
    assert [r.valid for r in report.rounds[:3]] == [r["valid"] for r in finished]


def test_resume_refuses_a_different_configuration(tmp_path):
    context = block_context()
    run = tmp_path / "run"
    block_coordinator(context, namespace="b", run_dir=run, max_rounds=1).run()
    other = block_coordinator(context, namespace="b", run_dir=run, roles=["item"], max_rounds=1)
    with pytest.raises(ConfigError, match="cannot resume"):
        other.run(resume=True)


def test_sharded_user_replicas_merge_and_cover_every_user():
    context = block_context()
    store = InMemoryStore()
    coordinator = block_coordinator(
        context, store, namespace="s", user_shards=3, max_rounds=2, patience=2
    )
    report = coordinator.run()
    replicas = coordinator.replicas["user_profile"]
    assert [a.instance for a in replicas] == ["user_profile-0", "user_profile-1", "user_profile-2"]
    owned = np.sort(np.concatenate([a.owned_rows(context) for a in replicas]))
    assert owned.tolist() == list(range(context.n_users))
    # the merge leaves one shared set of item-side weights in every replica
    for other in replicas[1:]:
        assert np.allclose(replicas[0].model.item_in.detach(), other.model.item_in.detach())
    ids, vectors, _ = store.get(collection_name("s", USER, 1))
    assert len(ids) == context.n_users
    assert report.best_ndcg >= report.rounds[0].valid["ndcg@10"]
    assert not np.allclose(vectors, store.get(collection_name("s", USER, 0), ids)[1])


def test_a_role_from_outside_the_package_joins_the_rounds(monkeypatch):
    from tests.plugins.example_role import PopularityScout

    fresh = isolated_registry(entry_points=True)

    class FakeEntryPoint:
        name = "popularity_scout"
        value = "tests.plugins.example_role:PopularityScout"

        def load(self) -> type:
            return PopularityScout

    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [FakeEntryPoint()] if group == "recagents.agents" else [],
    )
    assert "popularity_scout" in fresh.names()
    context = block_context()
    coordinator = block_coordinator(
        context, namespace="p", registry=fresh, max_rounds=2, patience=2
    )
    report = coordinator.run()
    scout = next(a for a in coordinator.agents if isinstance(a, PopularityScout))
    trained_in = [r.round for r in report.rounds if "items" in r.agents["popularity_scout"]]
    assert trained_in == [1, 2]
    assert scout.rounds_trained == report.best_round  # restored with the others to the best
    peers = report.rounds[1].agents["popularity_scout"]["peers"]
    assert peers == sorted({USER, ITEM, "item_bias"})  # read its peers from the store
    assert coordinator.report.rounds[1].agents["popularity_scout"]["items"] == context.n_items


def test_registry_errors_are_actionable():
    fresh = isolated_registry()
    with pytest.raises(ConfigError, match="unknown agent role 'critic'.*user_profile"):
        fresh.get("critic")

    class Impostor(Agent):
        name = "ranking"

    with pytest.raises(ConfigError, match="already registered"):
        fresh.register(Impostor)
    with pytest.raises(ConfigError, match="listed twice"):
        fresh.validate(["item", "item"])


def test_a_nan_loss_stops_training_with_a_clear_error():
    context = block_context()
    coordinator = block_coordinator(
        context, namespace="n", configs={"item": {"lr": 1e30}}, max_rounds=1
    )
    with pytest.raises(ModelFitError, match="'item'"):
        coordinator.run()


def test_recommend_known_and_cold_users_with_evidence():
    from recagents.agents.trainer import TrainedAgents
    from recagents.errors import UnknownEntityError

    context = block_context()
    coordinator = block_coordinator(context, namespace="r", max_rounds=2, patience=2)
    trained = TrainedAgents(coordinator, coordinator.run(), context, 0.0)

    recs = trained.recommend("u1", k=3)
    # u1 (block 0) has all of block 0 in train but i3, its valid item: that is the answer
    assert recs[0].item_id == "i3"
    top = recs[0].evidence
    assert top.because_of and all(int(c.item_id[1:]) < 8 for c in top.because_of)
    assert "genre: Drama" in top.shared_attributes
    assert {"tower", "history", "text", "popularity", "final"} <= set(top.agent_scores)

    # an unknown user takes the cold-start route from the items they like
    cold = trained.recommend("stranger", liked=["i8", "i9"], k=3)
    assert [r.item_id for r in cold] and all(8 <= int(r.item_id[1:]) < 16 for r in cold)
    assert not {"i8", "i9"} & {r.item_id for r in cold}
    assert trained.recommend("u1", k=3, exclude=["i3"])[0].item_id != "i3"
    with pytest.raises(UnknownEntityError, match="unknown item id 'nope'"):
        trained.recommend(None, liked=["nope"])


def test_an_outside_role_joins_rounds_and_conversation_through_the_registry(monkeypatch, tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver

    from recagents.agents.trainer import TrainedAgents
    from recagents.config import Settings
    from recagents.ui.facade import Recommender
    from tests.plugins.example_role import PopularityScout

    class FakeEntryPoint:
        name = "popularity_scout"

        def load(self) -> type:
            return PopularityScout

    fresh = isolated_registry(entry_points=True)
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [FakeEntryPoint()] if group == "recagents.agents" else [],
    )
    context = block_context()
    coordinator = block_coordinator(
        context, namespace="o", registry=fresh, max_rounds=1, patience=1
    )
    engine = TrainedAgents(coordinator, coordinator.run(), context, 0.0)
    rec = Recommender(engine, Settings.load(home=tmp_path), checkpointer=InMemorySaver())
    reply = rec.chat("I loved Film 9", thread_id="t", k=3)
    outputs = rec.state("t")["role_outputs"]
    assert outputs["popularity_scout"]["most_popular"] in {i.id for i in reply.items}


def test_the_diversity_role_is_registered_but_not_trained_by_default():
    from recagents.agents.rounds import DEFAULT_ROLES

    assert "diversity" in registry.names()
    assert registry.defaults()[: len(DEFAULT_ROLES)] == list(DEFAULT_ROLES)
    assert "diversity" not in registry.defaults()
    coordinator = block_coordinator(
        block_context(), namespace="dd", registry=isolated_registry("diversity")
    )
    assert coordinator.roles == list(DEFAULT_ROLES)


def _ranked(ids_and_scores: list[tuple[str, float]]) -> list[dict]:
    return [{"item_id": i, "title": i, "score": s, "evidence": {}} for i, s in ids_and_scores]


def test_diversity_separates_near_duplicates_and_keeps_the_items():
    context = block_context()
    # three near-copies of one block on top, then one film of each other block
    ranked = _ranked(
        [("i0", 1.0), ("i1", 0.95), ("i2", 0.9), ("i8", 0.5), ("i16", 0.45), ("i24", 0.4)]
    )
    agent = registry.create("diversity", {"trade_off": 0.9, "tune": False})
    agent.setup(context)
    out = agent.converse(ranked, {})
    order = [r["item_id"] for r in out["ranked"]]
    assert sorted(order) == sorted(r["item_id"] for r in ranked)  # a permutation: none lost
    assert order[0] == "i0"  # the top pick stays first
    assert {int(i[1:]) // 8 for i in order[:4]} == {0, 1, 2, 3}  # one per block first
    assert out["moved"] == sum(a != b["item_id"] for a, b in zip(order, ranked, strict=True)) > 0

    plain = registry.create("diversity", {"trade_off": 0.0, "tune": False})
    plain.setup(context)
    kept = plain.converse(ranked, {})
    assert kept["ranked"] == ranked and kept["moved"] == 0


def test_diversity_learns_its_trade_off_on_the_holdout():
    from recagents.agents.diversity import TRADE_OFFS
    from recagents.agents.towers import seed_user_vectors

    context = block_context()
    agent = registry.create("diversity", {"tolerance": 0.0})
    agent.fit(context, {USER: seed_user_vectors(context), ITEM: context.item_text})
    recall = agent.holdout_recall
    assert recall[0] > 0  # the towers' candidates find the held-out items
    chosen = int(np.flatnonzero(TRADE_OFFS == agent.trade_off)[0])
    assert recall[chosen] >= recall[0]  # no recall given up (tolerance 0)...
    assert all(recall[j] < recall[0] for j in range(chosen + 1, len(TRADE_OFFS)))  # ...the most


def test_the_shipped_diversity_role_reorders_without_losing_items(tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver

    from recagents.agents.trainer import TrainedAgents
    from recagents.config import Settings
    from recagents.ui.facade import Recommender

    context = block_context()
    coordinator = block_coordinator(
        context,
        namespace="d",
        registry=isolated_registry("diversity"),
        roles=["user_profile", "item", "ranking", "diversity"],
        configs={"diversity": {"trade_off": 0.9, "tune": False}},
        max_rounds=1,
        patience=1,
    )
    engine = TrainedAgents(coordinator, coordinator.run(), context, 0.0)
    assert coordinator.roles[-1] == "diversity"

    plain = Recommender(
        engine, Settings.load(home=tmp_path), checkpointer=InMemorySaver(), roles=[]
    )  # no conversing roles: the ranking as is
    diverse = Recommender(engine, Settings.load(home=tmp_path), checkpointer=InMemorySaver())
    a = [i.id for i in plain.chat("I loved Film 9 and Film 20", thread_id="x", k=6).items]
    b = [i.id for i in diverse.chat("I loved Film 9 and Film 20", thread_id="x", k=6).items]
    assert sorted(a) == sorted(b) and a[0] == b[0]  # the same picks, the top one first
    moved = diverse.state("x")["role_outputs"]["diversity"]["moved"]
    assert moved == sum(x != y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("with_run_dir", [False, True])
def test_the_best_round_is_what_serves_with_or_without_a_run_folder(tmp_path, with_run_dir):
    """Round 1 validates best and round 2 worse: round 1's weights must serve either way."""
    context = block_context()
    store = InMemoryStore()
    coordinator = block_coordinator(
        context,
        store,
        namespace="best",
        run_dir=tmp_path / "run" if with_run_dir else None,
        max_rounds=2,
        patience=5,
    )
    real_validate = coordinator.validate
    fake_ndcg = iter([0.5, 0.9, 0.4])

    def validate() -> dict[str, float]:
        return {**real_validate(), "ndcg@10": next(fake_ndcg)}

    coordinator.validate = validate  # type: ignore[method-assign]
    report = coordinator.run()
    assert report.best_round == 1 and report.rounds[-1].round == 2
    item = next(a for a in coordinator.agents if a.name == "item")
    _, round1, _ = store.get(collection_name("best", ITEM, 1))
    _, round2, _ = store.get(collection_name("best", ITEM, 2))
    assert not np.allclose(round1, round2, atol=1e-4)  # the rounds differ: the check can fail
    assert np.allclose(item.vectors(), round1, atol=1e-5)
    assert all(agent.rounds_trained == 1 for agent in coordinator.agents)
