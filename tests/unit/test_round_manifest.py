"""A round's checksums stay true after its optimiser and random states are dropped (issue 11).

Each round folder gets ``SHA256SUMS`` (start-up checks) and, while it is the last round, the
states an exact resume needs; once a later round is saved those states are deleted. Before the
two were merged, the checksums still listed the deleted files, so every earlier round would
have read as damaged at the next start.
"""

from __future__ import annotations

from pathlib import Path

from recagents.agents.train_state import RNG_ARRAYS, RNG_JSON, drop_training_state
from recagents.integrity import MANIFEST, manifest_problem, write_manifest


def test_dropping_training_state_keeps_the_round_verifiable(tmp_path: Path) -> None:
    folder = tmp_path / "round-0001"
    folder.mkdir()
    (folder / "user.safetensors").write_bytes(b"weights")
    (folder / "user.optim.safetensors").write_bytes(b"adam moments")
    (folder / RNG_ARRAYS).write_bytes(b"rng")
    (folder / RNG_JSON).write_text("{}")
    write_manifest(folder)
    assert manifest_problem(folder) is None
    drop_training_state(folder)
    assert not (folder / "user.optim.safetensors").exists()
    assert manifest_problem(folder) is None
    listed = (folder / MANIFEST).read_text().split()
    assert "user.safetensors" in listed and "user.optim.safetensors" not in listed
    (folder / "user.safetensors").write_bytes(b"weightz")  # still checked after the rewrite
    assert manifest_problem(folder) is not None
