"""Fluid simulator: per-second fluid queues per stage. Fast enough for RL training.

Each second, every stage receives the previous stage's output (stage 0 the arrivals),
serves up to its capacity (online replicas x throughput), queues the rest and drops what
would wait past the drop limit. A request served in second t sees, per stage, the
backlog delay ahead of it, the batch-filling delay and the p99 (or mean) batch latency;
the interval's p99 and p50 are quantiles of these per-second latencies weighted by
requests served. A continuously batched stage has no batch-filling delay: its p99, mean
and power come from its load tables at each second's load per replica
(`envs.model.continuous_perf.replica_second`). SLA violations are drops plus the
requests whose latency, interpolated between the second's p50 and p99, exceeds the SLA
(`envs.model.perf.late_fraction`; the median's rule is
`envs.model.perf.stage_median_latency_ms`). The oldest queued request's age at the end is
`envs.backends.queue_age.fluid_oldest_wait_s`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from envs.backends.base import IntervalStats, ServingSettings, weighted_quantile
from envs.backends.queue_age import fluid_oldest_wait_s
from envs.backends.replicas import SimulatedBackend, allocated_core_s
from envs.backends.stats import interval_stats
from envs.model import continuous_perf, perf, power
from envs.model.continuous_perf import is_continuous
from envs.model.spec import Pipeline, Stage


class GroupRates(NamedTuple):
    """What the per-second loop needs of one replica group (unpacked in field order)."""

    throughput_rps: float
    """The group's capacity: replicas x one replica's throughput."""
    p99_ms: float
    """Batch latency p99 of the group's configuration."""
    mean_ms: float
    """Its mean batch latency."""
    energy_per_request_j: float
    """Dynamic energy per request with full batches."""
    batch: int
    """The group's batch size."""
    online_s: float
    """When the group starts serving."""
    until_s: float
    """When it stops (retired groups)."""


