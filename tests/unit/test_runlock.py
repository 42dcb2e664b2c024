"""The run lock: a second holder is refused with the first one named; a dead holder's is taken."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from recagents.agents.runlock import RunLockedError, run_lock


def test_a_second_holder_is_refused_naming_the_first_and_the_lock_file(tmp_path: Path) -> None:
    lock = tmp_path / "runs" / "x.lock"
    with run_lock(lock, "x"):
        holder = json.loads(lock.read_text())
        with pytest.raises(RunLockedError) as info, run_lock(lock, "x"):
            pass
        message = str(info.value)
        assert f"pid {holder['pid']}" in message and holder["since"] in message
        assert str(lock) in message and "\n" not in message
    assert lock.read_text() == ""
    with run_lock(lock, "x"):  # released: free again
        pass


def test_the_lock_of_a_dead_holder_is_taken_over_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = tmp_path / "x.lock"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from recagents.agents.runlock import run_lock\n"
        "with run_lock(Path(sys.argv[1]), 'x'):\n"
        "    os._exit(9)  # dies holding it, without clearing its details\n"
    )
    dead = subprocess.run([sys.executable, "-c", code, str(lock)], check=False)
    assert dead.returncode == 9
    pid = json.loads(lock.read_text())["pid"]
    with caplog.at_level(logging.WARNING), run_lock(lock, "x"):
        pass
    assert f"pid {pid}" in caplog.text and "took over" in caplog.text
