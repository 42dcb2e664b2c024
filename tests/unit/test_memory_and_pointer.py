"""Memory URLs, the cross-process thread lock and the version pointer (issue 13), one process.

The replicas themselves are tested with real server processes in
``tests/integration/test_replicas.py``; this covers the pieces' edges quickly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recagents.config import Settings
from recagents.errors import ConfigError
from recagents.ui.memory import FileThreadLocks, MemorySpec, open_memory, redact_url
from recagents.ui.server import latest_run, read_serving, serving_pointer, write_serving


def test_memory_urls(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path)
    assert MemorySpec.parse("", settings) == MemorySpec(
        "sqlite", str(tmp_path / "conversations.sqlite")
    )
    for url in ("sqlite:///srv/c.sqlite", "sqlite:////srv/c.sqlite"):
        assert MemorySpec.parse(url, settings) == MemorySpec("sqlite", "/srv/c.sqlite")
    url = "postgresql://u:pw@db.internal:5432/recs"
    assert MemorySpec.parse(url, settings).kind == "postgres"
    assert redact_url(url) == "postgresql://u:***@db.internal:5432/recs"
    for bad, says in [
        ("mysql://x", "unknown kind of memory"),
        ("sqlite://rel.db", "absolute file path"),
        ("postgresql:///db", "names no host"),
    ]:
        with pytest.raises(ConfigError, match=says):
            MemorySpec.parse(bad, settings)


def test_settings_memory_url_is_the_default_of_open_memory(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "threads.sqlite"
    memory = open_memory(None, Settings.load(home=tmp_path, memory_url=f"sqlite://{target}"))
    assert memory.spec.target == str(target) and target.exists()
    assert (tmp_path / "elsewhere" / "threads.sqlite.locks").is_dir()


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    locks = FileThreadLocks(tmp_path / "locks")
    path = locks.path("thread-1")
    assert path == locks.path("thread-1") and path.parent == tmp_path / "locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        began = time.monotonic()
        with locks.hold("thread-1"):
            waited = time.monotonic() - began
        assert waited > 0.8, f"took the lock another process held after {waited:.2f} s"
    finally:
        holder.wait(10)


def test_pointer_names_the_served_run(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path)
    for run in ("default", "ui"):
        folder = settings.runs_dir / f"blocks-s{settings.seed}-{run}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text("{}")
    # without a pointer: the run finished last
    assert latest_run(settings, "blocks") == "ui"
    record = write_serving(settings, "blocks", "default")
    assert read_serving(settings, "blocks") == record
    assert json.loads(serving_pointer(settings, "blocks").read_text())["run"] == "default"
    assert latest_run(settings, "blocks") == "default"
    # a pointer to a run that never finished is ignored
    write_serving(settings, "blocks", "other")
    assert latest_run(settings, "blocks") == "ui"
    assert not list(settings.runs_dir.glob(".SERVING*"))  # no temporary left behind
