"""The `Policy` protocol, loading trained PPO policies, and evaluation on fixed windows.

Anything with stable-baselines3's ``predict`` signature is a `Policy`: sb3 models, the
`NormalizedPolicy` that `load_ppo_policy` returns (it applies the run's saved VecNormalize
statistics to raw observations), and our non-learned baselines. `evaluate_windows` runs
any of them over the same validation windows and reports domain metrics, not only reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from agents.run_files import load_algo, load_normalizer
from envs.config import from_dict, read_yaml_file
from envs.errors import ConfigError

__all__ = [
    "EvalResult",
    "NormalizedPolicy",
    "Policy",
    "evaluate_windows",
    "find_model",
    "load_ppo_policy",
]


@runtime_checkable
class Policy(Protocol):
    """What evaluation needs from a policy (stable-baselines3's ``predict``)."""

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The action for ``observation`` and the next recurrent state (None if stateless)."""
        ...


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
        """``observation`` as the model saw observations during training."""
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
        """The model's action for a raw observation (``action_masks`` only when masked)."""
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

    Raises:
        ConfigError: The run folder has no such model.
    """
    run_dir = Path(run_dir)
    if which == "latest":
        from agents.checkpoints import latest_checkpoint

        folder = latest_checkpoint(run_dir)
        if folder is None:
            raise ConfigError(f"{run_dir} has no checkpoint under checkpoints/")
    else:
        folder = run_dir / "best" if which == "best" else run_dir
    model = folder / "model.zip"
    if not model.is_file():
        hint = " (the run did not finish; use which='latest')" if which == "final" else ""
        raise ConfigError(f"{model} does not exist{hint}")
    return model, folder / "vecnormalize.pkl"


def load_ppo_policy(run_dir: str | Path, which: Literal["final", "best", "latest"] = "final",
                    device: str = "cpu") -> NormalizedPolicy:
    """Load a trained PPO policy that applies its saved VecNormalize stats to raw obs.

    Args:
        run_dir: A folder written by ``train.py`` (holds ``config.yaml``).
        which: ``final``, ``best`` or ``latest`` (see `find_model`).
        device: Torch device for the network.

    Raises:
        ConfigError: Missing run folder, config or model.
    """
    from agents.train_config import TrainConfig

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


@dataclass(frozen=True)
class EvalResult:
    """Domain metrics of a policy over evaluation windows.

    Attributes:
        episodes: Windows played.
        mean_reward: Mean episode return (sum of env rewards).
        std_reward: Standard deviation of the episode returns.
        sla_violation_rate: Violations over arrivals, all windows pooled.
        energy_j: Mean energy per episode (joules).
        power_w: Mean power over all intervals.
        accuracy: Mean per-stage accuracy term over intervals.
        cores: Mean cores allocated per interval.
        p99_ms: Mean of the intervals' p99 latency (intervals with traffic).
        energy_estimated: Whether any energy figure was estimated rather than measured.
        reward_terms: Mean of each unweighted reward term per interval.
    """

    episodes: int
    mean_reward: float
    std_reward: float
    sla_violation_rate: float
    energy_j: float
    power_w: float
    accuracy: float
    cores: float
    p99_ms: float
    energy_estimated: bool
    reward_terms: dict[str, float]

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """Flat ``{prefix + name: value}`` for logging (booleans as 0/1)."""
        out = {
            "mean_reward": self.mean_reward, "std_reward": self.std_reward,
            "sla_violation_rate": self.sla_violation_rate, "energy_j": self.energy_j,
            "power_w": self.power_w, "accuracy": self.accuracy, "cores": self.cores,
            "p99_ms": self.p99_ms, "energy_estimated": float(self.energy_estimated),
        }
        out.update({f"term_{k}": v for k, v in self.reward_terms.items()})
        return {prefix + k: float(v) for k, v in out.items()}


def evaluate_windows(policy: Policy, env: Any, window_starts: list[int], seed: int = 0,
                     deterministic: bool = True, use_masks: bool = False) -> EvalResult:
    """Play ``policy`` once over each window of a `PipelineEnv` and pool the metrics.

    Args:
        policy: Anything with ``predict`` (raw observations in, env actions out).
        env: An unwrapped `envs.pipeline_env.PipelineEnv`.
        window_starts: Trace second at which each episode starts.
        seed: Episode ``i`` resets with ``seed + i`` (the backend's randomness).
        deterministic: Ask the policy for its greedy action.
        use_masks: Pass ``env.action_masks()`` to ``predict`` (MaskablePPO policies).
    """
    returns, energy, terms_sum = [], [], {}
    arrived = violations = intervals = p99_n = 0
    seconds = energy_total = accuracy = cores = p99 = 0.0
    estimated = False
    for i, start in enumerate(window_starts):
        obs, _ = env.reset(seed=seed + i, options={"window_start": start})
        done, ep_return, ep_energy = False, 0.0, 0.0
        while not done:
            kwargs = {"action_masks": env.action_masks()} if use_masks else {}
            action, _ = policy.predict(obs, deterministic=deterministic, **kwargs)
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            stats = info["stats"]
            ep_return += float(reward)
            ep_energy += stats.energy_j
            arrived += stats.arrived
            violations += stats.sla_violations
            seconds += stats.seconds
            accuracy += info["reward_terms"]["accuracy"]
            cores += stats.cores
            estimated |= bool(stats.energy_estimated)
            if not math.isnan(stats.p99_ms):
                p99 += stats.p99_ms
                p99_n += 1
            for k, v in info["reward_terms"].items():
                terms_sum[k] = terms_sum.get(k, 0.0) + v
            intervals += 1
        returns.append(ep_return)
        energy.append(ep_energy)
    n = max(intervals, 1)
    energy_total = float(sum(energy))
    return EvalResult(
        episodes=len(window_starts),
        mean_reward=float(np.mean(returns)) if returns else math.nan,
        std_reward=float(np.std(returns)) if returns else math.nan,
        sla_violation_rate=violations / arrived if arrived else 0.0,
        energy_j=float(np.mean(energy)) if energy else math.nan,
        power_w=energy_total / seconds if seconds else 0.0,
        accuracy=accuracy / n,
        cores=cores / n,
        p99_ms=p99 / p99_n if p99_n else math.nan,
        energy_estimated=estimated,
        reward_terms={k: v / n for k, v in terms_sum.items()},
    )
