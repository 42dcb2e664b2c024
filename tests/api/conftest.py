"""A live server (uvicorn on a free 127.0.0.1 port) around the fast block-catalog recommender."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.server import LiveServer, block_server

TOKEN = "test-token-4f9a-Qx7LmZp2Rk8VwYc3Hn6JsBd5"  # 32+ random-looking characters


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Loopback server without a token (what ``recagents serve`` runs by default)."""
    with block_server(tmp_path_factory.mktemp("api-home")) as server:
        yield server


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server as ``--host`` exposes it: API token and UI login required."""
    with block_server(tmp_path_factory.mktemp("auth-home"), auth_token=TOKEN) as server:
        yield server


@pytest.fixture
def http(api_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client on the open server."""
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        yield client
