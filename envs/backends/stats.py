"""The one builder of `IntervalStats`: each backend passes what it observed, this derives
the rest (SLA violations, latency quantiles, accuracy, mean cores, the energy fields)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.backends.base import IntervalStats
from envs.model import accuracy, node_power
from envs.model.spec import Decision, Pipeline


def latency_quantile_ms(latencies_ms: np.ndarray, percent: float) -> float:
    """Percentile ``percent`` (0-100) of per-request latencies; nan when none were served.

    Args:
        latencies_ms: End-to-end (or one stage's) latencies of the served requests.
        percent: The percentile, e.g. 99.

    Returns:
        ``numpy.percentile`` of the latencies (linear interpolation), or nan if empty.
    """
    return float(np.percentile(latencies_ms, percent)) if len(latencies_ms) else math.nan


def interval_stats(
    pipeline: Pipeline, decision: Decision, *, seconds: float, arrived: float,
    served: float, dropped: float, late: float, core_s: float,
    stage_utilisation: Sequence[float], stage_queue: Sequence[float],
    stage_dropped: Sequence[float], stage_p99_ms: Sequence[float],
    energy: node_power.EnergyParts | None = None, energy_j: float = math.nan,
    energy_estimated: bool, energy_method: str = "", errors: int = 0,
    latencies_ms: np.ndarray | None = None, p50_ms: float | None = None,
    p99_ms: float | None = None, end_state: EndState | None = None,
    stage_oldest_wait_s: Sequence[float] = (),
) -> IntervalStats:
    """One interval's `IntervalStats` from what a backend observed.

    Derived here and nowhere else: ``sla_violations = dropped + errors + late``; the
    end-to-end p50/p99 from ``latencies_ms`` (unless the backend passes its own, e.g. the
    fluid model's weighted quantiles or a histogram's); the accuracy of ``decision``
    (`envs.model.accuracy.decision_accuracy`); mean ``cores = core_s / seconds``; and the energy
    total and parts from ``energy`` (the power model's split) or ``energy_j`` (a total
    measured or modelled without parts). Counts may be fractional expectations (the fluid
    model); they are rounded to whole requests, the violations after summing.

    Args:
        pipeline: The pipeline served (its accuracy table).
        decision: The decision in force during the interval.
        seconds: Length of the interval.
        arrived: Requests that arrived during the interval.
        served: Requests that completed the pipeline.
        dropped: Requests dropped (past the drop limit).
        late: Served requests whose latency exceeded the SLA.
        core_s: Core-seconds allocated during the interval.
        stage_utilisation: Per stage, busy time over online replica time.
        stage_queue: Per stage, requests waiting at the interval's end.
        stage_dropped: Per stage, requests dropped there.
        stage_p99_ms: Per stage, p99 of the stage's latency (nan if it served none).
        energy: The power model's split of the interval's energy (simulators).
        energy_j: The total when there is no split (nan: unknown); ignored if ``energy``
            is given.
        energy_estimated: Whether the energy figure is an estimate.
        energy_method: How the energy figure was obtained (or why it is unknown).
        errors: Requests a backend failed; they count as SLA violations.
        latencies_ms: End-to-end latencies of the served requests (kept in the stats).
        p50_ms: The backend's own median latency; None: from ``latencies_ms``.
        p99_ms: The backend's own p99 latency; None: from ``latencies_ms``.
        end_state: Replicas loading per stage and nodes booting and powered per pool at
            the interval's end (simulators; None: unknown).
        stage_oldest_wait_s: Per stage, the oldest queued request's age at the end.

    Returns:
        The interval's stats.

    Raises:
        ValueError: If neither ``latencies_ms`` nor both quantiles are given.
    """
    if latencies_ms is None and (p50_ms is None or p99_ms is None):
        raise ValueError("interval_stats needs latencies_ms or both p50_ms and p99_ms")
    if p50_ms is None:
        assert latencies_ms is not None
        p50_ms = latency_quantile_ms(latencies_ms, 50)
    if p99_ms is None:
        assert latencies_ms is not None
        p99_ms = latency_quantile_ms(latencies_ms, 99)
    if energy is not None:
        energy_j = energy.total_j
        static_j, idle_j, dynamic_j = energy.static_j, energy.idle_j, energy.dynamic_j
    else:
        static_j = idle_j = dynamic_j = math.nan
    return IntervalStats(
        seconds=seconds,
        arrived=int(round(arrived)),
        served=int(round(served)),
        dropped=int(round(dropped)),
        sla_violations=int(round(dropped + errors + late)),
        p50_ms=p50_ms,
        p99_ms=p99_ms,
        accuracy_rank_sum=accuracy.decision_accuracy(pipeline, decision, "sum"),
        accuracy_product=accuracy.decision_accuracy(pipeline, decision, "product"),
        cores=core_s / seconds if seconds else 0.0,
        cost_core_s=core_s,
        energy_j=energy_j,
        energy_estimated=energy_estimated,
        stage_utilisation=tuple(stage_utilisation),
        stage_queue=tuple(stage_queue),
        stage_dropped=tuple(int(round(d)) for d in stage_dropped),
        stage_p99_ms=tuple(stage_p99_ms),
        static_j=static_j,
        idle_j=idle_j,
        dynamic_j=dynamic_j,
        latencies_ms=latencies_ms,
        errors=errors,
        energy_method=energy_method,
        stage_loading=end_state.stage_loading if end_state else (),
        stage_oldest_wait_s=tuple(stage_oldest_wait_s),
        pool_booting=end_state.pool_booting if end_state else (),
        pool_powered=end_state.pool_powered if end_state else (),
    )


@dataclass(frozen=True)
class EndState:
    """What a simulator's replicas and nodes are doing when an interval ends.

    Attributes:
        stage_loading: Per stage, replicas allocated that do not serve yet.
        pool_booting: Per device pool, nodes booting.
        pool_powered: Per device pool, nodes powered (booting, serving or held).
    """

    stage_loading: tuple[int, ...]
    pool_booting: tuple[int, ...]
    pool_powered: tuple[int, ...]
