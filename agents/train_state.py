"""What a round checkpoint needs beyond the weights so a resumed run continues *exactly*.

Weights alone are not enough: Adam's moment estimates carry from one round into the next, and
dropout draws from the process-wide random generators, whose position depends on everything
drawn before. A run killed in round 2 and resumed from round 1's weights with a fresh optimiser
and re-seeded generators drifts from the run that was never interrupted (0.258451 vs 0.259336
valid NDCG@10 on ML-100K). So each round folder also keeps:

- ``<instance>.optim.safetensors``: each agent's optimiser state (:meth:`Agent.training_state`);
- ``rng.safetensors`` + ``rng.json``: torch's, numpy's and Python's global random states.

The towers' batch-order generators need nothing saved: they are re-seeded from the round number
at the start of every round. Everything is arrays plus JSON (never pickle), like the weights.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recagents.agents.base import Agent
from recagents.integrity import MANIFEST

logger = logging.getLogger(__name__)

RNG_ARRAYS = "rng.safetensors"
RNG_JSON = "rng.json"


def _optim_file(folder: Path, agent: Agent) -> Path:
    return folder / f"{agent.instance}.optim.safetensors"


# -- optimisers -------------------------------------------------------------------------------


def optimizer_arrays(optimizer: torch.optim.Optimizer) -> dict[str, np.ndarray]:
    """An optimiser's per-parameter state as flat named arrays: ``state.<param>.<key>``.

    The hyper-parameters (``param_groups``) are left out: they come from the agent's config,
    which is saved beside the weights, and the rebuilt optimiser already carries them.
    """
    arrays: dict[str, np.ndarray] = {}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            arrays[f"state.{index}.{key}"] = tensor.detach().cpu().numpy().copy()
    return arrays


def load_optimizer_arrays(
    optimizer: torch.optim.Optimizer, arrays: Mapping[str, np.ndarray]
) -> None:
    """Put :func:`optimizer_arrays`' state back into a freshly built optimiser."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in arrays.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = torch.from_numpy(np.array(value))
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


# -- global random generators -----------------------------------------------------------------


def rng_state() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """torch's, numpy's (legacy global) and Python's random states: (arrays, JSON)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    version, internal, gauss_next = random.getstate()
    arrays = {
        "torch": torch.get_rng_state().numpy().copy(),
        "numpy_keys": np.asarray(keys, dtype=np.uint32),
    }
    meta = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": cached},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    return arrays, meta


def set_rng_state(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(torch.from_numpy(np.array(arrays["torch"], dtype=np.uint8)))
    n = meta["numpy"]
    np.random.set_state(
        (n["kind"], np.array(arrays["numpy_keys"]), n["pos"], n["has_gauss"], n["cached"])
    )
    p = meta["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


# -- in a round folder ------------------------------------------------------------------------


def save_training_state(folder: Path, agents: Sequence[Agent]) -> None:
    """Write every agent's optimiser state and the random states into a round folder."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for agent in agents:
        arrays = agent.training_state()
        if arrays:
            save_file(
                {k: np.ascontiguousarray(v) for k, v in arrays.items()},
                str(_optim_file(folder, agent)),
            )
    arrays, meta = rng_state()
    save_file(arrays, str(folder / RNG_ARRAYS))
    (folder / RNG_JSON).write_text(json.dumps(meta), encoding="utf-8")


def load_training_state(folder: Path, agents: Sequence[Agent]) -> bool:
    """Restore optimiser and random states saved by :func:`save_training_state`.

    Call it after the agents' weights are loaded (loading rebuilds optimisers and re-seeds).

    Returns:
        ``True`` when the round had them; ``False`` for a round saved before they were kept
        (the run then resumes from the weights alone, which is close but not exact).
    """
    from safetensors.numpy import load_file

    if not (folder / RNG_ARRAYS).exists():
        logger.warning(
            "%s has no optimiser or random state (saved by an older version): the resumed "
            "rounds will not repeat an uninterrupted run exactly",
            folder,
        )
        return False
    for agent in agents:
        path = _optim_file(folder, agent)
        if path.exists():
            agent.load_training_state(load_file(str(path)))
    meta = json.loads((folder / RNG_JSON).read_text(encoding="utf-8"))
    set_rng_state(load_file(str(folder / RNG_ARRAYS)), meta)
    return True


def drop_training_state(folder: Path) -> None:
    """Delete a round's optimiser and random states once a later round is saved and recorded.

    Only the last round is ever resumed from, and the optimiser state is larger than the
    weights (Adam keeps two moments per weight): keeping it for every round would more than
    double a run's size on disk for nothing.
    """
    dropped = [*folder.glob("*.optim.safetensors"), folder / RNG_ARRAYS, folder / RNG_JSON]
    for path in dropped:
        path.unlink(missing_ok=True)
    manifest = folder / MANIFEST
    if manifest.exists():  # the round's checksums must not list the files just removed
        names = {path.name for path in dropped}
        kept = [
            line
            for line in manifest.read_text(encoding="utf-8").splitlines()
            if line.strip() and line.partition("  ")[2] not in names
        ]
        draft = manifest.with_name(f"{MANIFEST}.tmp")
        draft.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        draft.replace(manifest)  # atomic: a crash here leaves the old or the new list whole


__all__ = [
    "drop_training_state",
    "load_optimizer_arrays",
    "load_training_state",
    "optimizer_arrays",
    "rng_state",
    "save_training_state",
    "set_rng_state",
]
