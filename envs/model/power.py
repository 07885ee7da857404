"""The power model: energy of batches, devices and nodes over an interval.

The model (`envs.model.fleet`): a replica runs on ``cores`` CPU cores or GPUs of one device
pool; replicas are packed per pool onto as few nodes as possible; a powered node draws its
static (host) power and every device on it its idle power, allocated or not; an allocated
device adds its pool's ``allocated_w`` (0 for GPUs); each batch served adds the dynamic
energy its profile row measured (partial batches under the batching timeout). Energy of an
interval = sum over pools of (static + devices per node x idle) x powered nodes +
allocated_w x allocated devices, + dynamic of the batches served; a pool's ``always_on``
nodes stay powered. The node part (powered nodes, host, idle and allocated energy) is in
`envs.model.node_power`; latency, throughput and cores are in `envs.model.perf`, which this
module builds on; nothing else may re-derive these quantities.
"""

from __future__ import annotations

import math

from envs.model.node_power import EnergyParts, devices_by_pool, energy_parts
from envs.model.perf import batch_latency_mean_ms, cost_core_s, stage_cores
from envs.model.spec import Decision, ModelVariant, Pipeline, Stage, StageDecision


def batch_energy_j(variant: ModelVariant, batch: int, cores: int) -> float:
    """Dynamic energy of computing one batch (above the allocated cores' idle power).

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.

    Returns:
        Joules (the profile row's ``energy_per_batch_j``).
    """
    return variant.profile.row(batch, cores).energy_per_batch_j


def dynamic_from_measured_j(total_j: float, idle_w: float, seconds: float) -> float:
    """The dynamic part of a measured energy: ``total_j`` minus the idle power of the
    devices that drew it (the inverse of the idle term; may be < 0, the caller decides what
    that means).

    Args:
        total_j: Measured energy, joules.
        idle_w: Idle power of all the devices that drew it together, watts.
        seconds: Length of the measurement.

    Returns:
        Joules.
    """
    return total_j - idle_w * seconds


def busy_batch_energy_j(busy_w_per_device: float, devices: int, latency_ms: float) -> float:
    """Dynamic energy of a batch whose ``devices`` draw ``busy_w_per_device`` above idle
    for the batch's latency (the calibrated CPU model's dynamic term).

    Args:
        busy_w_per_device: Power above idle of one busy device, watts.
        devices: Devices computing the batch.
        latency_ms: The batch's latency.

    Returns:
        Joules.
    """
    return busy_w_per_device * devices * latency_ms / 1e3


def busy_dynamic_power_w(variant: ModelVariant, batch: int, cores: int) -> float:
    """Dynamic power per device while a replica computes batches back to back.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.

    Returns:
        Watts per device.
    """
    return batch_energy_j(variant, batch, cores) * 1000.0 / (
        batch_latency_mean_ms(variant, batch, cores) * cores)


def expected_batch_size(batch: int, arrival_rps: float, timeout_ms: float = math.inf) -> float:
    """Mean size of the batches a stage forms: full, unless the batching timeout fires
    first, in which case about ``1 + rate x timeout`` requests have arrived.

    Args:
        batch: Batch size.
        arrival_rps: Arrival rate at the stage, requests per second.
        timeout_ms: Batching timeout (infinite: batches always fill).

    Returns:
        Requests per batch.
    """
    if batch <= 1 or math.isinf(timeout_ms):
        return float(batch)
    return min(float(batch), 1.0 + max(arrival_rps, 0.0) * timeout_ms / 1e3)


