"""Round checksums and the run's fall-back, on a copy of a trained run folder (no server).

A flipped byte keeps a weights file loadable: only the checksum written with the round finds it.
Before checksums, such a round was loaded and served without a word.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from recagents.agents.integrity import recover_run, round_problem
from recagents.errors import CorruptDataError
from recagents.integrity import MANIFEST
from tests.faults.conftest import rounds, run_dir, truncate


def _flip_middle_byte(path) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_every_round_carries_checksums_sha256sum_accepts(home) -> None:  # type: ignore[no-untyped-def]
    for folder in rounds(home):
        listed = (folder / MANIFEST).read_text().split()
        assert "item.safetensors" in listed and "metrics.json" in listed
        assert round_problem(folder) is None
        if shutil.which("sha256sum"):  # the operator's own tool agrees with the server
            check = subprocess.run(
                ["sha256sum", "--check", "--quiet", MANIFEST], cwd=folder, capture_output=True
            )
            assert check.returncode == 0, check.stdout + check.stderr
    assert recover_run(run_dir(home)) == []  # a sound run is left alone


def test_a_flipped_byte_is_found_and_the_run_falls_back(home) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import load_file

    finished = rounds(home)
    target = finished[-2] / "user_profile.safetensors"
    _flip_middle_byte(target)
    load_file(str(target))  # still loads: nothing but the checksum can tell
    notes = recover_run(run_dir(home))
    assert len(notes) == 1
    assert f"{finished[-2].name}/user_profile.safetensors does not match its checksum" in notes[0]
    assert f"falling back to round {int(finished[-3].name.split('-')[1])}" in notes[0]
    # the damaged round and every later one are set aside, kept, and no longer finished rounds
    assert rounds(home) == finished[:-2]
    aside = list(run_dir(home).glob("damaged-*"))
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir()) == [
        f.name for f in finished[-2:]
    ]
    assert recover_run(run_dir(home)) == []  # and the next start finds a sound run


def test_no_good_round_left_refuses_naming_the_file(home) -> None:  # type: ignore[no-untyped-def]
    first = rounds(home)[0]
    truncate(first / "item.safetensors")
    before = sorted(p.name for p in run_dir(home).iterdir())
    with pytest.raises(CorruptDataError) as caught:
        recover_run(run_dir(home))
    message = str(caught.value)
    assert f"{first.name}/item.safetensors does not match its checksum" in message
    assert "move the run folder" in message and "restore it from a backup" in message
    assert "\n" not in message
    assert sorted(p.name for p in run_dir(home).iterdir()) == before  # nothing half done


def test_rounds_saved_before_checksums_are_checked_by_reading_them(home) -> None:  # type: ignore[no-untyped-def]
    """A run from before this change: no SHA256SUMS, no metrics copy in its rounds."""
    for folder in rounds(home):
        (folder / MANIFEST).unlink()
        (folder / "metrics.json").unlink()
    last = rounds(home)[-1]
    truncate(
        last / "ranking.safetensors"
        if (last / "ranking.safetensors").exists()
        else last / "item.safetensors"
    )
    notes = recover_run(run_dir(home))
    assert len(notes) == 1 and "cannot be read" in notes[0] and last.name in notes[0]
    # a cut metrics.json with no copy to restore it from: refused, naming the file
    metrics = run_dir(home) / "metrics.json"
    truncate(metrics)
    with pytest.raises(CorruptDataError, match=r"metrics\.json is damaged \(not valid JSON"):
        recover_run(run_dir(home))
    json.loads((rounds(home)[-1] / "item.json").read_text())  # the rounds are untouched
