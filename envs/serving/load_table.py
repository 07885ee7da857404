"""An LLM replica's latency and power as functions of its request rate, measured on the
continuous-batching simulator: the one description a planner and the fluid models read.

For a (curve, cap, length distribution), the table drives `serve_replica` with Poisson
arrivals at fractions of the replica's saturated request rate (``R(limit)`` over the mean
output length) and records, per load, the p99 and mean of the requests' time in the
replica (queue included) and the replica's mean power. Every load uses the same uniform
numbers for the gaps and the lengths (common random numbers), so the table is smooth in
the load. Between loads it is interpolated linearly; at or above the largest load it
has no answer (`LoadTable.p99_ms` is inf: a planner must not plan there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config.errors import ConfigError
from envs.serving.continuous_batching import serve_replica
from envs.serving.llm_curve import LlmCurve
from envs.workload.lengths import TokenLengths

LOADS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 5 % .. 95 % of saturation


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


def load_table(curve: LlmCurve, cap: int, lengths: TokenLengths, requests: int = 40_000,
               seed: int = 0, loads: tuple[float, ...] = LOADS) -> LoadTable:
    """Measure a replica's load table on the simulator.

    Args:
        curve: The replica's curve.
        cap: The cap in use.
        lengths: Output lengths of its requests.
        requests: Requests per load (the first tenth warm the replica up and are not
            counted).
        seed: Seed of the arrival gaps and the lengths.
        loads: Load fractions of the saturated rate, increasing, in (0, 1).

    Raises:
        ConfigError: Loads outside (0, 1) or not increasing, or fewer than 100 requests.
    """
    grid = np.asarray(loads, dtype=float)
    if grid.size < 2 or np.any(np.diff(grid) <= 0) or grid[0] <= 0 or grid[-1] >= 1:
        raise ConfigError(f"load fractions {loads} must increase within (0, 1), at least two")
    if requests < 100:
        raise ConfigError(f"requests={requests}: a load table needs at least 100 per load")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, requests)  # unit-rate gaps, scaled per load
    _, tokens = lengths.draw(rng.random(requests))
    limit = curve.running_limit(cap)
    saturated = curve.tokens_per_s(limit) / float(np.mean(tokens))
    counted = slice(requests // 10, None)
    p99, mean, watts = [], [], []
    for load in grid:
        arrivals = np.cumsum(gaps) / (load * saturated)
        warm_end = float(arrivals[counted.start])
        warm = serve_replica(curve, cap, arrivals, tokens, end_s=warm_end)
        run = serve_replica(curve, cap, arrivals, tokens, end_s=float(arrivals[-1]))
        done = serve_replica(curve, cap, arrivals, tokens)
        sojourn_ms = (done.finished_s - arrivals)[counted] * 1e3
        p99.append(float(np.percentile(sojourn_ms, 99)))
        mean.append(float(np.mean(sojourn_ms)))
        watts.append((run.energy_j - warm.energy_j) / (run.seconds - warm.seconds))
    return LoadTable(saturated, grid, np.array(p99), np.array(mean), np.array(watts))
