"""``residual``: an env in which a learning agent adjusts IPA's ILP instead of replacing it.

`ResidualPlannerEnv` wraps a `PipelineEnv` (``absolute`` action mode). Each step the agent
picks three kinds of adjustment; the wrapper's own `IPAPolicy` (the caller's weights) plans
with them through its usual code path (`IPAPolicy.decide`: `ipa_baseline.ilp.solve_ipa`,
IPA's keep rule or the documented fallback), and the decision is encoded into the inner
env's action and applied:

* a planned-rate multiplier: the ILP plans for ``multiplier x`` the planner's forecast;
* a latency margin: the ILP plans with ``margin x`` the true SLA (the simulator still
  judges against the true SLA);
* per stage, keep the variant deployed now (`ipa_baseline.restriction.Restriction`).

`ResidualPlannerEnv.null_action` (multiplier 1, margin 1, keep nothing) reproduces the
planner's decisions exactly (tested step by step against the bare env driven by the same
`IPAPolicy`). The levels' check and defaults live in `agents.runs.residual_config` (the
training config applies the same check) and are re-exported here. Pre-warming nodes per
pool (issue #26) is not an adjustment here: the ILP has no node term to adjust.

A trained residual agent plays through `agents.policies.residual_agent.ResidualAgentPolicy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.policies.ipa import Forecast, IPAPolicy
from agents.runs.residual_config import DEFAULT_MARGIN_LEVELS, DEFAULT_RATE_LEVELS, check_levels
from envs.config.errors import ActionError, ConfigError
from envs.model.spec import Decision, Pipeline
from envs.pipeline_env import PipelineEnv
from ipa_baseline.candidates import AccuracyMode
from ipa_baseline.restriction import Restriction
from ipa_baseline.rules import IpaRules

__all__ = ["DEFAULT_MARGIN_LEVELS", "DEFAULT_RATE_LEVELS", "Adjustment", "ResidualPlannerEnv",
           "check_levels"]


@dataclass(frozen=True)
class Adjustment:
    """What one residual action changes in the planner's inputs.

    Attributes:
        rate_multiplier: Factor on the planner's forecast.
        latency_margin: The SLA the ILP plans with, as a fraction of the true SLA.
        keep: Per stage, whether the variant deployed now is the only one allowed.
    """

    rate_multiplier: float
    latency_margin: float
    keep: tuple[bool, ...]


class _AdjustedIPA(IPAPolicy):
    """`IPAPolicy` whose forecast, SLA and variant restriction `plan` sets for one decision;
    everything else (the ILP call, the keep rule, the fallback, the counters) is IPA's."""

    def __init__(self, env: gym.Env, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.base_plan: Pipeline = self.plan_pipeline
        self.rate_multiplier = 1.0
        self.kept_variants: tuple[tuple[int, ...] | None, ...] | None = None
        self.last_planned_rps = 0.0

    @property
    def restriction(self) -> Restriction:
        return Restriction(variants=self.kept_variants)

    def forecast_rps(self, obs: np.ndarray) -> float:
        self.last_planned_rps = self.rate_multiplier * super().forecast_rps(obs)
        return self.last_planned_rps

    def plan(self, obs: np.ndarray, adjustment: Adjustment, plan: Pipeline) -> Decision:
        """`IPAPolicy.decide` under ``adjustment``, with ``plan`` as the planned pipeline."""
        current = self.env.decision
        keep = any(adjustment.keep) and current is not None
        self.kept_variants = tuple(
            (c.variant,) if k else None for k, c in zip(adjustment.keep, current.stages,
                                                        strict=True)) if keep else None
        self.rate_multiplier = adjustment.rate_multiplier
        self.plan_pipeline = plan
        return self.decide(obs)


class ResidualPlannerEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A `PipelineEnv` whose action adjusts IPA's ILP instead of choosing the configuration.

    **Action space** ``MultiDiscrete([len(rate_levels), len(margin_levels), 2, ..., 2])``:

    =====  ===================  ====================================================
    idx    meaning              values
    =====  ===================  ====================================================
    0      rate multiplier      index into ``rate_levels``: the ILP plans for
                                multiplier x the planner's forecast
    1      latency margin       index into ``margin_levels``: the ILP plans with
                                margin x the true SLA
    2+s    keep stage ``s``     0: the ILP picks the variant; 1: only the variant
                                deployed now
    =====  ===================  ====================================================

    `null_action` (multiplier 1.0, margin 1.0, keep none) gives the planner's own decision.

    **Observation, reward, episode end** the inner env's, unchanged.

    **Info** the inner env's, plus ``planner_decision`` (the planner's `Decision`, before
    the inner env's core-budget repair), ``residual`` (the `Adjustment`), ``planned_rps``,
    ``planned_sla_ms``, ``planned_latency_ms`` (the ILP's predicted latency; None after a
    fallback) and ``planner_fallback`` (the ILP was infeasible: IPA's keep rule or the
    documented fallback decided).
    """

    def __init__(
        self, env: gym.Env, rate_levels: Sequence[float] = DEFAULT_RATE_LEVELS,
        margin_levels: Sequence[float] = DEFAULT_MARGIN_LEVELS, *, mode: AccuracyMode = "sum",
        alpha: float = 2.0, beta: float = 1.0, gamma: float = 1e-6, delta: float = 0.0,
        forecast: Forecast = "predictor", use_batch_timeout: bool = False,
        rules: IpaRules | None = None,
    ) -> None:
        """Wrap ``env`` and build the planner.

        Args:
            env: A `PipelineEnv` in ``absolute`` action mode (wrappers allowed).
            rate_levels: Planned-rate multipliers (> 0, 1.0 included).
            margin_levels: Latency margins as fractions of the SLA (in (0, 1], 1.0
                included).
            mode: IPA's accuracy mode (`IPAPolicy`).
            alpha: Weight of accuracy.
            beta: Weight of allocated cores.
            gamma: Weight of the sum of batch sizes.
            delta: Weight of the interval's energy (IPA + energy).
            forecast: The planner's forecast (`IPAPolicy`).
            use_batch_timeout: Cap the batch-fill delay at the env's batch timeout.
            rules: IPA's rules; None: the package defaults.

        Raises:
            ConfigError: Not a PipelineEnv, ``headroom`` action mode, bad levels
                (`check_levels`), or any of `IPAPolicy`'s errors.
        """
        base = env.unwrapped
        if not isinstance(base, PipelineEnv):
            raise ConfigError(f"ResidualPlannerEnv wraps a PipelineEnv, got {type(base).__name__}")
        if base.config.action_mode != "absolute":
            raise ConfigError(f"ResidualPlannerEnv needs action_mode='absolute' (got "
                              f"{base.config.action_mode!r}: headroom cannot apply the "
                              "planner's replica counts exactly); set action_mode=absolute")
        check_levels(rate_levels, margin_levels)
        gym.utils.RecordConstructorArgs.__init__(
            self, rate_levels=rate_levels, margin_levels=margin_levels, mode=mode, alpha=alpha,
            beta=beta, gamma=gamma, delta=delta, forecast=forecast,
            use_batch_timeout=use_batch_timeout, rules=rules)
        gym.Wrapper.__init__(self, env)
        self.rate_levels = tuple(float(r) for r in rate_levels)
        self.margin_levels = tuple(float(m) for m in margin_levels)
        self.planner = _AdjustedIPA(env, mode=mode, alpha=alpha, beta=beta, gamma=gamma,
                                    delta=delta, forecast=forecast,
                                    use_batch_timeout=use_batch_timeout, rules=rules)
        plan = self.planner.base_plan
        self._plans = tuple(plan if m == 1.0 else dataclasses.replace(
            plan, sla_ms=m * base.pipeline.sla_ms) for m in self.margin_levels)
        n_stages = len(base.pipeline.stages)
        self.action_space = spaces.MultiDiscrete(
            [len(self.rate_levels), len(self.margin_levels)] + [2] * n_stages)
        self._obs: np.ndarray | None = None

    @property
    def base(self) -> PipelineEnv:
        """The inner `PipelineEnv`."""
        return self.planner.env

    def null_action(self) -> np.ndarray:
        """The action that leaves the planner's inputs as they are.

        Returns:
            Multiplier 1.0, margin 1.0, keep no stage.
        """
        n_stages = len(self.action_space.nvec) - 2
        return np.array([self.rate_levels.index(1.0), self.margin_levels.index(1.0)]
                        + [0] * n_stages, dtype=self.action_space.dtype)

    def adjustment(self, action: np.ndarray) -> Adjustment:
        """The `Adjustment` an action stands for.

        Args:
            action: ``[rate index, margin index, keep flag per stage]``.

        Returns:
            The adjustment.

        Raises:
            ActionError: The action is outside the space.
        """
        action = np.asarray(action).reshape(-1)
        nvec = self.action_space.nvec
        if action.shape != nvec.shape or not np.all(action == np.round(action)) or not np.all(
                (action >= 0) & (action < nvec)):
            raise ActionError(f"residual action {action.tolist()} is outside "
                              f"{self.action_space}; give [rate index, margin index] and one "
                              "keep flag (0 or 1) per stage")
        return Adjustment(self.rate_levels[int(action[0])], self.margin_levels[int(action[1])],
                          tuple(bool(k) for k in action[2:]))

    def action_masks(self) -> np.ndarray:
        """Every value of every dimension is valid (for sb3-contrib MaskablePPO).

        Returns:
            One True per value of every dimension.
        """
        return np.ones(int(self.action_space.nvec.sum()), dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner env and the planner.

        Args:
            seed: The inner env's seed.
            options: The inner env's options.

        Returns:
            The inner env's first observation and info.
        """
        obs, info = self.env.reset(seed=seed, options=options)
        self.planner.reset()
        self._obs = obs
        return obs, info

    def plan(self, obs: np.ndarray, action: np.ndarray) -> tuple[Decision, dict[str, Any]]:
        """The planner's decision for ``obs`` under a residual action (what `step` applies;
        an evaluation adapter can call it with an agent's action on the bare env).

        Args:
            obs: The inner env's current observation.
            action: The residual action.

        Returns:
            The decision and the planner's ``info`` fields (see the class docstring).

        Raises:
            ActionError: The action is outside the space.
        """
        adjustment = self.adjustment(action)
        planner = self.planner
        plan = self._plans[self.margin_levels.index(adjustment.latency_margin)]
        infeasible_before = planner.fallbacks + planner.kept
        decision = planner.plan(obs, adjustment, plan)
        result = planner.last_result
        return decision, {
            "planner_decision": decision, "residual": adjustment,
            "planned_rps": planner.last_planned_rps, "planned_sla_ms": plan.sla_ms,
            "planned_latency_ms": None if result is None else result.predicted_latency_ms,
            "planner_fallback": planner.fallbacks + planner.kept > infeasible_before}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Plan with the adjusted inputs (`plan`) and apply the decision for one interval.

        Args:
            action: The residual action.

        Returns:
            The inner env's ``(observation, reward, terminated, truncated, info)``, with the
            planner's fields added to ``info`` (see the class docstring).

        Raises:
            ActionError: The action is outside the space.
            RuntimeError: Called before `reset`.
        """
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        decision, planned = self.plan(self._obs, action)
        obs, reward, terminated, truncated, info = self.env.step(self.base.encode(decision))
        self._obs = obs
        info.update(planned)
        return obs, reward, terminated, truncated, info
