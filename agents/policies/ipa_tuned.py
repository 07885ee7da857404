"""``ipa_tuned``: IPA's adapter with the headroom a practitioner would tune.

IPA plans each interval for its forecast alone, so a forecast that is low, or a queue left
by the last interval, shows up as SLA violations. `TunedIPAPolicy` plans for

    rate = headroom x forecast + backlog / interval_s

where ``backlog`` is the largest stage queue the observation shows (requests still waiting
at the interval's end, to be served within the next interval beside the new arrivals).
The ILP and everything else are IPA's (`agents.policies.ipa.IPAPolicy`); the headroom is
tuned on validation days, like HPA's utilisation target
(`agents.evaluation.compare.tune_baselines`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.policies.ipa import IPAPolicy
from envs.config.errors import ConfigError

__all__ = ["TunedIPAPolicy"]


class TunedIPAPolicy(IPAPolicy):
    """IPA planning for ``headroom x forecast + backlog rate``.

    Attributes:
        headroom: Factor over the forecast (1.0 with no backlog is IPA).
    """

    def __init__(self, env: gym.Env, headroom: float = 1.0, **kwargs: Any) -> None:
        """Create the policy.

        Args:
            env: A `PipelineEnv`.
            headroom: Factor (>= 1) over the forecast.
            **kwargs: `IPAPolicy`'s arguments (weights, forecast source, batch timeout).

        Raises:
            ConfigError: headroom below 1.
        """
        if not headroom >= 1.0:
            raise ConfigError(f"ipa_tuned headroom must be >= 1, got {headroom}; a factor "
                              "below 1 plans for less than the forecast")
        super().__init__(env, **kwargs)
        self.headroom = float(headroom)

    def backlog_rps(self, obs: np.ndarray) -> float:
        """The largest stage queue in the observation, as a rate over one interval.

        Args:
            obs: The observation.

        Returns:
            Requests/s that clear the largest queue within one interval.
        """
        layout = self.env.layout
        return max(layout.queue_rps(obs, i) for i in range(layout.n_stages))

    def forecast_rps(self, obs: np.ndarray) -> float:
        """``headroom x`` IPA's forecast ``+`` the backlog rate.

        Args:
            obs: The observation.

        Returns:
            The planned rate (requests/s).
        """
        return self.headroom * super().forecast_rps(obs) + self.backlog_rps(obs)
