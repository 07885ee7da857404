"""Performance math: the one place where latency, throughput, cost and energy are derived.

Pure functions with units in their names. The simulator backends, the ILP (which builds
its linear coefficients by calling these functions for every candidate), the agents and
the reports all import them; nothing else may re-derive these quantities.

The model (IPA's, arXiv 2308.12871, section 4):

* a replica of variant ``v`` at batch ``b`` and ``c`` cores finishes a batch in
  ``latency_mean_ms(v, b, c)`` on average, ``latency_p99_ms(v, b, c)`` at the 99th
  percentile; its throughput is ``b / latency_mean``;
* a request waits ``(b - 1) / arrival_rps`` for its batch to fill (IPA's queueing term,
  bounded by the batching timeout where there is one);
* the end-to-end latency is the sum over stages of p99 batch latency plus that delay;
* cost is the number of allocated cores (times seconds for core-seconds);
* energy over an interval (the power model, `Hardware`) is the static power of every
  powered node, plus the idle power of every allocated device (core or GPU), plus the
  dynamic energy of every batch computed (partial batches under the batching timeout);
  whether nodes without allocated devices are powered is the fleet setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from envs.spec import Decision, Hardware, ModelVariant, Pipeline, Stage, StageDecision


def batch_latency_mean_ms(variant: ModelVariant, batch: int, cores: int) -> float:
    """Mean time one replica takes to compute one batch."""
    return variant.profile.row(batch, cores).latency_mean_ms


def batch_latency_p99_ms(variant: ModelVariant, batch: int, cores: int) -> float:
    """99th-percentile time one replica takes to compute one batch."""
    return variant.profile.row(batch, cores).latency_p99_ms


def batch_energy_j(variant: ModelVariant, batch: int, cores: int) -> float:
    """Dynamic energy of computing one batch (above the allocated cores' idle power)."""
    return variant.profile.row(batch, cores).energy_per_batch_j


def dynamic_from_measured_j(total_j: float, idle_w: float, seconds: float) -> float:
    """The dynamic part of a measured energy: ``total_j`` minus the idle power of the
    devices that drew it (``idle_w``, all of them together) over ``seconds`` (the inverse
    of the idle term; may be < 0, the caller decides what that means)."""
    return total_j - idle_w * seconds


def busy_batch_energy_j(busy_w_per_device: float, devices: int, latency_ms: float) -> float:
    """Dynamic energy of a batch whose ``devices`` draw ``busy_w_per_device`` above idle
    for the batch's latency (the calibrated CPU model's dynamic term)."""
    return busy_w_per_device * devices * latency_ms / 1e3


def busy_dynamic_power_w(variant: ModelVariant, batch: int, cores: int) -> float:
    """Dynamic power per device while a replica computes batches back to back."""
    return batch_energy_j(variant, batch, cores) * 1000.0 / (
        batch_latency_mean_ms(variant, batch, cores) * cores)


def replica_throughput_rps(variant: ModelVariant, batch: int, cores: int) -> float:
    """Requests per second one busy replica completes."""
    return batch * 1000.0 / batch_latency_mean_ms(variant, batch, cores)


def stage_throughput_rps(variant: ModelVariant, batch: int, cores: int, replicas: int) -> float:
    """Requests per second a stage of ``replicas`` busy replicas completes."""
    return replicas * replica_throughput_rps(variant, batch, cores)


def replicas_for_rate(variant: ModelVariant, batch: int, cores: int, rate_rps: float) -> int:
    """Fewest replicas (at least one) whose `stage_throughput_rps` reaches ``rate_rps``."""
    n = max(1, math.ceil(rate_rps / replica_throughput_rps(variant, batch, cores)))
    # Guard both directions against rounding in rate / throughput.
    while stage_throughput_rps(variant, batch, cores, n) < rate_rps:
        n += 1
    while n > 1 and stage_throughput_rps(variant, batch, cores, n - 1) >= rate_rps:
        n -= 1
    return n


def batch_fill_delay_ms(batch: int, arrival_rps: float, timeout_ms: float = math.inf) -> float:
    """Worst-case wait of a request for its batch to fill: (b - 1) / rate, capped by timeout.

    A batch of one never waits; with no arrivals a larger batch waits for the timeout.
    """
    if batch <= 1:
        return 0.0
    if arrival_rps <= 0.0:
        return timeout_ms
    return min((batch - 1) * 1000.0 / arrival_rps, timeout_ms)


def backlog_delay_ms(queued_requests: float, throughput_rps: float) -> float:
    """Time to drain ``queued_requests`` at ``throughput_rps`` (infinite with no capacity)."""
    if queued_requests <= 0.0:
        return 0.0
    if throughput_rps <= 0.0:
        return math.inf
    return queued_requests * 1000.0 / throughput_rps


def stage_latency_ms(
    variant: ModelVariant, batch: int, cores: int, arrival_rps: float,
    timeout_ms: float = math.inf,
) -> float:
    """IPA's per-stage latency: p99 batch latency plus the batch-filling delay."""
    return batch_latency_p99_ms(variant, batch, cores) + batch_fill_delay_ms(
        batch, arrival_rps, timeout_ms
    )


def stage_choice_latency_ms(
    stage: Stage, choice: StageDecision, arrival_rps: float, timeout_ms: float = math.inf
) -> float:
    """`stage_latency_ms` of the variant a `StageDecision` picks."""
    variant = stage.variants[choice.variant]
    return stage_latency_ms(variant, choice.batch, choice.cores, arrival_rps, timeout_ms)


def e2e_latency_ms(
    pipeline: Pipeline, decision: Decision, arrival_rps: float, timeout_ms: float = math.inf
) -> float:
    """IPA's end-to-end latency model: the sum of the stages' latencies."""
    return sum(
        stage_choice_latency_ms(stage, choice, arrival_rps, timeout_ms)
        for stage, choice in zip(pipeline.stages, decision.stages, strict=True)
    )


def decision_throughput_rps(pipeline: Pipeline, decision: Decision) -> float:
    """Throughput of the whole pipeline: that of its slowest stage."""
    return min(
        stage_throughput_rps(stage.variants[c.variant], c.batch, c.cores, c.replicas)
        for stage, c in zip(pipeline.stages, decision.stages, strict=True)
    )


def stage_cores(choice: StageDecision) -> int:
    """Cores allocated to one stage."""
    return choice.replicas * choice.cores


def decision_cores(decision: Decision) -> int:
    """Cores allocated to the whole pipeline (IPA's cost)."""
    return sum(stage_cores(c) for c in decision.stages)


def cost_core_s(cores: float, seconds: float) -> float:
    """Cost of holding ``cores`` for ``seconds``, in core-seconds."""
    return cores * seconds


def model_load_s(hardware: Hardware, variant: ModelVariant) -> float:
    """Seconds a new replica of ``variant`` spends loading its weights:
    weights size / load bandwidth (0 where the profile gives no bandwidth)."""
    if hardware.load_gb_per_s <= 0:
        return 0.0
    return variant.weights_gb / hardware.load_gb_per_s


def powered_nodes(hardware: Hardware, devices: float) -> int:
    """Nodes powered while ``devices`` are allocated.

    Elastic fleet: just enough nodes for the devices (replicas are packed onto as few
    nodes as possible), none when nothing is allocated. Fixed fleet: all
    ``fleet_nodes``, or more if the allocation needs more.
    """
    needed = math.ceil(devices / hardware.devices_per_node - 1e-9) if devices > 0 else 0
    if hardware.fleet == "fixed":
        return max(hardware.fleet_nodes, needed)
    return needed


def node_seconds(hardware: Hardware, segments: Sequence[tuple[float, float]]) -> float:
    """Powered node-seconds over ``segments`` of ``(seconds, allocated devices)``."""
    return sum(seconds * powered_nodes(hardware, devices) for seconds, devices in segments)


def static_energy_j(hardware: Hardware, node_s: float) -> float:
    """Static energy of powered nodes: static power per node x node-seconds."""
    return hardware.node_static_w * node_s


def idle_energy_j(hardware: Hardware, device_seconds: float) -> float:
    """Idle energy of allocated devices: idle power per device x device-seconds."""
    return hardware.device_idle_w * device_seconds


@dataclass(frozen=True)
class EnergyParts:
    """An interval's energy split as the power model defines it, in joules.

    Attributes:
        static_j: Powered nodes x static power x seconds.
        idle_j: Allocated devices x idle power x seconds.
        dynamic_j: Dynamic energy of the batches served.
    """

    static_j: float
    idle_j: float
    dynamic_j: float

    @property
    def total_j(self) -> float:
        return self.static_j + self.idle_j + self.dynamic_j


def energy_parts(
    hardware: Hardware, segments: Sequence[tuple[float, float]], dynamic_j: float
) -> EnergyParts:
    """The power model over one interval.

    Args:
        hardware: The static and idle power model.
        segments: ``(seconds, allocated devices)`` pieces covering the interval.
        dynamic_j: Dynamic energy of the batches served in it.

    Returns:
        The interval's static, idle and dynamic energy.
    """
    device_s = sum(seconds * devices for seconds, devices in segments)
    return EnergyParts(static_energy_j(hardware, node_seconds(hardware, segments)),
                       idle_energy_j(hardware, device_s), dynamic_j)


def expected_batch_size(batch: int, arrival_rps: float, timeout_ms: float = math.inf) -> float:
    """Mean size of the batches a stage forms: full, unless the batching timeout fires
    first, in which case about ``1 + rate x timeout`` requests have arrived."""
    if batch <= 1 or math.isinf(timeout_ms):
        return float(batch)
    return min(float(batch), 1.0 + max(arrival_rps, 0.0) * timeout_ms / 1e3)


def energy_per_request_j(
    variant: ModelVariant, batch: int, cores: int, arrival_rps: float = math.inf,
    timeout_ms: float = math.inf,
) -> float:
    """Dynamic energy per request when batches hold `expected_batch_size` requests
    (linear between the profile's integer batch sizes)."""
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
    """Dynamic energy of serving ``requests`` (full batches unless a timeout is given)."""
    return requests * energy_per_request_j(variant, batch, cores, arrival_rps, timeout_ms)


def stage_interval_energy_j(
    hardware: Hardware, stage: Stage, choice: StageDecision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> float:
    """Energy one stage adds over an interval: idle power of its devices + dynamic
    energy of its batches (static power belongs to the nodes: `powered_nodes`)."""
    variant = stage.variants[choice.variant]
    rate = requests / seconds if seconds > 0 else 0.0
    return idle_energy_j(hardware, cost_core_s(stage_cores(choice), seconds)) + (
        dynamic_energy_j(variant, choice.batch, choice.cores, requests, rate, timeout_ms)
    )


def decision_dynamic_energy_j(
    pipeline: Pipeline, decision: Decision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> float:
    """Dynamic energy when every stage serves ``requests`` in ``seconds``."""
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
    """
    segments = [(seconds, float(decision_cores(decision)))]
    dynamic = decision_dynamic_energy_j(pipeline, decision, requests, seconds, timeout_ms)
    return energy_parts(pipeline.hardware, segments, dynamic)


def interval_energy_j(
    pipeline: Pipeline, decision: Decision, requests: float, seconds: float,
    timeout_ms: float = math.inf,
) -> float:
    """Total of `interval_energy_parts`."""
    return interval_energy_parts(pipeline, decision, requests, seconds, timeout_ms).total_j


def accuracy_sum_normalised(pipeline: Pipeline, variants: Sequence[int]) -> float:
    """IPA's "sum" accuracy: the sum of the stages' rank-normalised accuracies."""
    return sum(
        stage.accuracy_ranks[v] for stage, v in zip(pipeline.stages, variants, strict=True)
    )


def accuracy_product(pipeline: Pipeline, variants: Sequence[int]) -> float:
    """IPA's "product" accuracy: the product of raw accuracies as fractions (% / 100)."""
    return math.prod(
        stage.variants[v].accuracy / 100.0
        for stage, v in zip(pipeline.stages, variants, strict=True)
    )


def decision_accuracy(pipeline: Pipeline, decision: Decision, mode: str = "sum") -> float:
    """Pipeline accuracy of a decision in IPA's ``sum`` or ``product`` mode."""
    variants = [c.variant for c in decision.stages]
    if mode == "sum":
        return accuracy_sum_normalised(pipeline, variants)
    if mode == "product":
        return accuracy_product(pipeline, variants)
    raise ValueError(f"accuracy mode must be 'sum' or 'product', got {mode!r}")


LN_100 = math.log(100.0)


def service_time_shape_ms(latency_mean_ms: float, latency_p99_ms: float) -> tuple[float, float]:
    """Shifted-exponential service time with the profile's mean and p99.

    Returns ``(shift_ms, scale_ms)`` such that ``shift + scale * Exp(1)`` has mean
    ``latency_mean_ms`` and 99th percentile ``latency_p99_ms`` (deterministic when they are
    equal). Where p99 is so far above the mean that the shift would be negative, the shift
    is 0 and only the mean is kept.
    """
    scale = (latency_p99_ms - latency_mean_ms) / (LN_100 - 1.0)
    shift = latency_mean_ms - scale
    if shift < 0.0:
        return 0.0, latency_mean_ms
    return shift, scale
