"""A residual agent in training and evaluation: its env and its `DecidingPolicy` adapter.

A run trained with ``agent.residual`` saves the residual settings (levels, planner weights)
in its ``config.yaml``; `residual_env` builds the same `ResidualPlannerEnv` from them for
training (`make_training_env`) and for every episode that plays the agent
(`ResidualAgentPolicy`). The adapter wraps the episode's bare `PipelineEnv`, asks the
learned policy for the residual action on the raw observation and applies the planner's
decision for it (`ResidualPlannerEnv.plan`), so the episode loop, the windows, the seeds
and the reports treat it as any other policy.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.policies.protocol import DecidingPolicy, Policy
from agents.policies.residual_env import ResidualPlannerEnv
from agents.runs.train_config import AgentConfig
from envs.env_config import EnvConfig
from envs.model.spec import Decision
from envs.pipeline_env import PipelineEnv
from ipa_baseline.rules import IpaRules

__all__ = ["ResidualAgentPolicy", "make_training_env", "planner_kwargs", "residual_env"]


def planner_kwargs(agent: AgentConfig) -> dict[str, Any]:
    """`ResidualPlannerEnv`'s keyword arguments from a training config's agent section.

    Args:
        agent: The agent section (``residual_rate_levels``, ``residual_margin_levels``,
            ``residual_planner``).

    Returns:
        ``rate_levels``, ``margin_levels`` and the planner's weights and rules.
    """
    p = agent.residual_planner
    return {"rate_levels": agent.residual_rate_levels,
            "margin_levels": agent.residual_margin_levels, "mode": p.mode, "alpha": p.alpha,
            "beta": p.beta, "gamma": p.gamma, "delta": p.delta,
            "use_batch_timeout": p.use_batch_timeout,
            "rules": IpaRules(on_infeasible=p.on_infeasible)}


def residual_env(env: gym.Env, agent: AgentConfig) -> ResidualPlannerEnv:
    """``env`` wrapped in the residual agent's `ResidualPlannerEnv`.

    Args:
        env: A `PipelineEnv` in ``absolute`` action mode.
        agent: The agent section that sets the levels and the planner.

    Returns:
        The wrapper.

    Raises:
        ConfigError: See `ResidualPlannerEnv`.
    """
    return ResidualPlannerEnv(env, **planner_kwargs(agent))


def make_training_env(env_cfg: EnvConfig, agent: AgentConfig) -> gym.Env:
    """One training env: a `PipelineEnv`, wrapped in `residual_env` with ``agent.residual``.

    Args:
        env_cfg: The env's config.
        agent: The agent section.

    Returns:
        The env the learner steps.
    """
    env = PipelineEnv(env_cfg)
    return residual_env(env, agent) if agent.residual else env


class ResidualAgentPolicy(DecidingPolicy):
    """A learned residual policy played on a bare `PipelineEnv`.

    Each step the learned policy picks the residual action for the raw observation (the
    observation of the `ResidualPlannerEnv` it was trained in is the inner env's); the
    wrapper's planner turns it into a `Decision`. ``fallbacks`` and ``kept`` count the
    planner's infeasible intervals, as for IPA.

    Args:
        env: The episode's env (a `PipelineEnv`, ``absolute`` action mode).
        policy: The learned policy (`Policy`: e.g. `agents.policies.trained.NormalizedPolicy`)
            whose actions are residual actions.
        agent: The agent section of the run's saved config (levels and planner).

    Raises:
        ConfigError: See `ResidualPlannerEnv`.
    """

    masked = False

    def __init__(self, env: gym.Env, policy: Policy, agent: AgentConfig) -> None:
        super().__init__(env)
        self.policy = policy
        self.wrapper = residual_env(self.env, agent)
        self.last_info: dict[str, Any] = {}
        self._episode_start: Any = None
        self._deterministic = True

    @property
    def fallbacks(self) -> int:  # type: ignore[override]
        """Intervals in which the planner's ILP was infeasible and it fell back."""
        return self.wrapper.planner.fallbacks

    @property
    def kept(self) -> int:
        """Intervals in which the planner's ILP was infeasible and it kept the configuration."""
        return self.wrapper.planner.kept

    def reset(self) -> None:
        """Forget the planner's per-episode state (the episode loop resets the env)."""
        self.wrapper.planner.reset()

    def decide(self, obs: np.ndarray) -> Decision:
        """The planner's decision under the learned policy's residual action.

        Args:
            obs: One raw observation of the env.

        Returns:
            The decision (its planner fields are kept in ``last_info``).
        """
        action, _ = self.policy.predict(obs, None, self._episode_start, self._deterministic)
        decision, self.last_info = self.wrapper.plan(obs, np.asarray(action).reshape(-1))
        return decision

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """`DecidingPolicy.predict`, passing ``episode_start`` and ``deterministic`` on to the
        learned policy.

        Args:
            observation: One observation, or a batch of one.
            state: Passed back unchanged.
            episode_start: Flags the first step of an episode.
            deterministic: The learned policy's greedy action (else sampled).

        Returns:
            The encoded env action and ``state``.
        """
        self._episode_start, self._deterministic = episode_start, deterministic
        return super().predict(observation, state, episode_start, deterministic)
