"""Checkpoint and model folders of a run: atomic saves, the newest complete checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHECKPOINT_PREFIX = "step_"
CHECKPOINT_FIX = ("delete that checkpoint folder to resume from the one before it, or start "
                  "a new run")
"""The fix named when a checkpoint's model or statistics cannot be loaded."""


def read_state(folder: Path) -> dict[str, Any]:
    """The ``state.json`` of a checkpoint folder (a clear error naming a corrupt file).

    Args:
        folder: A checkpoint (or model) folder.

    Returns:
        The parsed JSON object.

    Raises:
        RunFileError: The file is missing, not JSON, or not an object.
    """
    from agents.runs.run_files import read_json

    return read_json(folder / "state.json")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run (None if there is none).

    Args:
        run_dir: A ``train.py`` run folder.

    Returns:
        The complete checkpoint folder with the most timesteps, or None.

    Raises:
        RunFileError: A checkpoint's ``state.json`` is corrupt.
    """
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = [p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if (p / "state.json").is_file()]
    return max(done, key=lambda p: read_state(p)["num_timesteps"], default=None)


def save_model_files(model: Any, folder: Path, extra: Mapping[str, Any] | None = None,
                     state_name: str = "state.json") -> None:
    """Save model.zip, vecnormalize.pkl and a JSON file into ``folder`` atomically.

    Files go to a sibling temporary folder that is renamed into place, so a process killed
    mid-save leaves the previous folder (or none), never a half-written one.

    Args:
        model: A stable-baselines3 model (its VecNormalize, if any, is saved too).
        folder: The folder to write (replaced if it exists).
        extra: The JSON object to write (empty if None).
        state_name: The JSON file's name.
    """
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        normalizer.save(tmp / "vecnormalize.pkl")
    (tmp / state_name).write_text(json.dumps(dict(extra or {}), indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
