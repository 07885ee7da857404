"""An LLM replica's latency and power as functions of its request rate (the planner's and
the fluid models' description of a continuously batched stage).

The numbers are measured on the continuous-batching simulator by
`envs.serving.load_table.load_table` (Poisson arrivals at fractions of the replica's
saturated rate); here they are only held and read. Between loads they are interpolated
linearly; at or above the largest load there is no answer (`LoadTable.p99_at` is inf: a
planner must not plan there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadTable:
    """Per load fraction of one replica: latency quantiles and mean power.

    Attributes:
        saturated_rps: The replica's request rate at saturation (``R(limit) / mean
            output``).
        loads: Load fractions, increasing.
        p99_ms: p99 time in the replica at each load.
        mean_ms: Mean time in the replica at each load.
        power_w: Mean power of the replica at each load (idle included).
    """

    saturated_rps: float
    loads: np.ndarray
    p99_ms: np.ndarray
    mean_ms: np.ndarray
    power_w: np.ndarray

    def _at(self, values: np.ndarray, rate_rps: float) -> float:
        load = rate_rps / self.saturated_rps
        if load >= self.loads[-1]:
            return float("inf")
        return float(np.interp(load, self.loads, values))

    def p99_at(self, rate_rps: float) -> float:
        """p99 time in the replica at a request rate (inf at or above the last load).

        Args:
            rate_rps: Requests per second to the replica.
        """
        return self._at(self.p99_ms, rate_rps)

    def mean_at(self, rate_rps: float) -> float:
        """Mean time in the replica at a request rate (inf at or above the last load).

        Args:
            rate_rps: Requests per second to the replica.
        """
        return self._at(self.mean_ms, rate_rps)

    def power_at(self, rate_rps: float) -> float:
        """Mean power of the replica at a request rate (inf at or above the last load).

        Args:
            rate_rps: Requests per second to the replica.
        """
        return self._at(self.power_w, rate_rps)

    def max_rate(self, p99_budget_ms: float) -> float:
        """The largest request rate whose p99 stays within a budget (0 if none).

        Args:
            p99_budget_ms: The stage's share of the SLA.
        """
        ok = self.p99_ms <= p99_budget_ms
        if not ok[0]:
            return 0.0
        k = int(np.argmin(ok)) if not ok.all() else len(ok)
        if k == len(ok):
            return float(self.loads[-1] * self.saturated_rps)
        lo, hi = self.loads[k - 1], self.loads[k]
        frac = (p99_budget_ms - self.p99_ms[k - 1]) / (self.p99_ms[k] - self.p99_ms[k - 1])
        return float((lo + (hi - lo) * frac) * self.saturated_rps)
