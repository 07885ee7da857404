"""What `LiveBackend` reads of an interval: the replicas' counters before and after it,
and the interval's `IntervalStats` from them and the driver's request records.

The statistics follow the request-level simulator (`envs.backends.requests`):

* arrivals: each second's count (``rint(rate x load_scale)``) at uniformly random times
  within the second; an interval lasts ``len(arrivals_rps)`` seconds of wall-clock time;
* an interval reports the requests that completed (or were dropped) during it, latency
  = last stage's answer minus arrival; ``stage_p99_ms`` from each stage's send-to-answer
  time; drops are requests whose budget (``drop_limit_s``) ran out before a batch took
  them, or while no replica of a stage could take them;
* utilisation = busy compute seconds (the servers' counter) / ready replica-seconds;
  queue = requests waiting for a batch (servers' gauge) or for a replica, at the end;
* cores and cost count each replica process from its start to its stop;
* errors: requests a replica failed (it died with them in flight, or answered 500) are
  ``errors``, counted apart from drops and as SLA violations;
* energy: the meter's reading over the interval when a meter is given (RAPL, NVML, ...;
  a `energy.meters.TdpEstimator` reading is labelled estimated, with its method), else
  `envs.live.energy.CpuTimeEnergy` from the replicas' CPU time (estimated); when a
  replica's CPU time cannot be read the interval's energy is unknown: NaN, with the reason
  in ``energy_method`` (never 0 J).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from envs.backends.base import IntervalStats
from envs.backends.stats import interval_stats, latency_quantile_ms
from envs.live.energy import CpuTimeEnergy, proc_cpu_seconds
from envs.live.http_client import http_json
from envs.live.metrics_text import metric_sum, parse_metrics
from envs.live.records import RequestRecord, StageSample
from envs.live.replica import Replica
from envs.metering.reading import EnergyReading
from envs.model.spec import Decision, Pipeline


class ReplicaCounters(NamedTuple):
    """A replica's cumulative counters at one moment (nan: could not be read)."""

    busy_s: float
    """Seconds spent computing batches (the server's counter)."""
    queue: float
    """Requests waiting for a batch (the server's gauge)."""
    cpu_s: float
    """CPU seconds of the replica process (``/proc``)."""


def read_counters(replicas: list[Replica], events: list[str]) -> dict[int, ReplicaCounters]:
    """Each replica's counters now, by pid; a failed metrics read is reported in ``events``.

    Args:
        replicas: The live replicas to read.
        events: Where failures are reported (the backend's events of the interval).

    Returns:
        Per replica pid, its counters (nan where unknown).
    """
    out: dict[int, ReplicaCounters] = {}
    for r in replicas:
        busy = queue = math.nan
        if r.ready_at is not None and r.port:
            try:
                status, text = http_json(r.host, r.port, "GET", "/metrics", timeout_s=1.0)
                if status == 200:
                    samples = parse_metrics(text)
                    busy = metric_sum(samples, "stage_server_busy_seconds_total")
                    queue = metric_sum(samples, "stage_server_queue_length")
            except OSError as err:
                events.append(f"replica {r.name}: GET /metrics failed ({err}); "
                              "its utilisation and queue are unknown this interval")
        cpu = proc_cpu_seconds(r.pid)
        out[r.pid] = ReplicaCounters(busy, queue, math.nan if cpu is None else cpu)
    return out


def live_interval_stats(
    pipeline: Pipeline, decision: Decision, energy_model: CpuTimeEnergy, *, t0: float,
    t1: float, arrived: int, records: list[RequestRecord], samples: list[StageSample],
    replicas: list[Replica], waiting: list[int], before: dict[int, ReplicaCounters],
    after: dict[int, ReplicaCounters], reading: EnergyReading | None,
) -> IntervalStats:
    """The interval ``[t0, t1)`` of the live pipeline as `IntervalStats`.

    Args:
        pipeline: The pipeline served.
        decision: The decision in force.
        energy_model: The CPU-time estimate used when there is no meter reading.
        t0: Start of the interval (monotonic seconds).
        t1: Its end.
        arrived: Requests scheduled during the interval.
        records: The requests that completed, were dropped or failed during it.
        samples: Per-stage send/answer times of those requests.
        replicas: The replicas that ran at some point in the interval.
        waiting: Per stage, requests the driver holds for want of a replica.
        before: Replica counters at ``t0`` (`read_counters`).
        after: Replica counters at ``t1``.
        reading: The meter's reading over the interval (None: no meter).

    Returns:
        The interval's stats.
    """
    n = len(pipeline.stages)
    seconds = t1 - t0
    served = [r for r in records if r.outcome == "served"]
    latencies_ms = np.array([r.latency_ms for r in served], dtype=np.float64)
    stage_dropped = [0] * n
    for r in records:
        if r.outcome == "dropped" and r.dropped_at is not None:
            stage_dropped[r.dropped_at] += 1
    dropped = sum(stage_dropped)
    errors = sum(1 for r in records if r.outcome == "error")
    late = int(np.count_nonzero(latencies_ms > pipeline.sla_ms))
    stage_p99 = []
    for s in range(n):
        ms = [(x.received - x.sent) * 1e3 for x in samples
              if x.stage == s and x.outcome == "served"]
        stage_p99.append(latency_quantile_ms(np.array(ms, dtype=np.float64), 99))
    core_s = cpu_s = 0.0
    unknown_cpu: list[str] = []
    busy = [0.0] * n
    online = [0.0] * n
    queue = [float(w) for w in waiting]
    for r in replicas:
        end = min(r.stopped_at or t1, t1)
        core_s += r.cores * max(0.0, end - max(r.started_at, t0))
        if r.ready_at is not None:
            online[r.stage] += max(0.0, end - max(r.ready_at, t0))
        # a replica started during the interval used no CPU time before it
        busy0, _, cpu0 = before.get(r.pid, ReplicaCounters(0.0, 0.0, 0.0))
        busy1, queue1, cpu1 = after.get(r.pid, ReplicaCounters(math.nan, 0.0, math.nan))
        if math.isnan(cpu1) and r.final_cpu_s is not None:
            cpu1 = r.final_cpu_s  # it exited: wait4's figure
        if math.isnan(cpu0) or math.isnan(cpu1):
            unknown_cpu.append(r.name)
        else:
            cpu_s += max(cpu1 - cpu0, 0.0)
        if not math.isnan(busy1):
            busy[r.stage] += max(busy1 - (0.0 if math.isnan(busy0) else busy0), 0.0)
        if not math.isnan(queue1):
            queue[r.stage] += queue1
    parts = None
    if reading is not None:
        energy_j, estimated = reading.total_j, reading.estimated
        method = f"{'estimated' if estimated else 'measured'}: {reading.method}"
    elif unknown_cpu:
        energy_j, estimated = math.nan, True
        method = (f"unknown: the CPU time of replicas {unknown_cpu} could not be read "
                  "(/proc and wait4 had no figure)")
    else:
        parts = energy_model.energy_parts(seconds, core_s, cpu_s)
        energy_j, estimated = parts.total_j, True
        method = energy_model.describe()
    return interval_stats(
        pipeline, decision, seconds=seconds, arrived=arrived, served=len(served),
        dropped=dropped, late=late, errors=errors, core_s=core_s,
        stage_utilisation=[min(b / o, 1.0) if o > 0 else 0.0
                           for b, o in zip(busy, online, strict=True)],
        stage_queue=queue, stage_dropped=stage_dropped, stage_p99_ms=stage_p99,
        energy=parts, energy_j=energy_j, energy_estimated=estimated, energy_method=method,
        latencies_ms=latencies_ms)
