"""Issue 11, safe defaults: body limits, allowed hosts, strong tokens and backoff, no internals
in responses, strict types, thread ids, a truthful OpenAPI per mode. Over real HTTP."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import httpx
import pytest

from recagents.errors import ConfigError
from tests.api.conftest import TOKEN
from tests.api.server import LiveServer, block_recommender, json_error


def _raw(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one HTTP/1.1 response on ``sock`` (a timeout fails)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), json.loads(body[:length] or b"{}")


# -- 1. request bodies over the limit are refused before they are read ------------------------


def test_a_huge_declared_body_is_refused_without_reading_it(api_server):
    """200 MB announced, 10 bytes sent: the 413 comes at once (before, the server waited)."""
    sock = _raw(api_server)
    try:
        sock.sendall(
            b"POST /api/v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
            b'{"message"'
        )
        began = time.monotonic()
        status, body = _read_response(sock)
    finally:
        sock.close()
    assert status == 413, body
    assert body["error"]["type"] == "PayloadTooLarge"
    assert "262144 bytes" in body["error"]["message"] and "/api/v1/chat" in body["error"]["message"]
    assert time.monotonic() - began < 5


def test_a_chunked_body_is_cut_at_the_limit(api_server):
    """No Content-Length: the server stops reading past the cap (256 KiB for chat) and answers
    413; the client cannot push 64 MB into it (before, it read everything, then said 422)."""
    sock = _raw(api_server)
    sent = 0
    chunk = b"x" * 65536
    try:
        sock.sendall(
            b"POST /api/v1/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.settimeout(2)
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server answered and closed, or stopped reading: either way, it stopped
        sock.settimeout(10)
        status, body = _read_response(sock)
    finally:
        sock.close()
    assert status == 413, body
    assert "16384 bytes" in body["error"]["message"]
    # Socket buffers hold a few MB at most; the rest was never accepted.
    assert sent < 16 * 1024 * 1024, f"the server took {sent} bytes"


def test_the_longest_valid_message_fits_however_it_is_encoded(http):
    """20,000 emoji, JSON-escaped as ASCII (12 bytes each): valid, so not a 413."""
    body = json.dumps({"message": "🎬" * 20_000, "thread_id": "emoji-long"}, ensure_ascii=True)
    assert len(body) > 200_000
    response = http.post("/api/v1/chat", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


# -- 2. only the configured hosts -------------------------------------------------------------


def test_a_dns_rebinding_host_is_refused(api_server):
    url = api_server.url
    evil = httpx.get(f"{url}/api/v1/health", headers={"Host": "evil.example"})
    error = json_error(evil, 400)
    assert error["type"] == "InvalidHost" and "--allowed-hosts" in error["message"]
    assert (
        httpx.get(f"{url}/", headers={"Host": f"evil.example:{api_server.port}"}).status_code == 400
    )
    for host in (f"127.0.0.1:{api_server.port}", f"localhost:{api_server.port}", "[::1]"):
        assert httpx.get(f"{url}/api/v1/health", headers={"Host": host}).status_code == 200, host
    assert httpx.get(f"{url}/config").status_code == 200  # the UI from 127.0.0.1 still works


def test_serve_answers_loopback_the_bound_address_and_the_named_hosts():
    from recagents.ui.server import allowed_hosts

    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("0.0.0.0") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("192.168.1.20", "recs.example.org, *.lan")[-3:] == [
        "192.168.1.20",
        "recs.example.org",
        "*.lan",
    ]
    assert allowed_hosts("::", ["fe80::1"])[-1] == "[fe80::1]"


# -- 3. tokens: long and random, with a brake on guessing ---------------------------------------


@pytest.mark.parametrize("weak", ["s3cret", "a" * 40, "password" * 5, "ab" * 20])
def test_a_weak_token_is_refused_with_how_to_make_one(weak, tmp_path, monkeypatch, capsys):
    from recagents.ui.cli import main
    from recagents.ui.server import resolve_token

    with pytest.raises(ConfigError, match="secrets.token_urlsafe"):
        resolve_token("127.0.0.1", weak)
    monkeypatch.setenv("RECAGENTS_API_TOKEN", weak)
    assert main(["--home", str(tmp_path), "serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "secrets.token_urlsafe(32)" in err
    assert weak not in err.replace("RECAGENTS_API_TOKEN", "")
    from recagents.ui.app import create_app

    with pytest.raises(ConfigError, match="RECAGENTS_API_TOKEN"):
        create_app(block_recommender(tmp_path), auth_token=weak)


def test_a_generated_token_is_accepted():
    import secrets

    from recagents.ui.server import resolve_token

    for token in (secrets.token_urlsafe(32), secrets.token_hex(16), TOKEN):
        assert resolve_token("0.0.0.0", token) == token


def test_repeated_wrong_tokens_back_off_and_are_logged(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="recagents.ui.guard")
    from recagents.ui.app import create_app

    app = create_app(
        block_recommender(tmp_path),
        auth_token=TOKEN,
        auth_backoff={"limit": 3, "window": 60, "base": 2, "cap": 2},
    )
    good = {"Authorization": f"Bearer {TOKEN}"}
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        guesses = [f"guess-{n}-{'x' * 30}" for n in range(3)]
        for guess in guesses:
            answer = client.get("/api/v1/agents", headers={"Authorization": f"Bearer {guess}"})
            assert answer.status_code == 401
        refused = client.get("/api/v1/agents", headers=good)  # even the right token, for now
        error = json_error(refused, 429)
        assert error["type"] == "TooManyRequests" and refused.headers["retry-after"] == "2"
        assert client.get("/api/v1/health").status_code == 200  # liveness stays open
        assert (
            client.post("/login", data={"username": "recagents", "password": TOKEN}).status_code
            == 429
        )
        time.sleep(2.1)
        assert client.get("/api/v1/agents", headers=good).status_code == 200
        bad_login = client.post("/login", data={"username": "recagents", "password": "nope"})
        assert bad_login.status_code == 400  # a 4th failure in the window: refused again
        assert client.get("/api/v1/agents", headers=good).status_code == 429
    logged = [r.getMessage() for r in caplog.records if r.name == "recagents.ui.guard"]
    assert sum("wrong credentials from 127.0.0.1" in m for m in logged) == 4, logged
    assert not any(g in m or TOKEN in m for m in logged for g in guesses), logged


# -- 4. no internals in responses; strict types -------------------------------------------------


def test_agents_do_not_show_the_run_folder_path(http, monkeypatch, tmp_path):
    from tests.api.server import block_engine

    folder = tmp_path / "runs" / "blocks-s2020-default"  # where a trained run lives
    monkeypatch.setattr(block_engine().report, "run_dir", str(folder))
    run = http.get("/api/v1/agents").json()["run"]
    assert run["run_dir"] == "blocks-s2020-default"


def test_a_store_failure_is_a_503_without_its_address(tmp_path, caplog):
    """A real unreachable ChromaDB: its message names the URL; the response must not."""
    from fastapi import FastAPI

    from recagents.errors import VectorStoreError
    from recagents.ui.routes import install_error_handlers
    from recagents.vectorstore.chroma import ChromaStore

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with pytest.raises(VectorStoreError) as caught:
        ChromaStore(url=f"http://127.0.0.1:{port}")
    assert str(port) in str(caught.value)  # the server-side message does name it

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise caught.value

    with LiveServer(app) as server:
        response = httpx.get(f"{server.url}/api/v1/boom")
    error = json_error(response, 503)
    assert error["type"] == "VectorStoreError" and response.headers["retry-after"]
    assert str(port) not in response.text and "http://" not in response.text
    assert any(str(port) in r.getMessage() for r in caplog.records)  # the log keeps it


def test_the_preparing_server_does_not_show_paths_or_urls(tmp_path):
    from starlette.testclient import TestClient

    from recagents.ui.server import Preparation, preparing_app

    preparation = Preparation()
    preparation.update(0.3, f"encoding texts into {tmp_path}/cache/encoder.npz")
    with TestClient(preparing_app(preparation)) as client:
        body = client.get("/api/v1/health").json()
        assert str(tmp_path) not in json.dumps(body) and "<path>" in body["error"]["message"]
        preparation.state, preparation.error = (
            "failed",
            "cannot reach ChromaDB at http://10.9.8.7:8000",
        )
        for path in ("/api/v1/chat", "/"):
            text = client.get(path).text
            assert "10.9.8.7" not in text and str(tmp_path) not in text, path


def test_every_error_body_keeps_internals_out(http):
    answers = [
        http.post("/api/v1/chat", json={"message": ""}),
        http.post(
            "/api/v1/chat", content=b"{not json", headers={"content-type": "application/json"}
        ),
        http.post("/api/v1/feedback", json={"thread_id": "t", "item_id": "nope", "liked": True}),
        http.get("/api/v1/threads/never-used"),
        http.get("/api/v1/recommendations/u1", params={"genre": "Space Opera"}),
        http.get("/api/v1/nothing"),
        http.delete("/api/v1/chat"),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500
        assert "Traceback" not in answer.text and "/tmp/" not in answer.text, answer.text
        assert "site-packages" not in answer.text and "pytest-" not in answer.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/feedback", {"thread_id": "t", "item_id": "i1", "liked": "yes"}, "liked"),
        ("/api/v1/feedback", {"thread_id": "t", "item_id": "i1", "liked": 1}, "liked"),
        ("/api/v1/chat", {"message": "I loved Film 9", "k": True}, "k"),
        ("/api/v1/chat", {"message": "I loved Film 9", "k": "5"}, "k"),
        ("/api/v1/chat", {"message": "I loved Film 9", "k": 5.5}, "k"),
    ],
)
def test_request_types_are_strict(http, path, body, field):
    error = json_error(http.post(path, json=body), 422)
    assert field in error["message"]


def test_an_integral_number_is_an_integer_as_json_schema_says(http):
    """Strict, but not stricter than the spec: JSON Schema's integer admits 3.0."""
    body = http.post("/api/v1/chat", json={"message": "I loved Film 9", "k": 3.0}).json()
    assert len(body["items"]) == 3


