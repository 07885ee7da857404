"""The energy-aware ILP at IPA's accuracy: each interval, IPA($) decides first (its ILP, its
cost in dollars); then the ILP minimises the interval's energy among the decisions whose every
stage runs a variant of the accuracy IPA chose (the same model, on any device pool), at the
same SLA and planning margins.

It measures what energy-awareness saves at equal quality per interval, the comparison of
issue 24 ("the energy-aware ILP's energy over IPA($)'s at IPA's SLA and accuracy"): the
levers left are the device type, the batch or concurrency cap, the replicas and how they pack
onto powered nodes. Where IPA's ILP is infeasible, IPA's own rule decides (keep or fall back).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.policies.ipa import IPAPolicy
from envs.model.spec import Decision
from ipa_baseline.errors import InfeasibleError
from ipa_baseline.ilp import solve_ipa
from ipa_baseline.restriction import Restriction

ENERGY_WEIGHT = 1e-4
"""Weight of the interval's joules in the second solve (its only objective besides IPA's
tiny batch term, so its value only scales the objective for the solver's tolerances)."""


class MatchedEnergyPolicy(IPAPolicy):
    """IPA($)'s accuracy, the least energy (module docstring).

    Attributes:
        matched: Intervals decided by the energy solve (the rest followed IPA's rule).
    """

    def __init__(self, env: gym.Env, **kwargs: Any) -> None:
        """Create the policy; ``kwargs`` are `IPAPolicy`'s (IPA's weights, mode and rules).

        Args:
            env: A `PipelineEnv`.
            **kwargs: `IPAPolicy`'s arguments (``delta`` is IPA's own, normally 0).
        """
        super().__init__(env, **kwargs)
        self.matched = 0

    def decide(self, obs: np.ndarray) -> Decision:
        """IPA's decision, then the least-energy one at its accuracy.

        Args:
            obs: The observation.

        Returns:
            The decision.
        """
        ipa = super().decide(obs)
        if self.last_result is None:
            return ipa
        env = self.env
        same = tuple(
            tuple(k for k, v in enumerate(stage.variants)
                  if v.accuracy == stage.variants[c.variant].accuracy)
            for stage, c in zip(env.pipeline.stages, ipa.stages, strict=True))
        try:
            result = solve_ipa(
                self.plan_pipeline, self.forecast_rps(obs), mode=self.mode, alpha=0.0,
                beta=0.0, gamma=self.weights["gamma"], delta=ENERGY_WEIGHT,
                max_replicas=env.config.max_replicas, interval_s=env.config.interval_s,
                timeout_ms=self.timeout_ms, restriction=Restriction(variants=same),
                nodes_on=env.powered_nodes())
        except InfeasibleError:
            return ipa
        self.matched += 1
        return result.decision