class FluidBackend(SimulatedBackend):
    """Per-second fluid-queue simulation of a profiled pipeline."""

    def __init__(self, pipeline: Pipeline, settings: ServingSettings | None = None) -> None:
        """Create the simulator (call `reset` before the first interval).

        Args:
            pipeline: The profiled pipeline to simulate.
            settings: Serving behaviour (None: the defaults).
        """
        super().__init__(pipeline, settings)
        self.queues: list[float] = []
        self.oldest_wait_s: list[float] = []
        self._rates: list[list[GroupRates]] = []
        self._cache: dict[tuple[str, int, int, int], tuple[float, float, float, float]] = {}

    def _on_reset(self, seed: int | None) -> None:
        self.queues = [0.0] * len(self.pipeline.stages)
        self.oldest_wait_s = [0.0] * len(self.pipeline.stages)
        self._prepare()

    def _on_apply(self) -> None:
        self._prepare()

    def _prepare(self) -> None:
        self._rates = []
        for stage, groups in zip(self.pipeline.stages, self.groups, strict=True):
            rates = []
            for g in groups:
                tp, p99, mean, e_req = self._config_rates(stage, g.variant, g.batch, g.cores)
                rates.append(GroupRates(g.count * tp, p99, mean, e_req, g.batch, g.online_s,
                                        g.until_s))
            self._rates.append(rates)

    def _config_rates(self, stage: Stage, variant: int, batch: int, cores: int
                      ) -> tuple[float, float, float, float]:
        """Per-replica throughput, p99 ms, mean ms and J per request (full batches), cached."""
        key = (stage.name, variant, batch, cores)
        rates = self._cache.get(key)
        if rates is None:
            v = stage.variants[variant]
            if is_continuous(stage):  # latency and energy depend on the load (run_interval)
                rates = self._cache[key] = (continuous_perf.saturated_rps(v, batch), 0.0, 0.0,
                                            0.0)
                return rates
            rates = self._cache[key] = (
                perf.replica_throughput_rps(v, batch, cores),
                perf.batch_latency_p99_ms(v, batch, cores),
                perf.batch_latency_mean_ms(v, batch, cores),
                power.energy_per_request_j(v, batch, cores),
            )
        return rates

    def _partial_energy(self, s: int, inflow: float) -> float:
        """Energy per request of stage ``s``'s serving groups when batches leave partial."""
        stage = self.pipeline.stages[s]
        timeout = self.settings.batch_timeout_ms
        g = self.groups[s][-1]  # the newest group sets the batch size
        return power.energy_per_request_j(stage.variants[g.variant], g.batch, g.cores, inflow,
                                         timeout)

    def _continuous_second(self, s: int, served: float, capacity: float
                           ) -> tuple[float, float, float, float]:
        """p99 ms, mean ms and power above idle of one replica of a continuously batched
        stage serving ``served`` req/s, and how many replicas serve (capacity over one
        replica's saturated rate; the newest group's configuration, as for batches)."""
        stage = self.pipeline.stages[s]
        g = self.groups[s][-1]
        variant = stage.variants[g.variant]
        replicas = capacity / continuous_perf.saturated_rps(variant, g.batch)
        if replicas <= 0.0:
            return 0.0, 0.0, 0.0, 0.0
        p99, mean, dyn_w = continuous_perf.replica_second(variant, g.batch, served / replicas)
        return p99, mean, dyn_w, replicas

    def _per_second(self, s: int, seconds: int) -> list[tuple[float, float, float, float, int]]:
        """Capacity (req/s), p99 ms, mean ms, J per request and batch of stage ``s`` for
        each second of the coming interval (capacity-weighted over online groups)."""
        out = []
        constant = all(online <= self.now and until >= self.now + seconds
                       for *_, online, until in self._rates[s])
        for j in range(1 if constant else seconds):
            t0 = self.now + j
            t1 = t0 + 1.0
            cap = p99 = mean = e_req = 0.0
            batch = 1
            for tp, g_p99, g_mean, g_e, g_batch, online, until in self._rates[s]:
                frac = min(t1, until) - max(t0, online)
                if frac <= 0.0:
                    continue
                c = tp * min(frac, 1.0)
                cap += c
                p99 += c * g_p99
                mean += c * g_mean
                e_req += c * g_e
                batch = g_batch
            if cap > 0.0:
                p99, mean, e_req = p99 / cap, mean / cap, e_req / cap
            out.append((cap, p99, mean, e_req, batch))
        return out * seconds if constant else out

    def run_interval(self, arrivals_rps: np.ndarray) -> IntervalStats:
        """Play one interval of the fluid queues and report it.

        Args:
            arrivals_rps: Arrival rate of each second; fractional rates flow as they are.

        Returns:
            The interval's stats; counts are the fluid expectations, rounded.

        Raises:
            RuntimeError: If `reset` was not called first.
        """
        decision = self._decision_in_force("run_interval")
        n_stages = len(self.pipeline.stages)
        rates = arrivals_rps.tolist()
        seconds = len(rates)
        timeout_ms = self.settings.batch_timeout_ms
        drop_limit_s = self.settings.drop_limit_s
        per_second = [self._per_second(s, seconds) for s in range(n_stages)]
        served_out = [0.0] * seconds
        e2e_p99 = [0.0] * seconds
        e2e_p50 = [0.0] * seconds
        stage_dropped = [0.0] * n_stages
        stage_served = [0.0] * n_stages
        stage_capacity = [0.0] * n_stages
        stage_lat99 = [[0.0] * seconds for _ in range(n_stages)]
        stage_out = [[0.0] * seconds for _ in range(n_stages)]
        stage_in = [[0.0] * seconds for _ in range(n_stages)]
        dynamic_j = 0.0
        queues = self.queues
        fill_delay = perf.batch_fill_delay_ms
        backlog_delay = perf.backlog_delay_ms
        partial = perf.partial_batches
        median_ms = perf.stage_median_latency_ms
        continuous = {s for s, stage in enumerate(self.pipeline.stages) if is_continuous(stage)}
        for j in range(seconds):
            inflow = rates[j]
            lat99 = lat50 = 0.0
            for s in range(n_stages):
                cap, p99, mean, e_req, batch = per_second[s][j]
                stage_in[s][j] = inflow
                backlog = queues[s]
                waiting = backlog + inflow
                served = waiting if waiting < cap else cap
                left = waiting - served
                limit = (cap if cap > inflow else inflow) * drop_limit_s
                if left > limit:
                    stage_dropped[s] += left - limit
                    left = limit
                queues[s] = left
                stage_served[s] += served
                stage_capacity[s] += cap
                wait_ms = backlog_delay(backlog, cap) if cap > 0.0 else 0.0
                if s in continuous:
                    p99, mean, dyn_w, replicas = self._continuous_second(s, served, cap)
                    dynamic_j += replicas * dyn_w
                    fill_ms = 0.0
                else:
                    if partial(batch, inflow, timeout_ms):
                        e_req = self._partial_energy(s, inflow)
                    dynamic_j += served * e_req
                    fill_ms = fill_delay(batch, inflow, timeout_ms)
                stage_ms = wait_ms + fill_ms + p99
                stage_lat99[s][j] = stage_ms
                stage_out[s][j] = served
                lat99 += stage_ms
                lat50 += median_ms(wait_ms, fill_ms, mean)
                inflow = served
            served_out[j] = inflow
            e2e_p99[j] = lat99
            e2e_p50[j] = lat50
        start, end = self.now, self.now + seconds
        self.now = end
        sla_ms = self.pipeline.sla_ms
        late = 0.0
        for served, p50, p99 in zip(served_out, e2e_p50, e2e_p99, strict=True):
            if p99 > sla_ms:  # (perf.late_fraction is 0 otherwise: skip the call)
                late += served * perf.late_fraction(p50, p99, sla_ms)
        core_s = sum(allocated_core_s(g, start, end) for g in self.groups)
        energy = self.interval_energy(start, end, dynamic_j)
        self.oldest_wait_s = [fluid_oldest_wait_s(stage_in[s], queues[s], self.oldest_wait_s[s])
                              for s in range(n_stages)]
        return interval_stats(
            self.pipeline, decision, seconds=float(seconds), arrived=sum(rates),
            served=sum(served_out), dropped=sum(stage_dropped), late=late, core_s=core_s,
            stage_utilisation=[s / c if c > 0 else 0.0
                               for s, c in zip(stage_served, stage_capacity, strict=True)],
            stage_queue=queues, stage_dropped=stage_dropped,
            stage_p99_ms=[weighted_quantile(lat, out, 0.99)
                          for lat, out in zip(stage_lat99, stage_out, strict=True)],
            energy=energy, energy_estimated=self.energy_estimated,
            energy_method=self.energy_method,
            p50_ms=weighted_quantile(e2e_p50, served_out, 0.5),
            p99_ms=weighted_quantile(e2e_p99, served_out, 0.99), end_state=self.end_state(),
            stage_oldest_wait_s=self.oldest_wait_s)

