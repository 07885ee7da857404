"""`BatchStats`: the `IntervalStats` of N batched envs, field by field, as arrays."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from envs.backends.base import IntervalStats


@dataclass(frozen=True)
class BatchStats:
    """`IntervalStats` of N envs, field by field: ``(envs,)`` or ``(envs, stages)`` arrays."""

    seconds: float
    arrived: np.ndarray
    served: np.ndarray
    dropped: np.ndarray
    sla_violations: np.ndarray
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    accuracy_rank_sum: np.ndarray
    accuracy_product: np.ndarray
    cores: np.ndarray
    cost_core_s: np.ndarray
    energy_j: np.ndarray
    static_j: np.ndarray
    idle_j: np.ndarray
    dynamic_j: np.ndarray
    stage_utilisation: np.ndarray
    stage_queue: np.ndarray
    stage_dropped: np.ndarray
    stage_p99_ms: np.ndarray
    stage_loading: np.ndarray
    stage_oldest_wait_s: np.ndarray
    pool_booting: np.ndarray
    pool_powered: np.ndarray

    @cached_property
    def sla_violation_rate(self) -> np.ndarray:
        """`IntervalStats.sla_violation_rate` of every env (computed once, then kept)."""
        arrived = self.arrived
        return np.where(arrived > 0, self.sla_violations / np.maximum(arrived, 1), 0.0)

    @cached_property
    def power_w(self) -> np.ndarray:
        """`IntervalStats.power_w` of every env (computed once, then kept)."""
        return self.energy_j / self.seconds if self.seconds else np.zeros(len(self.energy_j))

    def per_env(self, energy_estimated: bool, energy_method: str) -> list[IntervalStats]:
        """Each env's `IntervalStats`, field for field (every figure is derived above, in
        array form, as `envs.backends.stats.interval_stats` derives it for one env).

        Args:
            energy_estimated: Whether the energy figures are estimates.
            energy_method: How they were obtained (the simulators' power model).

        Returns:
            One `IntervalStats` per env, in env order.
        """
        names = [f.name for f in fields(self) if f.name != "seconds"]
        columns = [[tuple(row) if isinstance(row, list) else row
                    for row in getattr(self, name).tolist()] for name in names]
        return [IntervalStats(seconds=self.seconds, energy_estimated=energy_estimated,
                              energy_method=energy_method, **dict(zip(names, row, strict=True)))
                for row in zip(*columns, strict=True)]
