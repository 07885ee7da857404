"""Agent folders for ``evaluate.py --agent``: a train.py run folder, or a sweep folder.

A sweep folder (``train.py --sweep`` writes ``sweep.json`` into it) expands into its
trials' run folders, in the sweep's order: the training-seed dimension of the evaluation
(``evaluate.py`` refuses trials whose envs differ beyond the workload seed).
Kept apart from `agents.sweeps.sweep` so evaluation never imports Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

from envs.config.errors import ConfigError

__all__ = ["SWEEP_FILE", "agent_run_dirs"]

SWEEP_FILE = "sweep.json"


def agent_run_dirs(path: str | Path) -> list[Path]:
    """The run folders of ``path``: itself, or every trial of the sweep folder it is.

    Args:
        path: An ``--agent`` folder: a ``train.py`` run folder or a sweep folder.

    Returns:
        ``[path]``, or the sweep's trial folders in the sweep's order.

    Raises:
        ConfigError: A sweep folder with trials that have no final model yet (named, with
            the command that finishes them).
    """
    path = Path(path)
    recorded = path / SWEEP_FILE
    if not recorded.is_file():
        return [path]
    doc = json.loads(recorded.read_text())
    dirs = [path / t["name"] for t in doc["trials"]]
    unfinished = [d.name for d in dirs if not (d / "model.zip").is_file()]
    if unfinished:
        raise ConfigError(f"sweep folder {path}: trials {unfinished} have no final model; "
                          f"finish them with: python train.py --sweep {doc['sweep_file']}")
    return dirs
