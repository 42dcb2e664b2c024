"""Every agent ranks with a model of its own; the rounds record each one's figure (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import recagents.agents  # noqa: F401
from recagents.agents.base import ITEM, ITEM_BIAS, USER, USER_DECODER, peer_key
from recagents.agents.ranking import _zscore
from recagents.agents.rounds import OWN_VALID, own_validation
from recagents.errors import ConfigError
from recagents.eval.baselines import ease_weights
from recagents.eval.metrics import evaluate_ranking
from tests.agent_fixtures import block_context, block_coordinator


def _hit(score, context) -> float:  # type: ignore[no-untyped-def]
    return evaluate_ranking(score, context.valid, context.train, ks=(8,))["hit@8"]


def test_user_agent_alone_ranks_with_its_own_decoder_and_learns_it():
    context = block_context()
    coordinator = block_coordinator(context, roles=["user_profile"], max_rounds=3, patience=3)
    report = coordinator.run()
    agent = coordinator.agents[0]
    # the single-agent run ranks with the agent's own model, not its vectors against text
    assert coordinator.alone() is agent
    users = np.arange(context.n_users)
    own = agent.own_scores(users, context.train)
    np.testing.assert_allclose(coordinator.scorer(context.train)(users), own, rtol=1e-5)
    # the run recorded the figure per round: the run's own valid figure, as it ranks alone
    for record in report.rounds:
        assert record.valid["ndcg@10"] == pytest.approx(record.agents["user_profile"][OWN_VALID])
    assert _hit(coordinator.scorer(context.train), context) == 1.0
    # training moves its decoder off the text seed and lowers its loss round after round
    agent.setup(context)
    losses = [agent.partial_fit(context, {})["loss"] for _ in range(3)]
    assert losses[2] < losses[0]
    assert not np.allclose(agent.model.item_out.detach().numpy(), context.item_text, atol=1e-3)


def test_item_agent_alone_is_its_item_item_model_fitted_on_fit_then_train():
    context = block_context()
    coordinator = block_coordinator(context, roles=["item"], max_rounds=1, patience=1)
    coordinator.run()
    agent = coordinator.agents[0]
    # served on all of train (refitted before serving), fitted on fit while training
    np.testing.assert_allclose(
        agent.item_item, ease_weights(context.train, 400.0).astype(np.float32), atol=1e-5
    )
    assert agent.state()["item_item_on_train"][0] == 1
    users = np.arange(context.n_users)
    expected = np.asarray(context.train[users] @ agent.item_item)
    np.testing.assert_allclose(coordinator.scorer(context.train)(users), expected, rtol=1e-5)
    assert _hit(coordinator.scorer(context.train), context) == 1.0
    # a reload refits where it was fitted
    fresh = type(agent)()
    fresh.load_state(context, agent.state())
    np.testing.assert_allclose(fresh.item_item, agent.item_item, atol=1e-6)
    agent.setup(context)
    np.testing.assert_allclose(
        agent.item_item, ease_weights(context.fit, 400.0).astype(np.float32), atol=1e-5
    )
    assert agent.state()["item_item_on_train"][0] == 0


def test_item_item_option_is_checked_and_none_means_no_ranking_of_its_own():
    context = block_context()
    coordinator = block_coordinator(
        context, roles=["item"], configs={"item": {"item_item": "none"}}
    )
    agent = coordinator.agents[0]
    agent.setup(context)
    assert agent.own_scores(np.arange(3), context.train) is None
    assert own_validation(agent, context) is None
    assert coordinator.alone() is None  # falls back to the towers' dot product
    bad = block_coordinator(context, roles=["item"], configs={"item": {"item_item": "x"}})
    with pytest.raises(ConfigError, match="item_item must be"):
        bad.agents[0].setup(context)


def test_collaboration_records_each_agents_own_figure_every_round(tmp_path):
    context = block_context()
    run = tmp_path / "run"
    block_coordinator(context, run_dir=run, max_rounds=2, patience=2).run()
    metrics = json.loads((run / "metrics.json").read_text())
    for record in metrics["rounds"]:
        agents = record["agents"]
        assert 0.0 <= agents["user_profile"][OWN_VALID] <= 1.0
        assert 0.0 <= agents["item"][OWN_VALID] <= 1.0
        assert OWN_VALID not in agents["ranking"]  # its ranking is the run's (valid)
    # the item-item model is closed form on fit: the same figure every training round
    items = [r["agents"]["item"][OWN_VALID] for r in metrics["rounds"]]
    assert len(set(items)) == 1


def test_sharded_replicas_have_no_figure_of_their_own():
    context = block_context()
    coordinator = block_coordinator(context, user_shards=2, item_shards=2, max_rounds=1)
    report = coordinator.run()
    for record in report.rounds:
        assert all(OWN_VALID not in m for m in record.agents.values())
    assert coordinator.alone() is None


def test_an_old_user_checkpoint_without_a_decoder_still_loads():
    context = block_context()
    coordinator = block_coordinator(context, roles=["user_profile"], max_rounds=1)
    coordinator.run()
    agent = coordinator.agents[0]
    arrays = {k: v for k, v in agent.state().items() if k not in ("item_out", "item_bias")}
    fresh = type(agent)()
    fresh.load_state(context, arrays)
    np.testing.assert_allclose(fresh.model.item_out.detach().numpy(), context.item_text)
    np.testing.assert_allclose(
        fresh.model.user_residual.detach().numpy(), agent.model.user_residual.detach().numpy()
    )


def _decoder_versions(store) -> list[int]:  # type: ignore[no-untyped-def]
    from recagents.vectorstore.schema import versions

    return versions(store, "b", USER_DECODER)


def test_the_ranking_agent_fuses_the_user_agents_own_model_read_from_the_store():
    context = block_context()
    coordinator = block_coordinator(context, max_rounds=2, patience=2)
    report = coordinator.run()
    user, _, ranking = coordinator.agents
    # every round (and the serving version) carries the user agent's decoder through the store
    assert _decoder_versions(coordinator.store) == list(range(report.final_version + 1))
    pulled = coordinator.pull(USER_DECODER)
    np.testing.assert_allclose(pulled[USER_DECODER], user.model.item_out.detach().numpy())
    np.testing.assert_allclose(
        pulled[peer_key(USER_DECODER, "bias")], user.model.item_bias.detach().numpy(), atol=1e-6
    )
    # the ranking agent's user feature is the user agent's own ranking, z-scored (one more
    # round of training first: on this tiny catalog the text seed, round 0, serves)
    user.partial_fit(context, coordinator.peers_for(user))
    users = np.arange(context.n_users)
    peers = coordinator.serving_peers(context.train)
    assert ranking.decoder_feature and USER_DECODER in peers
    _, _, feature, seen = ranking._prelim(users, peers, context.train)
    expected = _zscore(user.own_scores(users, context.train), seen)
    np.testing.assert_allclose(feature, expected, rtol=1e-4, atol=1e-4)
    # its evidence names the same view: the taste-profile score is the user agent's own
    user_id, item = 0, int(np.argmax(feature[0]))
    history = context.train[user_id].indices
    evidence = ranking.explain(history, item, peers[USER][user_id], peers)
    own = peers[USER][user_id] @ peers[USER_DECODER][item]
    own += peers[peer_key(USER_DECODER, "bias")][item]
    assert evidence.agent_scores["tower"] == pytest.approx(float(own), abs=1e-3)
    # ... and not the towers' dot product
    peers_without = {k: v for k, v in peers.items() if not k.startswith(USER_DECODER)}
    tower = ranking._prelim(users, peers_without, context.train)[2]
    assert not np.allclose(feature, tower, atol=1e-2)


def test_no_decoder_travels_where_nobody_reads_it_and_replicas_publish_the_merged_one():
    context = block_context()
    towers = block_coordinator(context, roles=["user_profile", "item"], max_rounds=1)
    towers.run()
    assert _decoder_versions(towers.store) == []
    assert USER_DECODER not in towers.serving_peers(context.train)
    sharded = block_coordinator(context, user_shards=2, max_rounds=2, patience=2)
    report = sharded.run()
    assert _decoder_versions(sharded.store) == list(range(report.final_version + 1))
    first, second = sharded.replicas["user_profile"]
    merged = first.model.item_out.detach().numpy()
    np.testing.assert_array_equal(merged, second.model.item_out.detach().numpy())
    assert [c.kind for c in first.publication().companions] == [USER_DECODER]
    assert second.publication().companions == ()  # one copy, from the first replica
    np.testing.assert_allclose(sharded.pull(USER_DECODER)[USER_DECODER], merged)
    peers = sharded.serving_peers(context.train)
    ranking = sharded.agents[-1]
    users = np.arange(context.n_users)
    feature, seen = ranking._prelim(users, peers, context.train)[2:]
    expected = peers[USER][users] @ merged.T + peers[peer_key(USER_DECODER, "bias")][None, :]
    np.testing.assert_allclose(feature, _zscore(expected, seen), rtol=1e-4, atol=1e-4)


def test_models_saved_before_decoders_were_published_keep_the_towers_feature():
    context = block_context()
    coordinator = block_coordinator(context, max_rounds=1)
    coordinator.run()
    user, _, ranking = coordinator.agents
    # a ranking model saved without the flag learned on the towers' product: it keeps it
    old = {k: v for k, v in ranking.state().items() if k != "decoder_feature"}
    fresh = type(ranking)()
    fresh.load_state(context, old)
    assert not fresh.decoder_feature
    peers = coordinator.serving_peers(context.train)
    users = np.arange(context.n_users)
    feature, seen = fresh._prelim(users, peers, context.train)[2:]
    tower = peers[USER][users] @ peers[ITEM].T + peers[ITEM_BIAS][None, :]
    np.testing.assert_allclose(feature, _zscore(tower, seen), rtol=1e-4, atol=1e-4)
    reloaded = type(ranking)()
    reloaded.load_state(context, ranking.state())
    assert reloaded.decoder_feature
    # a user model saved without a decoder publishes none (the text seed is no model) until
    # it trains one
    arrays = {k: v for k, v in user.state().items() if k not in ("item_out", "item_bias")}
    old_user = type(user)()
    old_user.load_state(context, arrays)
    assert old_user.publication().companions == ()
    old_user.partial_fit(context, {})
    assert [c.kind for c in old_user.publication().companions] == [USER_DECODER]


def test_the_user_agent_alone_trains_with_its_solo_dropout():
    import torch

    from recagents.agents.base import AgentConfig
    from recagents.agents.towers import UserProfileAgent

    context = block_context()

    def trained(solo: float, torch_seed: int, peers) -> np.ndarray:  # type: ignore[no-untyped-def]
        config = UserProfileAgent.default_config()
        options = {**config.options, "solo_dropout": solo}
        agent = UserProfileAgent(AgentConfig(**{**config.__dict__, "options": options}))
        agent.setup(context)
        torch.manual_seed(torch_seed)  # what dropout draws from; the batch order has its own
        agent.partial_fit(context, peers)
        return agent.model.item_out.detach().numpy()

    assert UserProfileAgent.default_config().options["solo_dropout"] == 0.75
    # alone (no item agent publishes), solo_dropout is the dropout: at 0 nothing is drawn
    np.testing.assert_array_equal(trained(0.0, 1, {}), trained(0.0, 2, {}))
    assert not np.array_equal(trained(0.5, 1, {}), trained(0.5, 2, {}))
    # with a peer, the configured dropout (0.5) applies whatever solo_dropout says
    peers = {ITEM: context.item_text.astype(np.float32)}
    assert not np.array_equal(trained(0.0, 1, peers), trained(0.0, 2, peers))