def energy_per_request_j(
    variant: ModelVariant, batch: int, cores: int, arrival_rps: float = math.inf,
    timeout_ms: float = math.inf,
) -> float:
    """Dynamic energy per request when batches hold `expected_batch_size` requests
    (linear between the profile's integer batch sizes).

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.
        arrival_rps: Arrival rate at the stage (infinite: full batches).
        timeout_ms: Batching timeout.

    Returns:
        Joules per request.
    """
    k = expected_batch_size(batch, arrival_rps, timeout_ms)
    lo = max(int(math.floor(k)), 1)
    hi = min(lo + 1, batch)
    e_lo = batch_energy_j(variant, lo, cores)
    e_k = e_lo if hi == lo else e_lo + (k - lo) * (batch_energy_j(variant, hi, cores) - e_lo)
    return e_k / k


def dynamic_energy_j(
    variant: ModelVariant, batch: int, cores: int, requests: float,
    arrival_rps: float = math.inf, timeout_ms: float = math.inf,
) -> float:
    """Dynamic energy of serving ``requests`` (full batches unless a timeout is given).

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.
        requests: Requests served.
        arrival_rps: Arrival rate at the stage (infinite: full batches).
        timeout_ms: Batching timeout.

    Returns:
        Joules.
    """
    return requests * energy_per_request_j(variant, batch, cores, arrival_rps, timeout_ms)


def stage_interval_energy_j(
    pipeline: Pipeline, stage: Stage, choice: StageDecision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> float:
    """Energy one stage adds over an interval beyond its powered nodes: the
    ``allocated_w`` of its devices + the dynamic energy of its batches (static and idle
    power belong to the nodes: `powered_nodes`).

    Args:
        pipeline: The pipeline (its fleet's power model).
        stage: The stage.
        choice: Its decision.
        requests: Requests it serves in the interval.
        seconds: Length of the interval.
        timeout_ms: Batching timeout.

    Returns:
        Joules.
    """
    variant = stage.variants[choice.variant]
    rate = requests / seconds if seconds > 0 else 0.0
    allocated_j = pipeline.pool_of(variant).allocated_w * cost_core_s(stage_cores(choice),
                                                                      seconds)
    return allocated_j + dynamic_energy_j(variant, choice.batch, choice.cores, requests, rate,
                                          timeout_ms)


def decision_dynamic_energy_j(
    pipeline: Pipeline, decision: Decision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> float:
    """Dynamic energy when every stage serves ``requests`` in ``seconds``.

    Args:
        pipeline: The pipeline.
        decision: One choice per stage.
        requests: Requests each stage serves.
        seconds: Length of the interval.
        timeout_ms: Batching timeout.

    Returns:
        Joules.
    """
    rate = requests / seconds if seconds > 0 else 0.0
    return sum(
        dynamic_energy_j(stage.variants[c.variant], c.batch, c.cores, requests, rate,
                         timeout_ms)
        for stage, c in zip(pipeline.stages, decision.stages, strict=True)
    )


def interval_energy_parts(
    pipeline: Pipeline, decision: Decision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> EnergyParts:
    """Predicted energy split of the pipeline holding ``decision`` for ``seconds`` while
    every stage serves ``requests`` (the model the ILP optimises and the simulators play).

    Args:
        pipeline: Stages and the power model.
        decision: The configuration held for the whole interval.
        requests: Requests each stage serves.
        seconds: Length of the interval.
        timeout_ms: Batching timeout (partial batches leave after it).

    Returns:
        The static, idle and dynamic energy.
    """
    segments = [(seconds, devices_by_pool(pipeline, decision))]
    dynamic = decision_dynamic_energy_j(pipeline, decision, requests, seconds, timeout_ms)
    return energy_parts(pipeline.fleet, segments, dynamic)


def interval_energy_j(
    pipeline: Pipeline, decision: Decision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> float:
    """Total of `interval_energy_parts`.

    Args:
        pipeline: Stages and the power model.
        decision: The configuration held for the whole interval.
        requests: Requests each stage serves.
        seconds: Length of the interval.
        timeout_ms: Batching timeout.

    Returns:
        Joules.
    """
    return interval_energy_parts(pipeline, decision, requests, seconds, timeout_ms).total_j
