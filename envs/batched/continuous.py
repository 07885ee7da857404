"""The fluid rule of a continuously batched LLM stage (`FluidBackend._continuous_second`)
for N envs at once: each second's p99, mean and power above idle of the stage's
replicas, read from the current configuration's load tables at the second's load per
replica, with the same operations in the same order as the scalar rule
(`envs.model.continuous_perf.replica_second`)."""

from __future__ import annotations

import numpy as np

from envs.model import continuous_perf
from envs.model.spec import Pipeline


class ContinuousTables:
    """Per (stage, variant, knob index) of the continuously batched stages: the saturated
    rate and the arrays `replica_second` interpolates in."""

    def __init__(self, pipeline: Pipeline) -> None:
        """Collect the tables.

        Args:
            pipeline: The pipeline (its continuously batched stages are read).
        """
        self.stages = [k for k, s in enumerate(pipeline.stages)
                       if continuous_perf.is_continuous(s)]
        self.configs: dict[tuple[int, int, int], tuple[float, np.ndarray, np.ndarray,
                                                         np.ndarray, np.ndarray, np.ndarray,
                                                         float]] = {}
        for k in self.stages:
            stage = pipeline.stages[k]
            for v, variant in enumerate(stage.variants):
                idle = variant.continuous.idle_w
                for bi, cap in enumerate(stage.batch_sizes):
                    t = continuous_perf.table(variant, cap)
                    self.configs[(k, v, bi)] = (
                        t.saturated_rps, t.loads, t.p99_ms, t.mean_ms,
                        np.concatenate([[0.0], t.loads]), np.concatenate([[idle], t.power_w]),
                        idle)

    def seconds(self, k: int, cur_v: np.ndarray, cur_bi: np.ndarray, capacity: np.ndarray,
                served: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """p99 ms, mean ms and the stage's power above idle (W) of each (env, second).

        Args:
            k: The stage.
            cur_v: ``(envs,)`` current variant of the stage.
            cur_bi: ``(envs,)`` current knob index.
            capacity: ``(envs, seconds)`` the stage's capacity (requests/s).
            served: ``(envs, seconds)`` requests it served.
        """
        p99 = np.zeros(capacity.shape)
        mean = np.zeros(capacity.shape)
        dynamic_w = np.zeros(capacity.shape)
        for v, bi in set(zip(cur_v.tolist(), cur_bi.tolist(), strict=True)):
            sat, loads, p99_ms, mean_ms, p_loads, p_watts, idle = self.configs[(k, v, bi)]
            rows = (cur_v == v) & (cur_bi == bi)
            replicas = capacity[rows] / sat
            on = replicas > 0.0
            per_replica = np.where(on, served[rows] / np.where(on, replicas, 1.0), 0.0)
            load = np.minimum(np.maximum(per_replica, 0.0) / sat, float(loads[-1]))
            watts = np.interp(load, p_loads, p_watts)
            p99[rows] = np.where(on, np.interp(load, loads, p99_ms), 0.0)
            mean[rows] = np.where(on, np.interp(load, loads, mean_ms), 0.0)
            dynamic_w[rows] = np.where(on, replicas * (watts - idle), 0.0)
        return p99, mean, dynamic_w