# -- 5. thread ids: one rule on write and on read -----------------------------------------------


@pytest.mark.parametrize("bad", ["a/b", "a b", "x" * 129, "é", "a?b", ""])
def test_a_thread_id_that_could_not_be_read_back_is_refused_on_write(http, bad):
    chat = http.post("/api/v1/chat", json={"message": "I loved Film 9", "thread_id": bad})
    assert "thread_id" in json_error(chat, 422)["message"]
    feedback = http.post(
        "/api/v1/feedback", json={"thread_id": bad, "item_id": "i1", "liked": True}
    )
    assert "thread_id" in json_error(feedback, 422)["message"]


def test_every_valid_thread_id_reads_back(http):
    thread = "Team-A.42:chat_" + "z" * 100
    assert (
        http.post(
            "/api/v1/chat", json={"message": "I loved Film 9", "thread_id": thread}
        ).status_code
        == 200
    )
    view = http.get(f"/api/v1/threads/{thread}")
    assert view.status_code == 200 and view.json()["thread_id"] == thread
    assert json_error(http.get("/api/v1/threads/a%20b"), 422)
    assert json_error(http.get(f"/api/v1/threads/{'x' * 129}"), 422)


# -- 6. the spec tells the truth; empty filters; methods -----------------------------------------


def test_openapi_declares_security_only_with_a_token(http, auth_server):
    open_spec = http.get("/openapi.json").json()
    assert "securitySchemes" not in open_spec.get("components", {})
    for path, operations in open_spec["paths"].items():
        for method, operation in operations.items():
            assert "security" not in operation, (method, path)
            assert "401" not in operation["responses"], (method, path)
    guarded_spec = httpx.get(f"{auth_server.url}/openapi.json").json()
    assert guarded_spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    chat = guarded_spec["paths"]["/api/v1/chat"]["post"]
    assert chat["security"] == [{"HTTPBearer": []}]
    assert {"401", "413", "429"} <= set(chat["responses"])
    assert "security" not in guarded_spec["paths"]["/api/v1/health"]["get"]
    recommend = open_spec["paths"]["/api/v1/recommendations/{user_id}"]["get"]
    genre = next(p for p in recommend["parameters"] if p["name"] == "genre")
    assert genre["schema"]["items"]["enum"] == ["", "Comedy", "Drama", "Horror", "Western"]


