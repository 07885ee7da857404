"""Performance math: the one place where latency, throughput and cost are derived; the
energy of the power model is derived once in `envs.model.power`, on top of this module.

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
* energy over an interval (`envs.model.power`) is the static power of every powered node, plus
  the idle power of every allocated device (core or GPU), plus the dynamic energy of
  every batch computed (partial batches under the batching timeout).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from envs.model.spec import Decision, ModelVariant, Pipeline, Stage, StageDecision


def batch_latency_mean_ms(variant: ModelVariant, batch: int, cores: int) -> float:
    """Mean time one replica takes to compute one batch.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.

    Returns:
        Milliseconds (the profile row's ``latency_mean_ms``).
    """
    return variant.profile.row(batch, cores).latency_mean_ms


def batch_latency_p99_ms(variant: ModelVariant, batch: int, cores: int) -> float:
    """99th-percentile time one replica takes to compute one batch.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.

    Returns:
        Milliseconds (the profile row's ``latency_p99_ms``).
    """
    return variant.profile.row(batch, cores).latency_p99_ms


def fastest_latency_ms(pipeline: Pipeline, batches: Sequence[int] | None = None) -> float:
    """The lowest end-to-end p99 latency a policy can reach at given batch sizes: the sum
    over stages of the fastest variant's p99 at its base allocation (the cores the env
    gives each replica).

    Args:
        pipeline: The pipeline.
        batches: Batch size of each stage (None: each stage's smallest, the lowest latency
            at all).

    Returns:
        The latency, milliseconds (`batch_latency_p99_ms`).
    """
    at = [s.batch_sizes[0] for s in pipeline.stages] if batches is None else batches
    return sum(min(batch_latency_p99_ms(v, b, v.base_cores) for v in stage.variants)
               for stage, b in zip(pipeline.stages, at, strict=True))


def replica_throughput_rps(variant: ModelVariant, batch: int, cores: int) -> float:
    """Requests per second one busy replica completes: batch / mean batch latency.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.

    Returns:
        Requests per second.
    """
    return batch * 1000.0 / batch_latency_mean_ms(variant, batch, cores)


def stage_throughput_rps(variant: ModelVariant, batch: int, cores: int, replicas: int) -> float:
    """Requests per second a stage of ``replicas`` busy replicas completes.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.
        replicas: Replicas of the stage.

    Returns:
        Requests per second.
    """
    return replicas * replica_throughput_rps(variant, batch, cores)


def replicas_for_rate(variant: ModelVariant, batch: int, cores: int, rate_rps: float) -> int:
    """Fewest replicas (at least one) whose `stage_throughput_rps` reaches ``rate_rps``.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.
        rate_rps: The rate to serve, requests per second.

    Returns:
        The replica count.
    """
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

    Args:
        batch: Batch size.
        arrival_rps: Arrival rate at the stage, requests per second.
        timeout_ms: Batching timeout (infinite: batches always fill).

    Returns:
        Milliseconds.
    """
    if batch <= 1:
        return 0.0
    if arrival_rps <= 0.0:
        return timeout_ms
    return min((batch - 1) * 1000.0 / arrival_rps, timeout_ms)


def backlog_delay_ms(queued_requests: float, throughput_rps: float) -> float:
    """Time to drain ``queued_requests`` at ``throughput_rps`` (infinite with no capacity).

    Args:
        queued_requests: Requests waiting.
        throughput_rps: Service rate, requests per second.

    Returns:
        Milliseconds.
    """
    if queued_requests <= 0.0:
        return 0.0
    if throughput_rps <= 0.0:
        return math.inf
    return queued_requests * 1000.0 / throughput_rps


def stage_latency_ms(
    variant: ModelVariant, batch: int, cores: int, arrival_rps: float,
    timeout_ms: float = math.inf,
) -> float:
    """IPA's per-stage latency: p99 batch latency plus the batch-filling delay.

    Args:
        variant: The model variant.
        batch: Batch size.
        cores: Cores (or GPUs) of one replica.
        arrival_rps: Arrival rate at the stage, requests per second.
        timeout_ms: Batching timeout.

    Returns:
        Milliseconds.
    """
    return batch_latency_p99_ms(variant, batch, cores) + batch_fill_delay_ms(
        batch, arrival_rps, timeout_ms
    )


def stage_choice_latency_ms(
    stage: Stage, choice: StageDecision, arrival_rps: float, timeout_ms: float = math.inf
) -> float:
    """`stage_latency_ms` of the variant a `StageDecision` picks.

    Args:
        stage: The stage.
        choice: Its decision.
        arrival_rps: Arrival rate at the stage, requests per second.
        timeout_ms: Batching timeout.

    Returns:
        Milliseconds.
    """
    variant = stage.variants[choice.variant]
    return stage_latency_ms(variant, choice.batch, choice.cores, arrival_rps, timeout_ms)


def e2e_latency_ms(
    pipeline: Pipeline, decision: Decision, arrival_rps: float, timeout_ms: float = math.inf
) -> float:
    """IPA's end-to-end latency model: the sum of the stages' latencies.

    Args:
        pipeline: The pipeline.
        decision: One choice per stage.
        arrival_rps: Arrival rate, requests per second (every stage sees it).
        timeout_ms: Batching timeout.

    Returns:
        Milliseconds.
    """
    return sum(
        stage_choice_latency_ms(stage, choice, arrival_rps, timeout_ms)
        for stage, choice in zip(pipeline.stages, decision.stages, strict=True)
    )


def decision_throughput_rps(pipeline: Pipeline, decision: Decision) -> float:
    """Throughput of the whole pipeline: that of its slowest stage.

    Args:
        pipeline: The pipeline.
        decision: One choice per stage.

    Returns:
        Requests per second.
    """
    return min(
        stage_throughput_rps(stage.variants[c.variant], c.batch, c.cores, c.replicas)
        for stage, c in zip(pipeline.stages, decision.stages, strict=True)
    )


def stage_cores(choice: StageDecision) -> int:
    """Cores allocated to one stage: replicas x cores each.

    Args:
        choice: The stage's decision.

    Returns:
        Cores (or GPUs).
    """
    return choice.replicas * choice.cores


def decision_cores(decision: Decision) -> int:
    """Cores allocated to the whole pipeline (IPA's cost).

    Args:
        decision: One choice per stage.

    Returns:
        Cores (or GPUs).
    """
    return sum(stage_cores(c) for c in decision.stages)


def cost_core_s(cores: float, seconds: float) -> float:
    """Cost of holding ``cores`` for ``seconds``, in core-seconds.

    Args:
        cores: Cores held.
        seconds: For how long.

    Returns:
        Core-seconds.
    """
    return cores * seconds


def model_load_s(pipeline: Pipeline, variant: ModelVariant) -> float:
    """Seconds a new replica of ``variant`` spends loading its weights:
    weights size / its pool's load bandwidth (0 where the pool gives no bandwidth).

    Args:
        pipeline: The pipeline (the variant's pool and its ``load_gb_per_s``).
        variant: The variant (its ``weights_gb``).

    Returns:
        Seconds.
    """
    bandwidth = pipeline.pool_of(variant).load_gb_per_s
    if bandwidth <= 0:
        return 0.0
    return variant.weights_gb / bandwidth


LN_100 = math.log(100.0)


def service_time_shape_ms(latency_mean_ms: float, latency_p99_ms: float) -> tuple[float, float]:
    """Shifted-exponential service time with the profile's mean and p99.

    ``shift + scale * Exp(1)`` has mean ``latency_mean_ms`` and 99th percentile
    ``latency_p99_ms`` (deterministic when they are equal). Where p99 is so far above the
    mean that the shift would be negative, the shift is 0 and only the mean is kept.

    Args:
        latency_mean_ms: Mean batch latency.
        latency_p99_ms: 99th-percentile batch latency.

    Returns:
        ``(shift_ms, scale_ms)``.
    """
    scale = (latency_p99_ms - latency_mean_ms) / (LN_100 - 1.0)
    shift = latency_mean_ms - scale
    if shift < 0.0:
        return 0.0, latency_mean_ms
    return shift, scale


# -- The fluid simulators' per-second latency rules (`envs.backends.fluid` and its batched
# array form `envs.batched`; both call these, the compiled loops through numba.njit).


def partial_batches(batch: int, arrival_rps: float, timeout_ms: float) -> bool:
    """Whether a stage's batches leave partial: the batching timeout fires before the
    ``batch - 1`` requests after the first have arrived (``rate x timeout < b - 1``).

    The same condition as `batch_fill_delay_ms` reaching the timeout (and
    `envs.model.power.expected_batch_size` falling below ``batch``), written as the fluid
    simulators test it. Uses ``&``, not ``and``, so that it also runs element-wise on
    NumPy arrays (the batched simulator).

    Args:
        batch: Batch size.
        arrival_rps: Arrival rate at the stage, requests per second.
        timeout_ms: Batching timeout (infinite: batches always fill).

    Returns:
        True where batches leave partial (never for a batch of one).
    """
    return (batch > 1) & (arrival_rps * (timeout_ms / 1e3) < batch - 1)


def stage_median_latency_ms(wait_ms: float, fill_ms: float, mean_ms: float) -> float:
    """A stage's part of the median end-to-end latency in the fluid simulators.

    Assumed (the fluid model has no latency distribution, only these three terms): the
    median request waits the whole backlog delay, half the worst-case batch-filling delay
    (`batch_fill_delay_ms` is the first request's wait; the last one's is 0, so with
    arrivals spread evenly the median waits half) and the mean batch latency (the
    profile's median is not measured; the mean stands for it). Element-wise on arrays.

    Args:
        wait_ms: Backlog delay ahead of the request (`backlog_delay_ms`).
        fill_ms: Worst-case batch-filling delay (`batch_fill_delay_ms`).
        mean_ms: Mean batch latency (`batch_latency_mean_ms`).

    Returns:
        Milliseconds: ``wait + 0.5 x fill + mean``.
    """
    return wait_ms + 0.5 * fill_ms + mean_ms


def late_fraction(p50_ms: float, p99_ms: float, sla_ms: float) -> float:
    """Share of one second's served requests whose latency exceeds the SLA, from the
    second's median and p99 end-to-end latency (the fluid simulators' SLA rule).

    The end points follow from the quantiles' definitions: 1 % of requests are slower
    than the p99 and 50 % slower than the p50, so the share is 0.01 at ``SLA = p99`` and
    0.5 at ``SLA = p50``. Between them it is assumed linear in the SLA (the distribution
    between the two quantiles is unknown to the fluid model): ``0.01 + 0.49 x (p99 - SLA)
    / (p99 - p50)``. Also assumed: none are late when ``p99 <= SLA`` (at most 1 % could
    be), all when ``p50 >= SLA`` (at least half are). The denominator is floored at
    1e-9 ms so that ``p50 == p99`` never divides by zero.

    Args:
        p50_ms: Median end-to-end latency (`stage_median_latency_ms` summed over stages).
        p99_ms: 99th-percentile end-to-end latency.
        sla_ms: End-to-end SLA.

    Returns:
        The late share in [0, 1].
    """
    if p99_ms <= sla_ms:
        return 0.0
    if p50_ms >= sla_ms:
        return 1.0
    return 0.01 + 0.49 * (p99_ms - sla_ms) / max(p99_ms - p50_ms, 1e-9)
