"""`MPCPolicy`: IPA's adapter with a receding horizon (`ipa_baseline.mpc.solve_mpc`).

Each interval it forecasts ``horizon`` rates, plans that many intervals with IPA's ILP plus
the cost of loading new replicas (from the env's cold-start model), applies the first
interval's decision and plans again next interval from the decision then in force.

Forecast: the env's predictors (reactive, LSTM) and the observation give one value, the
rate of the next interval, and ``oracle`` reads only the next interval's true rates
(`PipelineEnv.upcoming_rates`); so `forecast_rates` holds that one value across the
horizon (`IPAPolicy.forecast_rps`, for every ``forecast`` option). A subclass with a
multi-step forecaster overrides `forecast_rates`.

When the horizon's program is infeasible (some interval's rate cannot be served), the
policy decides as `IPAPolicy` does for the first rate (the ILP, else IPA's keep rule or the
documented fallback) and counts it in ``myopic``.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from agents.policies.ipa import Forecast, IPAPolicy
from envs.model.spec import Decision
from ipa_baseline.candidates import AccuracyMode, ReplicasMode
from ipa_baseline.errors import InfeasibleError
from ipa_baseline.mpc import MpcResult, check_mpc_args, solve_mpc
from ipa_baseline.rules import IpaRules

__all__ = ["MPCPolicy"]


class MPCPolicy(IPAPolicy):
    """IPA's ILP over ``horizon`` intervals with a switching cost; the first step applied.

    Attributes:
        horizon: Intervals planned at each decision.
        discount: Factor per interval on the plan's objective.
        switch_weight: Objective cost per added replica, beyond its loading energy.
        replica_mode: ``free`` (replicas may be kept above need) or ``minimal``.
        last_plan: The last `MpcResult` (None after a myopic decision).
        myopic: Decisions made by `IPAPolicy.decide` because the horizon was infeasible.
    """

    def __init__(
        self, env: gym.Env, mode: AccuracyMode = "sum", alpha: float = 2.0, beta: float = 1.0,
        gamma: float = 1e-6, delta: float = 0.0, forecast: Forecast = "predictor", *,
        horizon: int = 3, discount: float = 1.0, switch_weight: float = 0.0,
        replica_mode: ReplicasMode = "free", use_batch_timeout: bool = False,
        rules: IpaRules | None = None,
    ) -> None:
        """Create the policy.

        Args:
            env: A `PipelineEnv` (wrappers allowed).
            mode: IPA's accuracy mode, ``sum`` or ``product``.
            alpha: Weight of accuracy.
            beta: Weight of allocated cores.
            gamma: Weight of the sum of batch sizes.
            delta: Weight of energy in joules (interval and loading energy).
            forecast: ``predictor``, ``oracle`` or ``reactive`` (`IPAPolicy`), held over
                the horizon.
            horizon: Intervals planned (>= 1).
            discount: Factor per interval, in (0, 1].
            switch_weight: Objective cost per added replica (>= 0).
            replica_mode: ``free`` or ``minimal`` (`solve_mpc`).
            use_batch_timeout: Cap the batch-fill delay at the env's batch timeout.
            rules: IPA's rules (`ipa_baseline.rules`); None: the package defaults.

        Raises:
            ConfigError: A bad horizon, discount or switching weight, or any of
                `IPAPolicy`'s errors.
        """
        check_mpc_args(horizon, discount, switch_weight=switch_weight)
        super().__init__(env, mode, alpha, beta, gamma, delta, forecast,
                         use_batch_timeout=use_batch_timeout, rules=rules)
        self.horizon = horizon
        self.discount = discount
        self.switch_weight = switch_weight
        self.replica_mode: ReplicasMode = replica_mode
        self.last_plan: MpcResult | None = None
        self.myopic = 0

    def reset(self) -> None:
        """Forget the last plan (a new episode starts)."""
        self.last_plan = None

    def forecast_rates(self, obs: np.ndarray) -> tuple[float, ...]:
        """One rate per interval of the horizon: the single forecast, held.

        Args:
            obs: The observation.

        Returns:
            ``horizon`` rates (requests/s).
        """
        return (max(0.0, self.forecast_rps(obs)),) * self.horizon

    def decide(self, obs: np.ndarray) -> Decision:
        """Plan the horizon from the decision in force; apply its first step.

        Args:
            obs: The observation.

        Returns:
            The plan's first decision, or `IPAPolicy`'s when the horizon is infeasible.
        """
        start = time.perf_counter()
        env = self.env
        settings = env.settings
        try:
            self.last_plan = solve_mpc(
                self.plan_pipeline, self.forecast_rates(obs), env.decision,
                horizon=self.horizon, mode=self.mode, **self.weights,
                max_replicas=env.config.max_replicas, interval_s=env.config.interval_s,
                timeout_ms=self.timeout_ms, replica_mode=self.replica_mode,
                restriction=self.restriction, discount=self.discount,
                switch_weight=self.switch_weight, cold_start_s=settings.cold_start_s,
                model_load_scale=settings.model_load_scale, nodes_on=env.powered_nodes())
        except InfeasibleError as err:
            self.last_plan, self.last_error = None, err
            self.myopic += 1
            decision = super().decide(obs)
            self.decision_times_ms[-1] = (time.perf_counter() - start) * 1e3
            return decision
        self.last_result = None
        self.decision_times_ms.append((time.perf_counter() - start) * 1e3)
        return self.last_plan.decision