def test_an_empty_genre_is_no_filter(http):
    plain = http.get("/api/v1/recommendations/u1", params={"k": 5}).json()
    empty = http.get(
        "/api/v1/recommendations/u1", params={"k": 5, "genre": "", "exclude_genre": ""}
    )
    assert empty.status_code == 200, empty.text
    assert [i["id"] for i in empty.json()["items"]] == [i["id"] for i in plain["items"]]


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/health", "/api/v1/nothing", "/"])
def test_trace_is_405(http, path):
    error = json_error(http.request("TRACE", path), 405)
    assert error["type"] == "MethodNotAllowed"


def test_unsupported_methods_on_api_routes_are_405(http):
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        answer = http.request(method, "/api/v1/chat")
        assert "POST" in json_error(answer, 405)["message"], method
        assert answer.headers["allow"] == "POST"


def _memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def _push(port: int, size: int) -> tuple[int | None, int]:
    """Send a ``size``-byte chat body until the server stops taking it; (status, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.sendall(
            b"POST /api/v1/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
        )
        block = b" " * (1 << 20)
        try:
            while sent < size:
                sock.sendall(block)
                sent += len(block)
        except OSError:
            pass  # refused and closed: the point
        try:
            status, _ = _read_response(sock)
        except (OSError, AssertionError, ValueError):
            status = None
        return status, sent
    finally:
        sock.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_five_concurrent_200_mb_bodies_do_not_grow_the_server(tmp_path):
    """The issue's case, on a server in its own process: five 200 MB bodies at once took its
    RSS from 0.76 to 2.2 GB before the 422. Now each is refused with 413 before it is read, the
    connections close, and the server's peak memory barely moves."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys\nfrom pathlib import Path\nfrom tests.api.server import block_server\n"
        f"with block_server(Path({str(tmp_path)!r})) as server:\n"
        "    print(server.port, flush=True)\n    sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        httpx.post(f"http://127.0.0.1:{port}/api/v1/chat", json={"message": "hi"}, timeout=120)
        before = _memory_mb(process.pid, "VmHWM")
        with ThreadPoolExecutor(5) as pool:
            results = list(pool.map(lambda _: _push(port, 200_000_000), range(5)))
        after = _memory_mb(process.pid, "VmHWM")
        print(f"server peak RSS {before:.0f} MB -> {after:.0f} MB; sent {results}")
        assert [status for status, _ in results] == [413] * 5, results
        assert max(sent for _, sent in results) < 32_000_000, results  # never read, not taken
        assert after - before < 64, f"peak RSS grew {after - before:.0f} MB ({before:.0f} MB)"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()  # this test's own child, by its handle
            process.wait(10)
