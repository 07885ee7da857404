"""Latency, capacity and power of a continuously batched LLM stage, read from its load
tables (`envs.model.load_table`): what the planner and the reports use for such a stage.

A stage of ``r`` replicas of one (variant, cap) behind a least-loaded router is modelled as
``r`` replicas each receiving ``rate / r`` (Poisson) requests per second, so its latency
is one replica's at that load and its power ``r`` times one replica's. The tables were
measured on the same processor-sharing rule the request-level simulator runs
(`envs.serving.load_table`), so planner and simulator agree by construction up to the
router (tested in ``tests/test_one_latency_model.py``). Above the tables' largest load
(95 % of saturation) there is no answer: such a configuration is not planned.
"""

from __future__ import annotations

import math

import numpy as np

from envs.config.errors import ProfileError
from envs.model.load_table import LoadTable
from envs.model.spec import ModelVariant, Stage


def is_continuous(stage: Stage) -> bool:
    """Whether a stage is served by continuous batching: a ``cap`` knob and every variant
    with a continuous-serving description.

    Args:
        stage: The stage.
    """
    return stage.knob == "cap" and all(v.continuous is not None for v in stage.variants)


def table(variant: ModelVariant, cap: int) -> LoadTable:
    """The load table of a variant at a cap.

    Args:
        variant: A variant with a continuous-serving description.
        cap: The concurrency cap in use.

    Raises:
        ProfileError: The variant has no continuous-serving description.
    """
    if variant.continuous is None:
        raise ProfileError(f"variant {variant.name!r} has no continuous-serving description "
                           "(profile key 'continuous'); import it with --continuous")
    return variant.continuous.table(cap)


def saturated_rps(variant: ModelVariant, cap: int) -> float:
    """Requests per second one replica completes when always full.

    Args:
        variant: The variant.
        cap: The cap in use.
    """
    return table(variant, cap).saturated_rps


def planned_rps(variant: ModelVariant, cap: int) -> float:
    """The most requests per second a planner may send one replica: the tables' largest
    load times the saturated rate.

    Args:
        variant: The variant.
        cap: The cap in use.
    """
    t = table(variant, cap)
    return float(t.loads[-1] * t.saturated_rps)


def fewest_replicas(variant: ModelVariant, cap: int, rate_rps: float) -> int:
    """Fewest replicas whose per-replica load stays below the tables' largest load.

    Args:
        variant: The variant.
        cap: The cap in use.
        rate_rps: The stage's arrival rate.
    """
    most = planned_rps(variant, cap)
    need = max(1, math.ceil(rate_rps / most))
    return need + 1 if rate_rps / need >= most else need


def latency_ms(variant: ModelVariant, cap: int, replicas: int, rate_rps: float,
               quantile: str = "p99") -> float:
    """A request's time in the stage (queue included) at a stage arrival rate.

    Args:
        variant: The variant.
        cap: The cap in use.
        replicas: Replicas of the stage.
        rate_rps: The stage's arrival rate.
        quantile: ``p99`` or ``mean``.

    Returns:
        Milliseconds; inf where a replica's load is at or above the tables' largest.
    """
    t = table(variant, cap)
    per_replica = rate_rps / replicas
    return t.p99_at(per_replica) if quantile == "p99" else t.mean_at(per_replica)


def stage_dynamic_w(variant: ModelVariant, cap: int, replicas: int, rate_rps: float) -> float:
    """Mean power of the stage's replicas above their GPUs' idle power (which the powered
    nodes draw, `envs.model.power`): ``r x (P_table(rate / r) - idle_w)``, the table's power
    taken to its ``idle_w`` at load 0 (linear below the first load: a replica is idle the
    rest of the time).

    Args:
        variant: The variant.
        cap: The cap in use.
        replicas: Replicas of the stage.
        rate_rps: The stage's arrival rate.

    Returns:
        Watts; inf where a replica's load is at or above the tables' largest.
    """
    t = table(variant, cap)
    if rate_rps / replicas / t.saturated_rps >= t.loads[-1]:
        return math.inf
    return replicas * replica_second(variant, cap, rate_rps / replicas)[2]


def replica_second(variant: ModelVariant, cap: int, per_replica_rps: float
                   ) -> tuple[float, float, float]:
    """One replica's p99 and mean time in the stage and its power above idle at a request
    rate, the load clamped to the tables' largest (beyond it a fluid model's queue holds
    the excess and its backlog delay adds the wait). The power is measured above the
    tables' own ``idle_w`` (`envs.model.continuous.ContinuousServing`), so it does not move
    when the pool's idle power is edited.

    Args:
        variant: The variant.
        cap: The cap in use.
        per_replica_rps: Requests per second one replica serves.

    Returns:
        ``(p99_ms, mean_ms, dynamic_w)``.
    """
    t = table(variant, cap)
    load = min(max(per_replica_rps, 0.0) / t.saturated_rps, float(t.loads[-1]))
    assert variant.continuous is not None  # table() raised otherwise
    idle = variant.continuous.idle_w
    watts = float(np.interp(load, np.concatenate([[0.0], t.loads]),
                            np.concatenate([[idle], t.power_w])))
    return (float(np.interp(load, t.loads, t.p99_ms)), float(np.interp(load, t.loads, t.mean_ms)),
            watts - idle)
