"""Agent folders for ``evaluate.py --agent``: a train.py run folder, or a sweep folder.

A sweep folder (``train.py --sweep`` writes ``sweep.json`` into it) expands into its
trials' run folders, in the sweep's order: the training-seed (and any other swept)
dimension of the evaluation. Kept apart from `agents.sweep` so evaluation never imports Ray.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from envs.env_config import EnvConfig, RewardWeights
from envs.errors import ConfigError

__all__ = ["SWEEP_FILE", "agent_run_dirs", "ppo_policy_names", "trained_env"]

SWEEP_FILE = "sweep.json"


def agent_run_dirs(path: str | Path) -> list[Path]:
    """The run folders of ``path``: itself, or every trial of the sweep folder it is.

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


def ppo_policy_names(run_dirs: list[Path]) -> list[str]:
    """``ppo`` for one agent; ``ppo/<trial>`` for each agent of a sweep."""
    if len(run_dirs) == 1:
        return ["ppo"]
    return [f"ppo/{d.name}" for d in run_dirs]


def trained_env(run_dirs: list[Path]) -> EnvConfig:
    """The env the agents of ``run_dirs`` were trained on (each folder's config.yaml).

    Agents of one sweep may differ in reward weights and training workload seed (their
    observations and actions mean the same); the evaluation scores every policy with the
    first agent's reward weights.

    Raises:
        ConfigError: A folder without a final model, or agents trained on different envs.
    """
    from agents.policy import find_model
    from agents.train_config import TrainConfig
    from envs.config import from_dict, read_yaml_file

    envs = []
    for run_dir in run_dirs:
        find_model(run_dir)
        envs.append(from_dict(TrainConfig, read_yaml_file(run_dir / "config.yaml")).env)
    first = envs[0]
    for run_dir, env in zip(run_dirs[1:], envs[1:], strict=True):
        if _comparable(env) != _comparable(first):
            raise ConfigError(f"{run_dir} was trained on another env than {run_dirs[0]} "
                              "(beyond reward weights and workload seed); evaluate the two "
                              "with separate evaluate.py runs")
    return first


def _comparable(env: EnvConfig) -> EnvConfig:
    """``env`` without what agents of one sweep may differ in."""
    return replace(env, reward=RewardWeights(), reward_preset=None,
                   workload=replace(env.workload, seed=0))
