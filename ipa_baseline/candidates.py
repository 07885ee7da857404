"""The candidates of IPA's ILP: every (variant, batch, cores) of every stage, with the
coefficients the model needs, each obtained by calling `envs.model.perf`.

This module also diagnoses infeasibility exactly, before any solver runs. The ILP's two
coupling-free constraint families make this possible: throughput binds each stage on its
own, and the latency SLA is a sum of per-stage terms, so the problem is feasible if and only
if every stage has a candidate that reaches the rate within the replica limit and the sum of
the stages' fastest such candidates is within the SLA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from envs.config.errors import ConfigError
from envs.model import node_power, perf, power
from envs.model.spec import ModelVariant, Pipeline, Stage, StageDecision
from ipa_baseline.errors import InfeasibleError
from ipa_baseline.restriction import Restriction

AccuracyMode = Literal["sum", "product"]
CoresMode = Literal["base", "profiled"]
ReplicasMode = Literal["minimal", "free"]


@dataclass(frozen=True)
class Candidate:
    """One (variant, batch, cores) of one stage and its linear coefficients.

    Attributes:
        stage: Stage index.
        variant: Variant index within the stage.
        batch: Batch size.
        cores: Cores per replica.
        replica_rps: `perf.replica_throughput_rps`.
        latency_ms: `perf.stage_latency_ms` at the predicted rate (p99 + batch fill).
        replicas_lo: Fewest replicas the model allows when chosen.
        replicas_hi: Most replicas the model allows when chosen.
        accuracy: The accuracy term: rank-normalised accuracy (``sum``) or the accuracy
            as a fraction (``product``).
        energy_fixed_j: Energy over the interval that does not scale with replicas
            (beyond the powered nodes: `ipa_baseline.ilp.add_powered_nodes`).
        energy_per_replica_j: Energy over the interval added by each replica.
        cores_per_replica: `perf.stage_cores` of one replica.
        pool: Index of the device pool its replicas run on.
        cost_per_replica: IPA's cost of one replica: its devices x its pool's price per
            device-hour (the device count where the price is 1).
    """

    stage: int
    variant: int
    batch: int
    cores: int
    replica_rps: float
    latency_ms: float
    replicas_lo: int
    replicas_hi: int
    accuracy: float
    energy_fixed_j: float
    energy_per_replica_j: float
    cores_per_replica: int
    pool: int
    cost_per_replica: float

    def choice(self, replicas: int) -> StageDecision:
        """The stage decision of this candidate with ``replicas`` replicas.

        Args:
            replicas: The replica count the ILP chose.

        Returns:
            The `StageDecision`.
        """
        return StageDecision(self.variant, self.batch, replicas, self.cores)


def min_replicas(stage: Stage, choice: StageDecision, rate_rps: float) -> int:
    """Fewest replicas whose `perf.stage_throughput_rps` reaches ``rate_rps`` (at least 1).

    Args:
        stage: The stage.
        choice: Its variant, batch and cores (the replica count is ignored).
        rate_rps: The rate to serve.

    Returns:
        The replica count (`perf.replicas_for_rate`).
    """
    return perf.replicas_for_rate(stage.variants[choice.variant], choice.batch, choice.cores,
                                  rate_rps)


def accuracy_terms(stage: Stage, mode: AccuracyMode) -> tuple[float, ...]:
    """Per-variant accuracy term: IPA's rank (``sum``) or the accuracy as a fraction,
    accuracy / 100 (``product``: the ILP multiplies these across stages exactly).

    Args:
        stage: The stage.
        mode: ``sum`` or ``product``.

    Returns:
        One term per variant, in the stage's variant order.

    Raises:
        ConfigError: An unknown mode, or ``product`` with a non-positive accuracy.
    """
    if mode == "sum":
        return stage.accuracy_ranks
    if mode == "product":
        bad = [v.name for v in stage.variants if v.accuracy <= 0]
        if bad:
            raise ConfigError(
                f"accuracy mode 'product' needs positive accuracies; stage {stage.name!r} "
                f"has {bad} (a negated error rate?); use mode='sum'")
        return tuple(v.accuracy / 100.0 for v in stage.variants)
    raise ConfigError(f"accuracy mode must be 'sum' or 'product', got {mode!r}")


def stage_candidates(
    pipeline: Pipeline, stage_index: int, rate_rps: float, *, mode: AccuracyMode,
    max_replicas: int, interval_s: float, timeout_ms: float, cores: CoresMode,
    replica_mode: ReplicasMode, restriction: Restriction,
) -> list[Candidate]:
    """Every candidate of one stage, feasible or not (``replicas_lo > replicas_hi`` or an
    infinite latency marks an infeasible one).

    Args:
        pipeline: The pipeline.
        stage_index: The stage's index.
        rate_rps: The predicted arrival rate.
        mode: The accuracy term (see `accuracy_terms`).
        max_replicas: The replica limit per stage.
        interval_s: The interval length (seconds), over which energy is counted.
        timeout_ms: The batch timeout (ms), for latency and energy.
        cores: ``base`` (each variant's base cores) or ``profiled`` (every profiled count).
        replica_mode: ``minimal`` (exactly the fewest replicas that reach the rate) or
            ``free`` (from those up to ``max_replicas``).
        restriction: The baseline's restriction (allowed variants, fixed replicas).

    Returns:
        One `Candidate` per allowed variant, profiled batch size and core count.

    Raises:
        ConfigError: A bad accuracy mode (see `accuracy_terms`).
    """
    stage = pipeline.stages[stage_index]
    acc = accuracy_terms(stage, mode)
    fixed = restriction.fixed_replicas(stage_index)
    requests = rate_rps * interval_s
    out = []
    for v in restriction.allowed_variants(stage_index, stage):
        variant = stage.variants[v]
        core_counts = (variant.base_cores,) if cores == "base" else variant.profile.core_counts
        for c in core_counts:
            for b in stage.batch_sizes:
                if not variant.profile.has(b, c):
                    continue
                one = StageDecision(v, b, 1, c)
                need = min_replicas(stage, one, rate_rps)
                most = node_power.pool_replica_limit(pipeline, variant, perf.stage_cores(one),
                                                     max_replicas)
                if fixed is not None:
                    lo, hi = (fixed, fixed) if need <= min(fixed, most) else (need, fixed)
                elif replica_mode == "minimal":
                    lo, hi = need, (need if need <= most else most)
                else:
                    lo, hi = need, most  # valid cut: the chosen r must reach the rate
                e1 = power.stage_interval_energy_j(pipeline, stage, one, requests, interval_s,
                                                  timeout_ms)
                e2 = power.stage_interval_energy_j(pipeline, stage, StageDecision(v, b, 2, c),
                                                  requests, interval_s, timeout_ms)
                out.append(Candidate(
                    stage=stage_index, variant=v, batch=b, cores=c,
                    replica_rps=perf.replica_throughput_rps(variant, b, c),
                    latency_ms=perf.stage_latency_ms(variant, b, c, rate_rps, timeout_ms),
                    replicas_lo=lo, replicas_hi=hi, accuracy=acc[v],
                    energy_fixed_j=2.0 * e1 - e2, energy_per_replica_j=e2 - e1,
                    cores_per_replica=perf.stage_cores(one), pool=variant.pool,
                    cost_per_replica=replica_cost(pipeline, variant, perf.stage_cores(one)),
                ))
    return out


def replica_cost(pipeline: Pipeline, variant: ModelVariant, devices: int) -> float:
    """IPA's cost of one replica: its devices x its pool's price per device-hour.

    Args:
        pipeline: The pipeline (the variant's pool).
        variant: The variant.
        devices: Devices of one replica.

    Returns:
        The cost (dollars per hour; devices where the price is 1).
    """
    return devices * pipeline.pool_of(variant).price_per_device_hour


def reaches_rate(cand: Candidate) -> bool:
    """Whether the candidate reaches the rate within its replica limit.

    Args:
        cand: A candidate from `stage_candidates`.

    Returns:
        True when ``replicas_lo <= replicas_hi``.
    """
    return cand.replicas_lo <= cand.replicas_hi


def usable(cand: Candidate) -> bool:
    """Whether the candidate can be part of a feasible decision on its own.

    Args:
        cand: A candidate from `stage_candidates`.

    Returns:
        True when it reaches the rate and its latency is finite.
    """
    return reaches_rate(cand) and math.isfinite(cand.latency_ms)


def _name(pipeline: Pipeline, cand: Candidate) -> str:
    stage = pipeline.stages[cand.stage]
    return f"{stage.variants[cand.variant].name} b{cand.batch} ({cand.cores}c)"


def check_feasible(
    pipeline: Pipeline, cands: Sequence[Sequence[Candidate]], rate_rps: float,
    max_replicas: int, restriction: Restriction,
) -> None:
    """Raise InfeasibleError, naming the binding constraint, when no decision is feasible.

    Args:
        pipeline: The pipeline.
        cands: Per stage, every candidate from `stage_candidates`.
        rate_rps: The predicted arrival rate.
        max_replicas: The replica limit per stage.
        restriction: The baseline's restriction (for the message).

    Raises:
        InfeasibleError: A stage has no candidate or none that reaches the rate
            (``throughput``), or the fastest usable candidates exceed the SLA (``latency``).
    """
    fastest: list[Candidate] = []
    for s, stage_cands in enumerate(cands):
        stage = pipeline.stages[s]
        if not stage_cands:
            raise InfeasibleError(f"stage {stage.name!r} has no profiled candidate at the "
                                  "allowed variants, batch sizes and cores", "throughput",
                                  stage.name)
        ok = [c for c in stage_cands if usable(c)]
        if not ok:
            best = max(stage_cands, key=lambda c: c.replica_rps)
            fixed = restriction.fixed_replicas(s)
            limit = fixed if fixed is not None else max_replicas
            what = f"the fixed {fixed} replicas" if fixed is not None else (
                f"max_replicas={max_replicas} and its device pool's size")
            raise InfeasibleError(
                f"throughput: stage {stage.name!r} cannot serve {rate_rps:.1f} rps within "
                f"{what}: its highest-throughput candidate {_name(pipeline, best)} serves "
                f"{best.replica_rps:.1f} rps per replica, {best.replica_rps * limit:.1f} rps "
                f"with {limit}; raise the replica limit or expect drops",
                "throughput", stage.name)
        fastest.append(min(ok, key=lambda c: c.latency_ms))
    best_ms = sum(c.latency_ms for c in fastest)
    if best_ms > pipeline.sla_ms:
        ignoring = sum(min(c.latency_ms for c in sc) for sc in cands)
        why = "" if ignoring >= best_ms else (
            f"; faster configurations (down to {ignoring:.0f} ms) cannot reach the rate within "
            "the replica limit")
        per_stage = ", ".join(
            f"{pipeline.stages[c.stage].name}={_name(pipeline, c)} {c.latency_ms:.0f} ms"
            for c in fastest)
        raise InfeasibleError(
            f"latency SLA: SLA {pipeline.sla_ms:.0f} ms < fastest possible {best_ms:.0f} ms "
            f"at {rate_rps:.1f} rps (p99 batch latency + batch fill per stage: {per_stage})"
            f"{why}", "latency")
