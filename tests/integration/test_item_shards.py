"""Item shards (``item_shards = M``): item replicas own ``item % M == k`` and learn as one.

The claim behind the design: a replica's loss has, on the rows it owns, the *same gradient* as
the unsharded item tower's loss (the other shards' items frozen at their merged values), so M
replicas are block-coordinate descent on one objective, not M different models. Tested here on
the gradient itself, then on whole rounds and on what a Ray actor's slice holds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recagents.agents.base import ITEM, USER
from recagents.agents.distributed import slice_context
from recagents.agents.sharding import make_replicas, merge
from recagents.agents.towers import ItemAgent, seed_user_vectors
from recagents.errors import ConfigError
from recagents.vectorstore.memory import InMemoryStore
from recagents.vectorstore.schema import collection_name
from tests.agent_fixtures import block_context, block_coordinator
from tests.support.registries import isolated_registry


def _trained_item_agent(context, **options):  # type: ignore[no-untyped-def]
    """An item agent moved off its text seed (one round), so residuals and biases are not 0."""
    agent = isolated_registry().create("item", {"epochs": 3, **options})
    agent.setup(context)
    agent.partial_fit(context, {USER: seed_user_vectors(context)})
    return agent


def _gradients(agent, context, users):  # type: ignore[no-untyped-def]
    rows, batch_loss = agent.round_loss(context, users)
    agent.model.zero_grad()
    batch_loss(torch.arange(rows)).backward()
    return {
        "residual": agent.model.residual.grad.clone(),
        "bias": agent.model.bias.grad.clone(),
    }


@pytest.mark.parametrize("shards", [2, 3])
def test_a_shard_has_the_unsharded_gradient_on_the_items_it_owns(shards):
    context = block_context()
    users = seed_user_vectors(context) + 0.1
    whole = _trained_item_agent(context)
    full = _gradients(whole, context, users)
    owned = []
    for shard in range(shards):
        replica = isolated_registry().create(
            "item", {"epochs": 3, "shard": shard, "shards": shards}
        )
        replica.load_state(context, whole.state())  # the same point in weight space
        part = _gradients(replica, context, users)
        own = replica.owned_rows(context)
        owned.extend(own.tolist())
        for name in ("residual", "bias"):
            assert torch.allclose(part[name][own], full[name][own], atol=1e-6), name
            others = np.setdiff1d(np.arange(context.n_items), own)
            assert torch.count_nonzero(part[name][others]) == 0  # frozen: no step there
    assert sorted(owned) == list(range(context.n_items))


def test_the_slice_a_ray_actor_holds_trains_exactly_as_the_whole_context():
    context = block_context()
    users = {USER: seed_user_vectors(context)}
    replicas = make_replicas(isolated_registry(), "item", {"epochs": 2}, 2)
    for replica in replicas:
        own = replica.owned_rows(context)
        sliced = slice_context(context, replica)
        # only its items' columns travel, with every user's history size
        assert sliced.valid is None
        assert sliced.dataset.interactions.empty and not context.dataset.interactions.empty
        assert sliced.dataset.item_map is context.dataset.item_map  # ids and items stay
        assert set(sliced.fit.nonzero()[1]) <= set(own.tolist())
        assert sliced.fit.nnz == context.fit[:, own].nnz
        assert sliced.fit.dtype == sliced.train.dtype == context.fit.dtype == np.float32
        assert np.array_equal(sliced.history_sizes(), context.history_sizes())
        twin = isolated_registry().create("item", dict(replica.config.options, epochs=2))
        replica.setup(sliced)
        twin.setup(context)
        a = replica.partial_fit(sliced, users)
        b = twin.partial_fit(context, users)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert np.allclose(replica.vectors(), twin.vectors(), atol=1e-6)
        assert np.allclose(replica.biases(), twin.biases(), atol=1e-6)
    # without a user publisher, an item replica seeds users from whole rows: it keeps them all
    whole = slice_context(context, replicas[0], peers_publish_users=False)
    assert whole.fit.nnz == context.fit.nnz and whole.history_size is None


def test_merged_item_replicas_hold_one_table_and_publish_every_item():
    context = block_context()
    store = InMemoryStore()
    coordinator = block_coordinator(
        context, store, namespace="is", item_shards=2, max_rounds=2, patience=2
    )
    report = coordinator.run()
    replicas = coordinator.replicas["item"]
    assert [a.instance for a in replicas] == ["item-0", "item-1"]
    assert all(isinstance(a, ItemAgent) for a in replicas)
    for other in replicas[1:]:  # the merge leaves every replica the same table
        assert np.allclose(replicas[0].vectors(), other.vectors())
        assert np.allclose(replicas[0].biases(), other.biases())
    # each round's item collection is whole: every item from its owner, with its bias
    ids, vectors, metadatas = store.get(collection_name("is", ITEM, 1))
    assert len(ids) == context.n_items and all("bias" in m for m in metadatas)
    served = coordinator.serving(context.train)[ITEM]
    assert np.array_equal(served.rows, np.arange(context.n_items))
    assert served.metadata is not None and served.metadata[5]["title"] == "Film 5"
    assert np.allclose(served.vectors, replicas[0].vectors())
    metrics = report.rounds[1].agents
    assert metrics["item-0"]["items"] + metrics["item-1"]["items"] == context.n_items
    assert report.best_ndcg >= report.rounds[0].valid["ndcg@10"]
    assert report.best_ndcg > 0.5  # the block structure is learned (the answer is known)


def test_two_item_shards_learn_what_one_item_agent_learns():
    context = block_context()
    one = block_coordinator(context, namespace="one", max_rounds=3, patience=3).run()
    two = block_coordinator(context, namespace="two", item_shards=2, max_rounds=3, patience=3)
    sharded = two.run()
    for a, b in zip(one.rounds, sharded.rounds, strict=True):
        assert abs(a.valid["ndcg@10"] - b.valid["ndcg@10"]) <= 0.05


def test_item_and_user_shards_together_and_merge_weights():
    context = block_context()
    coordinator = block_coordinator(
        context, namespace="both", user_shards=2, item_shards=2, max_rounds=1, patience=1
    )
    coordinator.run()
    assert set(coordinator.replicas) == {"user_profile", "item"}
    # an item replica counts the interactions with its own items only
    from recagents.agents.sharding import replica_weights

    weights = replica_weights(coordinator.replicas["item"], context)
    own0 = coordinator.replicas["item"][0].owned_rows(context)
    assert weights.totals[0] == pytest.approx(context.fit[:, own0].sum(), rel=1e-6)
    assert sum(weights.totals) == pytest.approx(context.fit.sum(), rel=1e-6)
    merge(coordinator.replicas["item"], context)  # merging again changes nothing
    assert np.allclose(
        coordinator.replicas["item"][0].vectors(), coordinator.replicas["item"][1].vectors()
    )


def test_item_shards_are_checked_and_recorded(tmp_path):
    context = block_context()
    with pytest.raises(ConfigError, match="item_shards must be between 1 and 32"):
        block_coordinator(context, namespace="x", item_shards=33)
    run = tmp_path / "run"
    block_coordinator(context, namespace="r", run_dir=run, item_shards=2, max_rounds=1).run()
    other = block_coordinator(context, namespace="r", run_dir=run, max_rounds=2)
    with pytest.raises(ConfigError, match="1 user shards and 2 item shards"):
        other.run(resume=True)
    again = block_coordinator(context, namespace="r", run_dir=run, item_shards=2, max_rounds=2)
    assert [r.round for r in again.run(resume=True).rounds] == [0, 1, 2]


def test_a_user_replica_holds_rows_for_its_own_users_only():
    context = block_context()
    coordinator = block_coordinator(context, namespace="u", user_shards=3, max_rounds=1)
    coordinator.run()
    replicas = coordinator.replicas["user_profile"]
    sizes = [len(a.model.user_residual) for a in replicas]
    assert sizes == [11, 11, 10] and sum(sizes) == context.n_users  # 32 users, 1/3 each
    assert [len(a.model.user_text) for a in replicas] == sizes
    moments = replicas[0].training_state()  # Adam's moments follow the parameters
    assert all(len(v) in (11, 16, 32) or v.ndim == 0 for v in moments.values())
    # a replica answers for its own users and refuses the others (it has no rows for them)
    own = replicas[1].owned_rows(context)
    sliced = slice_context(context, replicas[1])  # what its Ray actor holds: its rows, same dtype
    assert set(sliced.fit.nonzero()[0]) == set(own.tolist())
    assert sliced.fit.dtype == sliced.holdout.dtype == context.fit.dtype
    assert replicas[1].vectors().shape == (len(own), context.dim)
    with pytest.raises(ValueError, match="user_profile-1 holds rows for its own users only"):
        replicas[1].encode(np.array([0]), context.fit[[0]])
    # the served users are every replica's own, each encoded by its owner
    served = coordinator.serving(context.train)[USER]
    assert np.allclose(served.vectors[own], replicas[1].encode(own, context.train[own]))
    # a replica given the whole user table (saved before replicas held their own rows) keeps its
    whole = {**replicas[1].state(), "user_residual": np.arange(32 * 16, dtype=np.float32)}
    whole["user_residual"] = whole["user_residual"].reshape(32, 16)
    replicas[1].load_state(context, whole)
    assert np.array_equal(
        replicas[1].model.user_residual.detach().numpy(), whole["user_residual"][1::3]
    )


def test_wide_catalogs_are_computed_in_blocks_of_bounded_size(monkeypatch):
    from recagents.agents import towers

    assert towers.block_rows(1682) == 4096  # MovieLens: one block of 4,096 users, as before
    assert towers.block_rows(100_000) == 167  # 10^5 items: 64 MB blocks, not 1.6 GB
    users, vectors, bias = torch.randn(50, 8), torch.randn(30, 8), torch.randn(30)
    whole = torch.logsumexp(users @ vectors.T + bias, 1)
    context = block_context()
    agent = isolated_registry().create("user_profile")
    agent.setup(context)
    rows = np.arange(context.n_users)
    encoded = agent.encode(rows, context.fit)
    monkeypatch.setattr(towers, "ENCODE_CELLS", 30 * 7)  # 7 users a block
    assert towers.block_rows(30) == 7
    assert torch.allclose(towers._frozen_logsumexp(users, vectors, bias), whole)
    assert np.allclose(agent.encode(rows, context.fit), encoded, atol=1e-6)
