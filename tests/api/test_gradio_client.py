"""``gradio_client`` drives the mounted Gradio app's ``/chat`` endpoint."""

from __future__ import annotations

import pytest
from gradio_client import Client

from tests.api.conftest import TOKEN
from tests.api.server import block_of

# Gradio's queue calls a pandas option that pandas 3 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def test_gradio_client_chats_with_memory(api_server):
    client = Client(api_server.url, verbose=False, download_files=False)
    first = client.predict("I loved Film 9", "gc-thread", "", api_name="/chat")
    assert first["thread_id"] == "gc-thread"
    assert [block_of(i["id"]) for i in first["items"]] == [1] * 5
    second = client.predict("more please", "gc-thread", "", api_name="/chat")
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


def test_gradio_client_gets_a_readable_error(api_server):
    client = Client(api_server.url, verbose=False, download_files=False)
    with pytest.raises(Exception, match="Please type a message"):
        client.predict("   ", "gc-empty", "", api_name="/chat")


def test_gradio_client_logs_in_on_an_exposed_server(auth_server):
    with pytest.raises(Exception):  # noqa: B017  (gradio_client raises its own error types)
        Client(auth_server.url, verbose=False, download_files=False)
    client = Client(auth_server.url, auth=("recagents", TOKEN), verbose=False, download_files=False)
    reply = client.predict("I loved Film 25", "", "", api_name="/chat")
    assert reply["thread_id"].startswith("ui-") and block_of(reply["items"][0]["id"]) == 3
