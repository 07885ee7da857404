"""Reading a run folder's saved files, with one clear error naming the file.

A checkpoint or final model can be corrupt or truncated (a full disk, a copy cut short, a
hand edit). Loading it must say which file and what to do, not end in a traceback from
zipfile, pickle or json. Every reader here raises `RunFileError` (a `ConfigError`).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

from envs.config.errors import ConfigError

__all__ = ["RunFileError", "load_algo", "load_normalizer", "read_json"]

_BROKEN = (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError,
           RuntimeError, AssertionError, pickle.UnpicklingError, zipfile.BadZipFile,
           ImportError)
"""What zipfile, pickle, torch, json and stable-baselines3 raise on a damaged file
(RuntimeError: torch's "PytorchStreamReader failed"; AssertionError: sb3's "No data found
in the saved file" for a truncated zip; ValueError covers json.JSONDecodeError)."""


class RunFileError(ConfigError):
    """A file of a run folder is missing, corrupt or truncated."""


def _broken(path: Path, err: BaseException, fix: str) -> RunFileError:
    detail = " ".join(str(err).split())[:200] or type(err).__name__
    return RunFileError(f"{path} is corrupt or truncated ({type(err).__name__}: {detail}); "
                        f"{fix}")


def read_json(path: Path, fix: str = "delete the folder it is in and resume from an older "
                                    "checkpoint") -> dict[str, Any]:
    """A JSON object file.

    Args:
        path: The file.
        fix: What to do when it is broken (ends the error message).

    Returns:
        The parsed object.

    Raises:
        RunFileError: Missing, not JSON, or not an object.
    """
    try:
        value = json.loads(Path(path).read_text())
    except _BROKEN as err:
        raise _broken(path, err, fix) from None
    if not isinstance(value, dict):
        raise RunFileError(f"{path} holds {type(value).__name__}, not a JSON object; {fix}")
    return value


def load_algo(algo: Any, path: Path, fix: str, **kwargs: Any) -> Any:
    """``algo.load(path, **kwargs)`` (a stable-baselines3 class), with a clear error.

    Args:
        algo: The algorithm class (``PPO`` or ``MaskablePPO``).
        path: The model zip.
        fix: What to do when it is broken (ends the error message).
        **kwargs: Passed to ``algo.load`` (e.g. ``device``).

    Returns:
        The loaded model.

    Raises:
        RunFileError: The zip is corrupt or truncated.
    """
    try:
        return algo.load(path, **kwargs)
    except _BROKEN as err:
        raise _broken(path, err, fix) from None


def load_normalizer(path: Path, fix: str, venv: Any | None = None) -> Any:
    """A saved ``VecNormalize`` (unpickled; bound to ``venv`` when given).

    Args:
        path: The ``vecnormalize.pkl`` file.
        fix: What to do when it is broken (ends the error message).
        venv: The vec env to wrap, or None to leave it unbound.

    Returns:
        The ``VecNormalize``.

    Raises:
        RunFileError: The pickle is corrupt or truncated, or holds something else.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        with Path(path).open("rb") as f:
            normalizer = pickle.load(f)  # noqa: S301 - a file train.py wrote
    except _BROKEN as err:
        raise _broken(path, err, fix) from None
    if not isinstance(normalizer, VecNormalize):
        raise RunFileError(f"{path} holds a {type(normalizer).__name__}, not VecNormalize "
                           f"statistics; {fix}")
    if venv is not None:
        normalizer.set_venv(venv)
    return normalizer
