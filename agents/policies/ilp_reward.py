"""``ilp_reward``: IPA's ILP solving the agent's own per-interval reward (the same-objective
check: the agent and a planner scored on one objective).

The env's reward (`envs.reward.weighted_reward`) of an interval is

    w_acc x rank_sum / n - w_sla x violations - w_cost x cores / max_cores
      - w_energy x power / max_power - w_switch x switches / n
      - w_batch x sum(batch) / (n x max_batch)

with ``n`` stages and the env's scales (`envs.reward.RewardScales`). IPA's ILP maximises
``alpha x sum(ranks) - beta x cores - gamma x sum(batch) - delta x energy_j`` over one
interval of ``interval_s`` seconds, so the same objective is

    alpha = w_acc / n,  beta = w_cost / max_cores,  gamma = w_batch / (n x max_batch),
    delta = w_energy / (max_power x interval_s)

(``gamma`` at least 1e-9, to break ties as IPA does). Two terms have no linear form: the
violation rate becomes the ILP's hard latency constraint (it plans for no violation), and
switching is left out (the ILP plans each interval afresh). The forecast is the env's
predictor's, as for IPA; the batch-fill delay is capped at the env's batching timeout, as
the simulators do (as for ``ipa_energy``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.policies.ipa import IPAPolicy

__all__ = ["RewardIlpPolicy", "reward_ilp_weights"]

MIN_GAMMA = 1e-9


def reward_ilp_weights(env: gym.Env) -> dict[str, float]:
    """IPA's ILP weights that make its objective the env's reward (module docstring).

    Args:
        env: A `PipelineEnv` (its reward weights, scales, stages and interval).

    Returns:
        ``alpha``, ``beta``, ``gamma`` and ``delta``.
    """
    unwrapped = env.unwrapped
    weights, scales = unwrapped.config.reward, unwrapped.scales
    n = len(unwrapped.pipeline.stages)
    return {"alpha": weights.accuracy / n,
            "beta": weights.cost / scales.max_cores,
            "gamma": max(weights.batch / (n * scales.max_batch), MIN_GAMMA),
            "delta": weights.energy / (scales.max_power_w * unwrapped.config.interval_s)}


class RewardIlpPolicy(IPAPolicy):
    """IPA's ILP (sum mode, energy with powered nodes) on the env's reward weights."""

    def __init__(self, env: gym.Env, **kwargs: Any) -> None:
        """Create the policy.

        Args:
            env: A `PipelineEnv`.
            **kwargs: `IPAPolicy`'s other arguments (``rules``, ``forecast``); the weights
                and the accuracy mode come from the reward.
        """
        super().__init__(env, mode="sum", use_batch_timeout=True, **reward_ilp_weights(env),
                         **kwargs)
