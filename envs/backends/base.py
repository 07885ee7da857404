"""The `Backend` protocol that the simulators and the live pipeline implement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from envs.model import perf
from envs.model.spec import Decision, Pipeline


@dataclass(frozen=True)
class ServingSettings:
    """Serving behaviour shared by every backend.

    Attributes:
        interval_s: Adaptation interval (seconds per env step).
        cold_start_s: Delay before an added replica, or a replica of a new variant, serves.
        drop_limit_s: Requests older than this (since entering the pipeline) are dropped
            instead of being served; drops count as SLA violations.
        batch_timeout_ms: A partial batch is dispatched when its oldest request has waited
            this long.
        model_load_scale: Factor on the size-dependent part of a cold start
            (`envs.model.perf.model_load_s`: weights / load bandwidth, added to ``cold_start_s``);
            0 turns it off.
    """

    interval_s: int = 10
    cold_start_s: float = 2.0
    drop_limit_s: float = 8.0
    batch_timeout_ms: float = 500.0
    model_load_scale: float = 1.0

    @staticmethod
    def for_pipeline(
        pipeline: Pipeline, interval_s: int = 10, cold_start_s: float = 2.0,
        drop_limit_s: float | None = None, batch_timeout_ms: float | None = None,
        model_load_scale: float = 1.0,
    ) -> ServingSettings:
        """Settings whose unset limits derive from the pipeline's SLA: drops after
        2 x SLA, partial batches leave after SLA / (2 x stages).

        Both rules are assumed (not cited, not measured). The drop limit: a request
        already twice past its SLA is a violation whatever happens, so it is dropped
        rather than queued further (its wait would only delay the requests behind it).
        The batch timeout: every stage gets an equal share of the SLA, and at most half
        of that share goes to waiting for a batch to fill, leaving the rest for compute.

        Args:
            pipeline: The pipeline (its SLA and number of stages).
            interval_s: Adaptation interval.
            cold_start_s: Base delay before an added replica serves.
            drop_limit_s: Age at which requests are dropped; None: 2 x SLA.
            batch_timeout_ms: Partial-batch timeout; None: SLA / (2 x stages).
            model_load_scale: Factor on the weights' load time.

        Returns:
            The settings.
        """
        return ServingSettings(
            interval_s=interval_s,
            cold_start_s=cold_start_s,
            drop_limit_s=(2.0 * pipeline.sla_ms / 1e3 if drop_limit_s is None
                          else drop_limit_s),
            batch_timeout_ms=(pipeline.sla_ms / (2 * len(pipeline.stages))
                              if batch_timeout_ms is None else batch_timeout_ms),
            model_load_scale=model_load_scale,
        )

    def cold_start_for(self, pipeline: Pipeline, stage: int, variant: int) -> float:
        """Seconds before a new replica of ``variant`` at ``stage`` serves: the base cold
        start plus its weights' load time (`envs.model.perf.model_load_s`).

        Args:
            pipeline: The pipeline (its pools' load bandwidth).
            stage: Stage index.
            variant: Variant index within the stage.

        Returns:
            The cold start in seconds.
        """
        chosen = pipeline.stages[stage].variants[variant]
        return self.cold_start_s + self.model_load_scale * perf.model_load_s(
            pipeline, chosen)


@dataclass(frozen=True)
class IntervalStats:
    """What a backend reports for one adaptation interval.

    Counts are of the requests that completed, were dropped, or failed during the interval;
    ``arrived`` counts the interval's new arrivals. ``errors`` are requests a backend failed
    (a live replica that died with them, or answered 500); they count as SLA violations and
    are never counted as drops. ``energy_j`` is the total, NaN when the energy is unknown
    (never 0); ``energy_method`` says how the figure was obtained (or why it is unknown).
    ``static_j``, ``idle_j`` and ``dynamic_j`` are its parts under the power model (nan
    where a backend measures only the total, e.g. a meter on live servers).
    ``accuracy_rank_sum`` and ``accuracy_product`` are the accuracy of the decision in force
    in IPA's two modes (`envs.model.accuracy`): the sum over stages of the chosen variants'
    rank-normalised accuracies, and the product of their raw accuracies.
    What waits at the interval's end (empty where a backend cannot tell, e.g. live servers):
    ``stage_loading``, replicas allocated per stage that do not serve yet (cold start,
    weights loading, or a node booting for them); ``stage_oldest_wait_s``, the age of the
    oldest request queued at each stage since it reached it (`envs.backends.queue_age`);
    ``pool_booting`` and ``pool_powered``, nodes booting and powered per device pool.
    """

    seconds: float
    arrived: int
    served: int
    dropped: int
    sla_violations: int
    p50_ms: float
    p99_ms: float
    accuracy_rank_sum: float
    accuracy_product: float
    cores: float
    cost_core_s: float
    energy_j: float
    energy_estimated: bool
    stage_utilisation: tuple[float, ...]
    stage_queue: tuple[float, ...]
    stage_dropped: tuple[int, ...]
    stage_p99_ms: tuple[float, ...]
    static_j: float = math.nan
    idle_j: float = math.nan
    dynamic_j: float = math.nan
    latencies_ms: np.ndarray | None = field(default=None, compare=False, repr=False)
    errors: int = 0
    energy_method: str = ""
    stage_loading: tuple[int, ...] = ()
    stage_oldest_wait_s: tuple[float, ...] = ()
    pool_booting: tuple[int, ...] = ()
    pool_powered: tuple[int, ...] = ()

    @property
    def sla_violation_rate(self) -> float:
        """SLA violations per arrived request (0 when nothing arrived)."""
        return self.sla_violations / self.arrived if self.arrived else 0.0

    @property
    def power_w(self) -> float:
        """Mean power over the interval, ``energy_j / seconds`` (0 for an empty interval)."""
        return self.energy_j / self.seconds if self.seconds else 0.0


@runtime_checkable
class Backend(Protocol):
    """A pipeline the env can drive: the simulators, or real servers.

    ``apply`` takes effect at the start of the next interval; ``run_interval`` plays one
    interval of per-second arrival rates (length ``settings.interval_s``).
    """

    pipeline: Pipeline
    settings: ServingSettings
    last_events: list[str]

    def reset(self, decision: Decision, seed: int | None = None) -> None:
        """Start over at time 0 with ``decision`` warm (no cold start).

        Args:
            decision: The configuration in force from the start.
            seed: The simulator seed (arrivals and service draws); None: fresh entropy.
        """

    def apply(self, decision: Decision) -> None:
        """Reconfigure the pipeline; cold starts apply.

        Args:
            decision: The new configuration.
        """

    def run_interval(self, arrivals_rps: np.ndarray) -> IntervalStats:
        """Serve one interval of arrivals and report it.

        Args:
            arrivals_rps: Arrival rate of each second of the interval.

        Returns:
            The interval's stats.
        """

    def close(self) -> None:
        """Release processes and resources."""


def weighted_quantile(values: Sequence[float], weights: Sequence[float], q: float) -> float:
    """Quantile ``q`` in [0, 1] of ``values`` weighted by ``weights`` (nan if no weight).

    Plain Python: the fluid simulator calls it on ten values per interval.

    Args:
        values: The values.
        weights: Their weights (same length).
        q: The quantile.

    Returns:
        The smallest value whose cumulative weight reaches ``q`` of the total.
    """
    total = sum(weights)
    if total <= 0.0:
        return math.nan
    target = q * total
    cumulative = 0.0
    pairs = sorted(zip(values, weights, strict=True))
    for value, weight in pairs:
        cumulative += weight
        if cumulative >= target and weight > 0.0:
            return float(value)
    return float(pairs[-1][0])
