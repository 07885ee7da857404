"""IPA and its baselines (FA2, RIM) as `DecidingPolicy`: IPA's adapter over the ILP.

Every policy solves the same ILP (`ipa_baseline.ilp.solve_ipa`) each interval; the
baselines restrict it (`Restriction`) instead of copying it:

* `IPAPolicy`: variant, batch and replicas adapt (``delta > 0`` adds the energy term).
* `FA2Policy`: the variant is fixed (lowest- or highest-accuracy per stage); batch and
  replicas adapt.
* `RIMPolicy`: the replicas are fixed; variant and batch adapt.

When the ILP is infeasible the policy applies the documented fallback
(`ipa_baseline.fallback.fallback_decision`:
per stage the allowed (variant, batch) with the highest replica throughput, at the most
replicas allowed) and counts it in ``policy.fallbacks``; with IPA's rule
(``IpaRules(on_infeasible="keep")``) it keeps the current configuration and counts it in
``policy.kept``, but only a configuration within its restriction: FA2 or RIM never keeps
the env's initial configuration when it uses another variant or replica count than they
allow (they fall back instead). ``rules`` (`ipa_baseline.rules.IpaRules`) switches on
IPA's own rules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from agents.policies.protocol import DecidingPolicy
from envs.config.errors import ConfigError
from envs.model.spec import Decision, Pipeline, StageDecision
from envs.pipeline_env import PipelineEnv
from envs.workload.predictors import ReactivePredictor
from ipa_baseline.candidates import AccuracyMode, min_replicas
from ipa_baseline.errors import InfeasibleError
from ipa_baseline.fallback import fallback_decision
from ipa_baseline.ilp import IlpResult, solve_ipa
from ipa_baseline.ipa_world import check_env_matches
from ipa_baseline.restriction import Restriction
from ipa_baseline.rules import (
    IPA_RIM_REPLICAS,
    IpaRules,
    fa2_high_variants,
    with_margins,
)

Forecast = Literal["predictor", "oracle", "reactive"]
FORECASTS: tuple[str, ...] = ("predictor", "oracle", "reactive")


class IPAPolicy(DecidingPolicy):
    """IPA's adapter: forecast the rate, solve the ILP, return the env action.

    Attributes:
        fallbacks: How many decisions fell back because the ILP was infeasible.
        kept: How many infeasible decisions kept the current configuration (IPA's rule).
        plan_pipeline: What the ILP plans with (the env's pipeline, with IPA's margins).
        decision_times_ms: Wall time of every decision (forecast, solve, fallback).
        last_result: The last `IlpResult` (None after a fallback).
        last_error: The last `InfeasibleError`, if any.
    """

    def __init__(
        self, env: gym.Env, mode: AccuracyMode = "sum", alpha: float = 2.0, beta: float = 1.0,
        gamma: float = 1e-6, delta: float = 0.0, forecast: Forecast = "predictor", *,
        use_batch_timeout: bool = False, rules: IpaRules | None = None,
    ) -> None:
        """Create the policy.

        Args:
            env: A `PipelineEnv` (wrappers allowed; its ``unwrapped`` is used).
            mode: IPA's accuracy mode, ``sum`` or ``product``.
            alpha: Weight of accuracy.
            beta: Weight of allocated cores.
            gamma: Weight of the sum of batch sizes.
            delta: Weight of the interval's predicted energy in joules (IPA + energy).
            forecast: ``predictor`` (the env's forecast, read from the observation),
                ``oracle`` (the maximum of the next interval's true rates) or ``reactive``
                (the maximum of the last interval's rates).
            use_batch_timeout: Cap the batch-fill delay at the env's batch timeout (IPA's
                paper has no cap).
            rules: IPA's rules (`ipa_baseline.rules`); None: the package defaults.

        Raises:
            ConfigError: Not a PipelineEnv, an unknown forecast, or an env whose SLA, base
                cores or replica cap differ from what ``rules`` prescribe.
        """
        unwrapped = env.unwrapped
        if not isinstance(unwrapped, PipelineEnv):
            raise ConfigError(f"IPA policies drive a PipelineEnv, got {type(unwrapped).__name__}")
        if forecast not in FORECASTS:
            raise ConfigError(f"forecast must be one of {FORECASTS}, got {forecast!r}")
        super().__init__(unwrapped)
        self.mode = mode
        self.weights = {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta}
        self.forecast = forecast
        self.timeout_ms = unwrapped.settings.batch_timeout_ms if use_batch_timeout else math.inf
        self.rules = rules or IpaRules()
        if self.rules.max_replicas is not None and (
                unwrapped.config.max_replicas != self.rules.max_replicas):
            raise ConfigError(f"the rules cap replicas at {self.rules.max_replicas} but the env "
                              f"has max_replicas={unwrapped.config.max_replicas}; build the env "
                              f"with max_replicas={self.rules.max_replicas}")
        check_env_matches(unwrapped.pipeline, self.rules)
        self.plan_pipeline = with_margins(unwrapped.pipeline, self.rules)
        self.fallbacks = 0
        self.kept = 0
        self.decision_times_ms: list[float] = []
        self.last_result: IlpResult | None = None
        self.last_error: InfeasibleError | None = None

    @property
    def restriction(self) -> Restriction:
        """What this policy may not change (nothing for IPA)."""
        return Restriction()

    def forecast_rps(self, obs: np.ndarray) -> float:
        """The rate the next decision plans for.

        Args:
            obs: The observation (``predictor`` reads its forecast).

        Returns:
            The planned rate (requests/s).
        """
        env = self.env
        if self.forecast == "predictor":
            return env.layout.forecast_rps(obs)
        if self.forecast == "oracle":
            upcoming = env.upcoming_rates()
            return float(upcoming.max()) if len(upcoming) else env.layout.forecast_rps(obs)
        return ReactivePredictor(env.config.interval_s).predict(env.history())

    def decide(self, obs: np.ndarray) -> Decision:
        """Solve for one observation; fall back (and count it) when infeasible.

        Args:
            obs: The observation.

        Returns:
            The ILP's decision, the kept one, or the fallback.
        """
        start = time.perf_counter()
        env = self.env
        try:
            self.last_result = solve_ipa(
                self.plan_pipeline, self.forecast_rps(obs), mode=self.mode, **self.weights,
                max_replicas=env.config.max_replicas, interval_s=env.config.interval_s,
                timeout_ms=self.timeout_ms, restriction=self.restriction,
                nodes_on=env.powered_nodes())
            decision = self.last_result.decision
        except InfeasibleError as err:
            self.last_result, self.last_error = None, err
            if self.rules.on_infeasible == "keep" and env.decision is not None and \
                    self.restriction.admits(env.pipeline, env.decision):
                self.kept += 1
                decision = env.decision
            else:
                self.fallbacks += 1
                decision = fallback_decision(env.pipeline, env.config.max_replicas,
                                             self.restriction)
        self.decision_times_ms.append((time.perf_counter() - start) * 1e3)
        return decision


class FA2Policy(IPAPolicy):
    """FA2: the variant is fixed per stage (lowest accuracy, or for ``high`` the most
    accurate, or IPA's configured variants with ``IpaRules(fa2_high="ipa")``); batch and
    replicas adapt through the same ILP restricted to that variant."""

    def __init__(self, env: gym.Env, level: Literal["low", "high"] = "low",
                 **kwargs: Any) -> None:
        """Create the policy; ``kwargs`` are `IPAPolicy`'s.

        Args:
            env: The env.
            level: ``low`` (each stage's lowest-accuracy variant) or ``high`` (see
                `fa2_high_variants`).
            **kwargs: `IPAPolicy`'s arguments.

        Raises:
            ConfigError: ``level`` is neither ``low`` nor ``high``.
        """
        if level not in ("low", "high"):
            raise ConfigError(f"FA2 level must be 'low' or 'high', got {level!r}")
        super().__init__(env, **kwargs)
        self.level = level
        if level == "low":
            picks = tuple(min(range(len(s.variants)), key=lambda i, s=s: s.variants[i].accuracy)
                          for s in self.env.pipeline.stages)
        else:
            picks = fa2_high_variants(self.env.pipeline, self.rules)
        self._variants = tuple((v,) for v in picks)

    @property
    def restriction(self) -> Restriction:
        return Restriction(variants=self._variants)


class RIMPolicy(IPAPolicy):
    """RIM: the replicas are fixed per stage; variant and batch adapt through the same ILP
    with replicas fixed."""

    def __init__(self, env: gym.Env, replicas: int | Sequence[int] | None = None,
                 **kwargs: Any) -> None:
        """Create the policy.

        Args:
            env: The env.
            replicas: Fixed replicas, one count or one per stage. Default: 3 per stage with
                ``IpaRules(rim_replicas="ipa")`` (IPA's); otherwise per stage, the fewest
                replicas with which the lowest-accuracy variant serves the env's
                configured observation scale (``rate_scale_rps``, fixed beforehand, never
                the episode's rates) at the smallest batch size (capped at
                ``max_replicas``). The evaluation passes replicas sized for the training
                data's peak instead.
            **kwargs: `IPAPolicy`'s arguments.

        Raises:
            ConfigError: ``replicas`` is not one count per stage in 1..``max_replicas``.
        """
        super().__init__(env, **kwargs)
        n = len(self.env.pipeline.stages)
        cap = self.env.config.max_replicas
        if replicas is None and self.rules.rim_replicas == "ipa":
            fixed = (IPA_RIM_REPLICAS,) * n
        elif replicas is None:
            fixed = default_rim_replicas(self.env.pipeline, self.env.layout.rate_scale, cap)
        elif isinstance(replicas, int):
            fixed = (replicas,) * n
        else:
            fixed = tuple(int(r) for r in replicas)
        if len(fixed) != n or not all(1 <= r <= cap for r in fixed):
            raise ConfigError(f"RIM replicas {fixed} must be {n} counts in 1..{cap}")
        self.replicas = fixed

    @property
    def restriction(self) -> Restriction:
        return Restriction(replicas=self.replicas)


def default_rim_replicas(pipeline: Pipeline, peak_rps: float,
                         max_replicas: int) -> tuple[int, ...]:
    """Per stage, replicas for ``peak_rps`` with the lowest-accuracy variant at the smallest
    batch size, capped at ``max_replicas``.

    Args:
        pipeline: The env's pipeline.
        peak_rps: The rate to serve, fixed beforehand (the training data's peak, or the
            env's configured rate scale); never the evaluated window's.
        max_replicas: The cap per stage.

    Returns:
        One replica count per stage.
    """
    out = []
    for stage in pipeline.stages:
        b = stage.batch_sizes[0]
        v = min(range(len(stage.variants)), key=lambda i, s=stage: s.variants[i].accuracy)
        need = min_replicas(stage, StageDecision(v, b, 1, stage.variants[v].base_cores),
                            peak_rps)
        out.append(min(need, max_replicas))
    return tuple(out)
