"""``recagents serve``'s guards: loopback by default, a token when exposed, clear port errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recagents.config import Settings
from recagents.errors import ConfigError
from recagents.ui.cli import main
from recagents.ui.server import _RoundProgress, bind, is_loopback, latest_run, resolve_token


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_exposed_server_needs_a_token(monkeypatch):
    assert resolve_token("127.0.0.1") is None
    with pytest.raises(ConfigError, match="set RECAGENTS_API_TOKEN"):
        resolve_token("0.0.0.0")
    secret = "s3cret-Qx7LmZp2Rk8VwYc3Hn6JsBd5Ge1Uo"  # 32+ random-looking characters
    monkeypatch.setenv("RECAGENTS_API_TOKEN", f" {secret} ")
    assert resolve_token("0.0.0.0") == secret
    assert resolve_token("127.0.0.1") == secret  # a token given is enforced on loopback too
    explicit = "explicit-Wm3Kq8Zr5Tx2Vb9Nc4Lp6Hd7Fa0"
    assert resolve_token("0.0.0.0", explicit) == explicit


def test_cli_refuses_to_expose_without_token_before_loading(tmp_path, capsys):
    began = time.monotonic()
    assert main(["--home", str(tmp_path), "serve", "--host", "0.0.0.0"]) == 2
    assert "RECAGENTS_API_TOKEN" in capsys.readouterr().err
    assert time.monotonic() - began < 5  # nothing was loaded or trained
    assert not (tmp_path / "runs").exists()


def test_busy_or_bad_port_is_a_clear_error():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
    with pytest.raises(ConfigError, match="between 1 and 65535"):
        bind("127.0.0.1", 0)


def test_serve_loads_the_run_that_finished_last(tmp_path):
    settings = Settings.load(home=tmp_path)
    assert latest_run(settings, "ml") == "default"
    for name, age in (("default", 100), ("ui", 10)):
        folder = settings.runs_dir / f"ml-s{settings.seed}-{name}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text("{}")
        os.utime(folder / "metrics.json", (time.time() - age, time.time() - age))
    assert latest_run(settings, "ml") == "ui"


def test_round_log_lines_become_progress():
    seen: list[tuple[float, str]] = []
    handler = _RoundProgress(lambda f, m: seen.append((f, m)), max_rounds=3)
    import logging

    for text in ("round 0: valid ndcg@10 0.1", "round 2: valid ndcg@10 0.3", "other"):
        handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None))
    assert [round(f, 2) for f, _ in seen] == [0.15, 0.55]


def test_importing_the_package_does_not_import_gradio():
    code = (
        "import sys, recagents, recagents.ui, recagents.ui.formatting, recagents.ui.service, "
        "recagents.ui.server, recagents.ui.cli; "
        "assert 'gradio' not in sys.modules and 'fastapi' not in sys.modules, 'heavy import'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=120)


def test_the_app_imports_pyplot_before_gradio_events_race_to(tmp_path):
    """Two first Gradio events at once used to import pyplot in two threads; one failed."""
    code = f"""
import sys, threading
from tests.api.server import block_recommender
from recagents.ui.app import create_app
create_app(block_recommender({str(tmp_path)!r}))
assert "matplotlib.pyplot" in sys.modules, "pyplot is left to the first events"
from gradio.utils import MatplotlibBackendMananger
errors = []
def event():
    try:
        with MatplotlibBackendMananger():
            pass
    except Exception as exc:
        errors.append(exc)
threads = [threading.Thread(target=event) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
"""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, timeout=240, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
