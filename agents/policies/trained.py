"""Trained PPO policies: `load_ppo_policy` and the `NormalizedPolicy` it returns.

`NormalizedPolicy` meets the `agents.policies.protocol.Policy` protocol over raw env
observations: it applies the run's saved VecNormalize statistics, then the sb3 model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents.runs.run_files import load_algo, load_normalizer
from envs.config.errors import ConfigError
from envs.config.loader import from_dict
from envs.config.yaml_io import read_yaml_file

__all__ = ["NormalizedPolicy", "find_model", "load_ppo_policy"]


class NormalizedPolicy:
    """An sb3 model that takes raw env observations.

    Args:
        model: A PPO or MaskablePPO model.
        normalizer: The VecNormalize whose observation statistics the model was trained
            with (None: observations are passed through). Statistics are not updated.
        masked: Pass ``action_masks`` on to the model (MaskablePPO).
    """

    def __init__(self, model: Any, normalizer: Any | None = None, masked: bool = False) -> None:
        self.model = model
        self.normalizer = normalizer
        self.masked = masked

    def normalize(self, observation: np.ndarray) -> np.ndarray:
        """``observation`` as the model saw observations during training.

        Args:
            observation: A raw env observation (or a batch).

        Returns:
            The normalised observation (unchanged without a normalizer).
        """
        if self.normalizer is None:
            return observation
        return self.normalizer.normalize_obs(observation)

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The model's action for a raw observation (the `Policy` protocol).

        Args:
            observation: A raw env observation (or a batch).
            state: The model's recurrent state (None for PPO).
            episode_start: First-step flags, passed on to the model.
            deterministic: Greedy action.
            action_masks: Valid actions, passed on only when ``masked``.

        Returns:
            The action(s) and the model's next state.
        """
        obs = self.normalize(observation)
        if self.masked:
            return self.model.predict(obs, state, episode_start, deterministic,
                                      action_masks=action_masks)
        return self.model.predict(obs, state, episode_start, deterministic)


def find_model(run_dir: str | Path, which: Literal["final", "best", "latest"] = "final"
               ) -> tuple[Path, Path]:
    """The ``(model.zip, vecnormalize.pkl)`` paths of a run folder.

    Args:
        run_dir: A folder written by ``train.py``.
        which: ``final`` (end of training), ``best`` (best validation reward) or
            ``latest`` (newest checkpoint; what a killed run left).

    Returns:
        The model file and the VecNormalize file (which may not exist).

    Raises:
        ConfigError: The run folder has no such model.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a train.py run folder (no config.yaml); pass "
                          "the folder train.py printed ('run folder ...')")
    if which == "latest":
        from agents.runs.checkpoints import latest_checkpoint

        folder = latest_checkpoint(run_dir)
        if folder is None:
            raise ConfigError(f"{run_dir} has no checkpoint under checkpoints/")
    else:
        folder = run_dir / "best" if which == "best" else run_dir
    model = folder / "model.zip"
    if not model.is_file():
        hint = (f" (the run did not finish: continue it with `python train.py --resume "
                f"{run_dir}`, or load its newest checkpoint with which='latest')"
                if which == "final" else "")
        raise ConfigError(f"{model} does not exist{hint}")
    return model, folder / "vecnormalize.pkl"


def load_ppo_policy(run_dir: str | Path, which: Literal["final", "best", "latest"] = "final",
                    device: str = "cpu") -> NormalizedPolicy:
    """Load a trained PPO policy that applies its saved VecNormalize stats to raw obs.

    Args:
        run_dir: A folder written by ``train.py`` (holds ``config.yaml``).
        which: ``final``, ``best`` or ``latest`` (see `find_model`).
        device: Torch device for the network.

    Returns:
        The policy over raw observations.

    Raises:
        ConfigError: Missing run folder, config or model.
    """
    from agents.runs.train_config import TrainConfig

    run_dir = Path(run_dir)
    cfg = from_dict(TrainConfig, read_yaml_file(run_dir / "config.yaml"))
    model_path, norm_path = find_model(run_dir, which)
    if cfg.agent.masked:
        from sb3_contrib import MaskablePPO as algo
    else:
        from stable_baselines3 import PPO as algo
    fix = (f"retrain, or load another model of {run_dir} (which='best' or 'latest')")
    model = load_algo(algo, model_path, fix, device=device)
    normalizer = None
    if norm_path.is_file():
        normalizer = load_normalizer(norm_path, fix)
        normalizer.training = False
        normalizer.norm_reward = False
    return NormalizedPolicy(model, normalizer, masked=cfg.agent.masked)
