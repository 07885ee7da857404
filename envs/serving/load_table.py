"""An LLM replica's latency and power as functions of its request rate, measured on the
continuous-batching simulator: the one description a planner and the fluid models read.

For a (curve, cap, length distribution), the table drives `serve_replica` with Poisson
arrivals at fractions of the replica's saturated request rate (``R(limit)`` over the mean
output length) and records, per load, the p99 and mean of the requests' time in the
replica (queue included) and the replica's mean power. Every load uses the same uniform
numbers for the gaps and the lengths (common random numbers), so the table is smooth in
the load; the lengths are drawn stratified, so their mean is the distribution's. Between
loads it is interpolated linearly; at or above the largest load it has no answer
(`LoadTable.p99_at` is inf: a planner must not plan there).
"""

from __future__ import annotations

import numpy as np

from envs.config.errors import ConfigError
from envs.model.llm_curve import LlmCurve
from envs.model.load_table import LoadTable
from envs.serving.continuous_batching import serve_replica
from envs.workload.lengths import TokenLengths

LOADS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 5 % .. 95 % of saturation


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
    # stratified: one uniform in each of n equal slices, shuffled, so the lengths' mean (and
    # with it the saturated rate) is the distribution's, not one sample's
    _, tokens = lengths.draw((rng.permutation(requests) + rng.random(requests)) / requests)
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
