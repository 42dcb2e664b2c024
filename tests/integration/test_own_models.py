"""Every agent ranks with a model of its own; the rounds record each one's figure (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import recagents.agents  # noqa: F401
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
