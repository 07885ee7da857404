"""Per-configuration numbers of a pipeline from `envs.model.perf`, as arrays the batched
simulator indexes (built once per pipeline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.model import continuous_perf, perf, power
from envs.model.spec import Pipeline


@dataclass(frozen=True)
class Tables:
    """Per-configuration numbers of a pipeline from `envs.model.perf`, indexed
    ``[stage, variant, batch index]`` (variants and batch indices padded to the widest
    stage; the action space never reaches the padding).

    Cores per replica are each variant's base allocation (what `PipelineEnv` decodes);
    ``pool[stage, variant]`` is the variant's device pool.
    ``batch_sizes[stage, batch index]`` is the stage's batch size, ``n_batches[stage]``
    how many it has. ``capacity_rps`` is what a replica serves in the fluid model: the
    throughput, or for a continuously batched stage its saturated rate
    (`envs.model.continuous_perf`; ``throughput_rps`` stays the rows', as the observation
    reads it).
    """

    batch_sizes: np.ndarray
    n_batches: np.ndarray
    capacity_rps: np.ndarray
    n_variants: np.ndarray
    cores: np.ndarray
    pool: np.ndarray
    rank: np.ndarray
    accuracy_frac: np.ndarray
    throughput_rps: np.ndarray
    p99_ms: np.ndarray
    mean_ms: np.ndarray
    energy_full_j: np.ndarray
    energy_by_batch: np.ndarray

    @staticmethod
    def for_pipeline(pipeline: Pipeline) -> Tables:
        """Fill the tables by calling the scalar `envs.model.perf` functions.

        Args:
            pipeline: The profiled pipeline.

        Returns:
            Its tables.
        """
        n_s = len(pipeline.stages)
        n_v = max(len(s.variants) for s in pipeline.stages)
        n_b = max(len(s.batch_sizes) for s in pipeline.stages)
        sizes = np.array([s.batch_sizes + (s.batch_sizes[-1],) * (n_b - len(s.batch_sizes))
                          for s in pipeline.stages], dtype=np.int64)
        max_b = max(v.profile.max_batch(v.base_cores) for s in pipeline.stages
                    for v in s.variants)
        shape = (n_s, n_v, n_b)
        tp, p99, mean, e_full, capacity = (np.ones(shape) for _ in range(5))
        cores = np.ones((n_s, n_v), dtype=np.int64)
        pool = np.zeros((n_s, n_v), dtype=np.int64)
        rank, acc = np.zeros((n_s, n_v)), np.ones((n_s, n_v))
        by_batch = np.zeros((n_s * n_v, max_b + 1))
        for s, stage in enumerate(pipeline.stages):
            continuous = continuous_perf.is_continuous(stage)
            for v, variant in enumerate(stage.variants):
                c = variant.base_cores
                cores[s, v] = c
                pool[s, v] = variant.pool
                rank[s, v] = stage.accuracy_ranks[v]
                acc[s, v] = variant.accuracy / 100.0
                for bi, b in enumerate(stage.batch_sizes):
                    tp[s, v, bi] = perf.replica_throughput_rps(variant, b, c)
                    capacity[s, v, bi] = (continuous_perf.saturated_rps(variant, b)
                                          if continuous else tp[s, v, bi])
                    p99[s, v, bi] = perf.batch_latency_p99_ms(variant, b, c)
                    mean[s, v, bi] = perf.batch_latency_mean_ms(variant, b, c)
                    e_full[s, v, bi] = power.energy_per_request_j(variant, b, c)
                for k in range(1, variant.profile.max_batch(c) + 1):
                    by_batch[s * n_v + v, k] = power.batch_energy_j(variant, k, c)
        return Tables(sizes, np.array([len(s.batch_sizes) for s in pipeline.stages]), capacity,
                      np.array([len(s.variants) for s in pipeline.stages]), cores, pool, rank,
                      acc, tp, p99, mean, e_full, by_batch)
