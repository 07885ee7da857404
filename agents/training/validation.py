"""Training-time validation: a policy over fixed validation windows, through the one
episode loop (`agents.evaluation.episode.run_episode`), pooled into an `EvalResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.episode import episode_p99_ms, run_episode
from envs.pipeline_env import PipelineEnv

__all__ = ["EvalResult", "evaluate_windows"]


@dataclass(frozen=True)
class EvalResult:
    """Domain metrics of a policy over validation windows (training-time evaluation).

    Attributes:
        episodes: Windows played.
        mean_reward: Mean episode return (sum of env rewards).
        std_reward: Standard deviation of the episode returns.
        sla_violation_rate: Violations over arrivals, all windows pooled.
        energy_j: Mean energy per episode (joules).
        power_w: Mean power over all intervals.
        accuracy: Mean per-stage accuracy term over intervals.
        cores: Mean cores allocated per interval.
        p99_ms: Mean over episodes of `episode_p99_ms`.
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
        """Flat ``{prefix + name: value}`` for logging (booleans as 0/1).

        Args:
            prefix: Put before every name.

        Returns:
            The scalar fields and ``term_<name>`` per reward term, as floats.
        """
        out = {
            "mean_reward": self.mean_reward, "std_reward": self.std_reward,
            "sla_violation_rate": self.sla_violation_rate, "energy_j": self.energy_j,
            "power_w": self.power_w, "accuracy": self.accuracy, "cores": self.cores,
            "p99_ms": self.p99_ms, "energy_estimated": float(self.energy_estimated),
        }
        out.update({f"term_{k}": v for k, v in self.reward_terms.items()})
        return {prefix + k: float(v) for k, v in out.items()}


def evaluate_windows(policy: Any, env: PipelineEnv, window_starts: list[int], seed: int = 0,
                     deterministic: bool = True, use_masks: bool = False) -> EvalResult:
    """Play ``policy`` once over each window with `run_episode` and pool the metrics.

    Args:
        policy: Anything with ``predict`` (raw observations in, env actions out).
        env: An unwrapped `PipelineEnv`.
        window_starts: Trace second at which each episode starts.
        seed: Episode ``i`` resets with ``seed + i`` (the backend's randomness).
        deterministic: Greedy actions (``eval.deterministic``), else sampled.
        use_masks: Pass ``env.action_masks()`` to ``predict`` (MaskablePPO policies).

    Returns:
        The pooled `EvalResult`.
    """
    episodes = [run_episode(env, policy, "policy", str(start), seed + i, start, use_masks,
                            deterministic=deterministic)
                for i, start in enumerate(window_starts)]
    steps = [s for ep in episodes for s in ep.steps]
    returns = [sum(s.reward for s in ep.steps) for ep in episodes]
    energy = [sum(s.stats.energy_j for s in ep.steps) for ep in episodes]
    arrived = sum(s.stats.arrived for s in steps)
    seconds = len(steps) * env.config.interval_s
    n = max(len(steps), 1)
    terms: dict[str, float] = {}
    for s in steps:
        for k, v in s.terms.items():
            terms[k] = terms.get(k, 0.0) + v
    p99s = [p for ep in episodes if not math.isnan(p := episode_p99_ms(ep.steps,
                                                                        ep.latencies_ms))]
    return EvalResult(
        episodes=len(episodes),
        mean_reward=float(np.mean(returns)) if returns else math.nan,
        std_reward=float(np.std(returns)) if returns else math.nan,
        sla_violation_rate=(sum(s.stats.sla_violations for s in steps) / arrived if arrived
                            else 0.0),
        energy_j=float(np.mean(energy)) if energy else math.nan,
        power_w=float(sum(energy)) / seconds if seconds else 0.0,
        accuracy=sum(s.terms.get("accuracy", 0.0) for s in steps) / n,
        cores=sum(s.stats.cores for s in steps) / n,
        p99_ms=float(np.mean(p99s)) if p99s else math.nan,
        energy_estimated=any(ep.energy_estimated for ep in episodes),
        reward_terms={k: v / n for k, v in terms.items()},
    )
