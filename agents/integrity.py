"""A run folder checked before it is loaded: damaged rounds set aside, the last good one kept.

:class:`~recagents.agents.checkpoints.RunFolder` resumes from the last finished round and
restores the best one. A truncated weights file there used to surface as a safetensors error
naming no file, a cut ``metrics.json`` as a ``JSONDecodeError``, both after the catalog had
loaded. :func:`recover_run` checks the folder first: every finished round against its
``SHA256SUMS`` (rounds saved before checksums existed: their files must parse), and
``metrics.json``. The rounds from the first damaged one on are moved into ``damaged-<time>/``
(kept, not deleted), a damaged ``metrics.json`` is replaced by the copy the last good round holds,
and the run resumes from that round, which is what an interrupted run does anyway. When no good
round is left, :class:`~recagents.errors.CorruptDataError` says which file and what to do.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from recagents.errors import CorruptDataError
from recagents.integrity import json_problem, manifest_problem, move_aside

logger = logging.getLogger(__name__)


def _finished_rounds(run_dir: Path) -> list[tuple[int, Path]]:
    """``(number, folder)`` of every round saved completely (with ``DONE``), ascending."""
    rounds = []
    for path in run_dir.glob("round-*"):
        number = path.name.split("-", 1)[1]
        if number.isdigit() and (path / "DONE").exists():
            rounds.append((int(number), path))
    return sorted(rounds)


def round_problem(folder: Path) -> str | None:
    """What is wrong with one round folder, naming the file; ``None`` when it is sound.

    With a ``SHA256SUMS`` every listed file must match it. Without one (a round saved before
    checksums were written) every weights file must open and every JSON file parse, which finds
    truncation though not a flipped byte.
    """
    if (folder / "SHA256SUMS").exists():
        problem = manifest_problem(folder)
        return f"{folder.name}/{problem}" if problem else None
    from safetensors.numpy import load_file

    for path in sorted(folder.glob("*.safetensors")):
        try:
            load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own (Rust) error types
            return f"{folder.name}/{path.name} cannot be read ({' '.join(str(exc).split())})"
    for path in sorted(folder.glob("*.json")):
        problem = json_problem(path)
        if problem:
            return f"{folder.name}/{path.name} is damaged ({problem})"
    return None


def recover_run(run_dir: Path) -> list[str]:
    """Check a run folder and fall back to its last good round; what was done, one line each.

    Does nothing to a sound folder (or one that does not exist yet). Otherwise the rounds from
    the first damaged one on move into ``damaged-<UTC time>/`` and a damaged ``metrics.json`` is
    replaced by the last good round's copy, so the loader sees an interrupted run and resumes it.

    Raises:
        CorruptDataError: ``metrics.json`` or round 0 is damaged and there is no good round to
            fall back to; the message names the file and the fix.
    """
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        return []
    metrics_problem = json_problem(metrics)
    rounds = _finished_rounds(run_dir)
    good: list[tuple[int, Path]] = []
    bad_reason = None
    for number, folder in rounds:
        bad_reason = round_problem(folder)
        if bad_reason is not None:
            break
        good.append((number, folder))
    damaged = rounds[len(good) :]
    if metrics_problem is None and not damaged:
        return []
    what = (
        f"{run_dir.name}/metrics.json is damaged ({metrics_problem})"
        if metrics_problem
        else f"{run_dir.name}/{bad_reason}"
    )
    fallback = good[-1] if good else None
    # a damaged metrics.json is replaced by the report as of the last good round, which rounds
    # saved before that copy existed do not hold
    if fallback is None or (metrics_problem and not (fallback[1] / "metrics.json").exists()):
        raise CorruptDataError(
            f"{what} and no earlier round can replace it: move the run folder {run_dir} aside "
            "to train the run again, or restore it from a backup"
        )
    notes = []
    if damaged:
        aside = run_dir / f"damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        aside.mkdir(exist_ok=True)
        for _, folder in damaged:
            shutil.move(str(folder), str(aside / folder.name))
        moved = ", ".join(folder.name for _, folder in damaged)
        notes.append(
            f"{what}: falling back to round {fallback[0]}, the last good round ({moved} moved "
            f"to {aside.name}/); training resumes from there"
        )
    if metrics_problem is not None:
        move_aside(metrics)
        shutil.copyfile(fallback[1] / "metrics.json", metrics)
        notes.append(
            f"{what}: restored it from round {fallback[0]}, the last good round (the damaged "
            "file is kept next to it)"
        )
    for note in notes:
        logger.warning("%s", note)
    return notes


def report_rounds(run_dir: Path) -> list[int]:
    """The round numbers ``metrics.json`` records (for tests and the start-up log)."""
    data = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return [int(r["round"]) for r in data.get("rounds", [])]


__all__ = ["recover_run", "report_rounds", "round_problem"]
