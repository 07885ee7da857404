"""The ILP's candidates of a continuously batched LLM stage: one per (variant, cap, replica
count), because such a stage's latency depends on each replica's load.

A candidate fixes its replica count (``replicas_lo == replicas_hi``), so the one-interval
model stays linear: its latency is `envs.model.continuous_perf.latency_ms` at
``rate / replicas`` (the p99 the request-level simulator measures for that load), its
dynamic energy `continuous_perf.stage_dynamic_w` times the interval, all of it in
``energy_fixed_j`` (its GPUs' idle power is the powered nodes', `ipa_baseline.ilp`).
Configurations loaded at or above the tables' largest load (95 % of saturation) are left
out (their latency is infinite).
"""

from __future__ import annotations

from envs.model import continuous_perf, node_power
from envs.model.spec import Pipeline
from ipa_baseline.candidates import (
    AccuracyMode,
    Candidate,
    Restriction,
    accuracy_terms,
    replica_cost,
)


def continuous_candidates(
    pipeline: Pipeline, stage_index: int, rate_rps: float, *, mode: AccuracyMode,
    max_replicas: int, interval_s: float, restriction: Restriction,
) -> list[Candidate]:
    """Every (variant, cap, replicas) candidate of a continuously batched stage.

    Args:
        pipeline: The pipeline.
        stage_index: The stage's index.
        rate_rps: The predicted arrival rate.
        mode: The accuracy term (see `accuracy_terms`).
        max_replicas: The replica limit per stage.
        interval_s: The interval length (seconds), over which energy is counted.
        restriction: The baseline's restriction (allowed variants, fixed replicas).

    Returns:
        The candidates; where none reaches the rate within ``max_replicas``, one per
        (variant, cap) marked infeasible (``replicas_lo > replicas_hi``) so that the
        infeasibility check can name the stage.
    """
    stage = pipeline.stages[stage_index]
    acc = accuracy_terms(stage, mode)
    fixed = restriction.fixed_replicas(stage_index)
    out = []
    for v in restriction.allowed_variants(stage_index, stage):
        variant = stage.variants[v]
        c = variant.base_cores
        for cap in stage.batch_sizes:
            need = continuous_perf.fewest_replicas(variant, cap, rate_rps)
            most = node_power.pool_replica_limit(pipeline, variant, c, max_replicas)
            counts = [fixed] if fixed is not None else range(need, most + 1)
            base = dict(stage=stage_index, variant=v, batch=cap, cores=c, accuracy=acc[v],
                        replica_rps=continuous_perf.planned_rps(variant, cap),
                        energy_per_replica_j=0.0, cores_per_replica=c, pool=variant.pool,
                        cost_per_replica=replica_cost(pipeline, variant, c))
            added = False
            for r in counts:
                if r < need or r > most:
                    continue
                watts = continuous_perf.stage_dynamic_w(variant, cap, r, rate_rps)
                out.append(Candidate(
                    **base, replicas_lo=r, replicas_hi=r,
                    latency_ms=continuous_perf.latency_ms(variant, cap, r, rate_rps),
                    energy_fixed_j=watts * interval_s))
                added = True
            if not added:
                out.append(Candidate(**base, replicas_lo=need,
                                     replicas_hi=min(need - 1, fixed or most),
                                     latency_ms=float("inf"), energy_fixed_j=0.0))
    return out
