"""The Ray engine on a real two-node cluster over a real ChromaDB server (issue 13).

Data with a known answer (:func:`tests.agent_fixtures.block_context`), so the runs take seconds;
the full figures live in ``bench/scale.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recagents.agents import distributed
from recagents.agents.rounds import Coordinator
from recagents.errors import ConfigError
from recagents.vectorstore.chroma import ChromaStore
from recagents.vectorstore.schema import versions
from tests.agent_fixtures import block_context
from tests.support.registries import isolated_registry

#: Same answer, stated: every step reseeds torch from (seed, agent, round)
#: (:func:`recagents.agents.rounds.step_seed`), so both engines draw the same dropout masks; what
#: is left is float arithmetic in other processes: an agent's loss per round within 1e-5 of the
#: local engine's (relative), valid NDCG@10 per round within 1e-6.
LOSS_TOLERANCE = 1e-5
NDCG_TOLERANCE = 1e-6


def _options(run_dir: Path, namespace: str, rounds: int = 3) -> dict:
    return {
        "namespace": namespace,
        "run_dir": run_dir,
        "max_rounds": rounds,
        "patience": rounds,
        "user_shards": 2,
        "item_shards": 2,
        "progress": False,
        "registry": isolated_registry(),
    }


def test_every_agent_is_an_actor_on_both_nodes_and_matches_the_local_engine(
    ray_driver, chroma_server, tmp_path
):
    context = block_context()
    with ChromaStore(url=chroma_server) as store:
        local = Coordinator(context, store, **_options(tmp_path / "local", "eng-local")).run()
        remote = distributed.RayCoordinator(
            context, store, store_url=chroma_server, **_options(tmp_path / "ray", "eng-ray")
        )
        try:
            report = remote.run()
            placement = {p["instance"]: p for p in remote.placement}
        finally:
            remote.shutdown()
        # every role replica ran in its own process, and the actors ran on both nodes
        replicas = {f"{role}-{k}" for role in ("user_profile", "item") for k in (0, 1)}
        assert set(placement) == replicas | {"ranking"}
        assert len({p["pid"] for p in placement.values()} | {os.getpid()}) == 6
        assert len({p["node_id"] for p in placement.values()}) == 2
        # a user replica holds only its own users' interactions, an item replica its items'
        full = int(context.fit.nnz + context.holdout.nnz)
        for role in ("user_profile", "item"):
            held = [placement[f"{role}-{k}"]["interactions"] for k in (0, 1)]
            assert sum(held) == full and max(held) < full, role
        assert placement["ranking"]["interactions"] == full
        # the same answer, round by round
        assert [r.round for r in report.rounds] == [r.round for r in local.rounds] == [0, 1, 2, 3]
        for ours, theirs in zip(report.rounds, local.rounds, strict=True):
            assert abs(ours.valid["ndcg@10"] - theirs.valid["ndcg@10"]) <= NDCG_TOLERANCE
            for agent, metrics in theirs.agents.items():
                if "loss" in metrics:
                    got = ours.agents[agent]["loss"]
                    assert abs(got - metrics["loss"]) <= LOSS_TOLERANCE * abs(metrics["loss"]), (
                        agent,
                        ours.round,
                    )
        # the actors published every round and the serving version to the shared server
        assert versions(store, "eng-ray", "user") == [0, 1, 2, 3, 4]
    recorded = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert recorded["cluster"]["engine"] == "ray" and len(recorded["cluster"]["nodes"]) == 2
    assert {a["instance"] for a in recorded["cluster"]["actors"]} == set(placement)
    assert recorded["cluster"]["retried_rounds"] == []
    assert (tmp_path / "ray" / "final" / "user_profile-1.safetensors").exists()
    # nothing of the cluster listens beyond loopback
    listening = ray_driver.listening()
    assert listening, "found no listening socket of the cluster"
    assert all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for a in listening), listening


def test_an_actor_killed_mid_round_is_restarted_and_the_round_trained_again(
    ray_driver, chroma_server, tmp_path
):
    context = block_context()
    run = tmp_path / "ray"
    with ChromaStore(url=chroma_server) as store:
        remote = distributed.RayCoordinator(
            context, store, store_url=chroma_server, **_options(run, "eng-fault", rounds=4)
        )
        victim = next(p for p in remote.placement if p["instance"] == "user_profile-1")
        killed: list[float] = []

        def kill_when_round_1_is_saved() -> None:
            deadline = time.monotonic() + 120
            while not (run / "round-0001" / "DONE").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(victim["pid"], signal.SIGKILL)
            killed.append(time.monotonic())

        killer = threading.Thread(target=kill_when_round_1_is_saved, daemon=True)
        killer.start()
        try:
            report = remote.run()
            again = distributed._ray().get(remote.remote["user_profile-1"].actor.where.remote())
        finally:
            remote.shutdown()
        killer.join(timeout=5)
    assert killed, "the actor was never killed"
    assert again["pid"] != victim["pid"]  # Ray restarted it in a new process
    # the run finished, every round recorded exactly once, none lost
    assert [r.round for r in report.rounds] == [0, 1, 2, 3, 4]
    recorded = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in recorded["rounds"]] == [0, 1, 2, 3, 4]
    assert recorded["cluster"]["retried_rounds"] and min(recorded["cluster"]["retried_rounds"]) >= 2
    assert report.best_ndcg == pytest.approx(1.0)
    losses = [r.agents.get("user_profile-1", {}).get("loss", 0.0) for r in report.rounds]
    assert np.isfinite(losses).all()


def test_the_ray_engine_needs_a_chroma_server(tmp_path):
    from recagents.agents.trainer import ray_store_url
    from recagents.config import Settings

    settings = Settings.load(home=tmp_path, engine="ray")
    with pytest.raises(ConfigError, match="ChromaDB server every actor reaches"):
        ray_store_url(settings, None)
    with ChromaStore(path=tmp_path / "embedded") as embedded, pytest.raises(ConfigError):
        ray_store_url(settings, embedded)
    assert ray_store_url(settings.replace(chroma_url="http://127.0.0.1:9"), None).endswith(":9")
    with pytest.raises(ConfigError, match="engine"):
        Settings.load(home=tmp_path, engine="spark")


def test_cli_train_engine_ray_on_the_cluster_then_serves_locally(
    ray_driver, chroma_server, tmp_path, capsys
):
    """``recagents train --engine ray`` end to end: real encoder, ingested catalog, two nodes."""
    from recagents.ui.cli import main
    from tests.integration.test_train_cli import _write_catalog

    distributed._ray().shutdown()  # the CLI connects as its own driver (and disconnects)
    _write_catalog(tmp_path)
    shared = tmp_path / "shared-runs"  # the folder every node sees (--run-dir)
    home = ["--home", str(tmp_path / "home"), "--chroma-url", chroma_server]
    home += ["--run-dir", str(shared)]
    ingest = ["ingest", "--interactions", str(tmp_path / "ratings.csv"), "--items"]
    assert main([*home, *ingest, str(tmp_path / "items.csv"), "--name", "blocks"]) == 0
    train = ["train", "--dataset", "blocks", "--rounds", "2", "--patience", "2"]
    ray = ["--engine", "ray", "--ray-address", ray_driver.address, "--user-shards", "2"]
    ray += ["--item-shards", "2"]
    assert main([*home, *train, *ray]) == 0
    out = capsys.readouterr().out
    assert "<- chosen" in out and "test ndcg@10" in out
    run = shared / "blocks-s2020-default"
    assert not (tmp_path / "home" / "runs").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert (run / "final" / "item-1.safetensors").exists()  # written by that actor
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2]
    assert len({a["node_id"] for a in metrics["cluster"]["actors"]}) == 2
    assert {"item-0", "item-1"} <= {a["instance"] for a in metrics["cluster"]["actors"]}
    assert (metrics["user_shards"], metrics["item_shards"]) == (2, 2)
    # reloaded in this process (the run is finished), as serve and chat do
    recommend = ["recommend", "--dataset", "blocks", "--user", "u1", "--k", "3"]
    assert main([*home, *recommend]) == 0
    assert "Comedy" in capsys.readouterr().out


def test_a_node_gone_for_good_stops_the_run_naming_the_lost_shard(
    chroma_server, tmp_path, monkeypatch
):
    from tests.support.ray_cluster import RAY_TEST_ENV, RayCluster

    cluster = RayCluster(nodes=2).start()  # its own cluster: this one loses a node
    try:
        token = cluster.env["RAY_AUTH_TOKEN_PATH"]
        for key, value in {**RAY_TEST_ENV, "RAY_AUTH_TOKEN_PATH": token}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(distributed, "RESTART_TIMEOUT_S", 10.0)
        assert distributed.connect(cluster.address)
        deadline = time.monotonic() + 60
        while len(distributed.cluster_summary()["nodes"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        context = block_context()
        run = tmp_path / "ray"
        with ChromaStore(url=chroma_server) as store:
            remote = distributed.RayCoordinator(
                context, store, store_url=chroma_server, **_options(run, "eng-node", rounds=8)
            )
            head = next(n for n in distributed.cluster_summary()["nodes"] if n["head"])["node_id"]
            on_worker = [p["instance"] for p in remote.placement if p["node_id"] != head]
            assert on_worker

            def kill_the_worker_node() -> None:
                limit = time.monotonic() + 120
                while not (run / "round-0001" / "DONE").exists() and time.monotonic() < limit:
                    time.sleep(0.01)
                cluster.kill_node(1)

            killer = threading.Thread(target=kill_the_worker_node, daemon=True)
            killer.start()
            try:
                with pytest.raises(distributed.DistributedTrainingError) as lost:
                    remote.run()
            finally:
                killer.join(timeout=5)
                remote.shutdown()
        message = str(lost.value)
        assert any(name in message for name in on_worker), message
        # round robin puts a user and an item replica on each node: both are named
        assert re.search(r"user shard \d of 2", message), message
        assert re.search(r"item shard \d of 2", message), message
        assert "--resume" in message and str(run) in message
        # the finished rounds stay on disk for the resume
        assert (run / "round-0001" / "DONE").exists()
    finally:
        distributed._ray().shutdown()
        assert not cluster.stop()
