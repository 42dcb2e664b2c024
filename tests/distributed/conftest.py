"""A real two-node Ray cluster and a real ChromaDB server, started here and stopped by PID."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.contract.conftest import chroma_server  # noqa: F401  (the session's server)
from tests.support.ray_cluster import RAY_TEST_ENV, RayCluster


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """Two Ray nodes of one CPU each on 127.0.0.1 (see tests.support.ray_cluster)."""
    cluster = RayCluster(nodes=2)
    try:
        yield cluster.start()
    finally:
        left = cluster.stop()
        assert not left, f"Ray processes still running after stop: {left}"


@pytest.fixture
def ray_driver(ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[RayCluster]:
    """This process connected to the cluster as its driver; disconnected afterwards."""
    from recagents.agents import distributed

    for key, value in {
        **RAY_TEST_ENV,
        "RAY_AUTH_TOKEN_PATH": ray_cluster.env["RAY_AUTH_TOKEN_PATH"],
    }.items():
        monkeypatch.setenv(key, value)
    assert distributed.connect(ray_cluster.address)
    deadline = time.monotonic() + 60
    while len(distributed.cluster_summary()["nodes"]) < ray_cluster.nodes:
        assert time.monotonic() < deadline, "the second Ray node never joined"
        time.sleep(0.2)
    try:
        yield ray_cluster
    finally:
        distributed._ray().shutdown()
