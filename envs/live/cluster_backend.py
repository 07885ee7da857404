"""`ClusterBackend`: the `Backend` protocol over a pipeline deployed on a cluster.

Decisions go out through a launcher (`envs.live.k8s.K8sLauncher`: patches of each stage's
Deployment and its scale); each interval is read back from Prometheus, which scrapes the
stage servers' own metrics (`envs.live.server`, ``stage_server_*``):

* window: an interval ends when ``len(arrivals_rps)`` seconds have passed, then waits
  ``settle_s`` (at least one scrape interval) and queries Prometheus at the end time;
  the next interval starts where this one ended, so consecutive intervals tile and no
  request is counted twice or lost between them. Counters lag by up to one scrape
  interval at each end;
* served: increase of the last stage's ``stage_server_requests_total{result="served"}``;
  dropped: increase of ``result="dropped"`` summed over stages (per stage in
  ``stage_dropped``); arrived: served + dropped + the change of the requests queued at
  the stages (``stage_server_queue_length``);
* latency: each stage's ``stage_server_request_latency_seconds`` histogram over the
  window (increase of every bucket); ``stage_p99_ms`` from it, and the end-to-end
  quantiles as the sum of the stages' quantiles (exact for one stage, apart from the
  network; an approximation for several); SLA violations = dropped + served x the share
  of that summed distribution above the SLA;
* utilisation: increase of ``stage_server_busy_seconds_total`` over replica-seconds;
* energy: the increase of ``energy_query`` (a PromQL expression whose value is a joule
  counter, e.g. Kepler's ``kepler_container_joules_total``), labelled measured or
  estimated by ``energy_kind``: what that query reads (a RAPL or NVML counter is
  measured; a model's output is estimated);
* cores and cost from the applied decision (what the Deployments request).

Before the first interval (`reset`), Prometheus must answer and every query must return
series; otherwise `PrometheusError` names the URL or the query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from envs.backends.base import IntervalStats, ServingSettings
from envs.backends.stats import interval_stats
from envs.config.errors import ConfigError
from envs.live.prometheus import (
    PrometheusClient,
    PrometheusError,
    Series,
    counter_increase,
    group_by,
    share_above,
    stage_histogram,
    summed_quantile,
)
from envs.model.perf import cost_core_s, decision_cores
from envs.model.spec import Decision, Pipeline

__all__ = ["ClusterBackend", "ClusterQueries", "Launcher"]


class Launcher(Protocol):
    """What applies a decision to the cluster (`envs.live.k8s.K8sLauncher` is one)."""

    def apply(self, decision: Decision) -> object:
        """Bring the cluster to ``decision``.

        Args:
            decision: The configuration to apply.

        Returns:
            Whatever the launcher reports (`K8sLauncher`: the patches sent).
        """


@dataclass(frozen=True)
class ClusterQueries:
    """Where the backend finds the stage servers' metrics and the energy counter.

    Attributes:
        selector: Label matchers added to every stage-server metric, e.g.
            ``namespace="serving",job="kubernetes-pods"`` (empty: every scraped server).
        energy_query: PromQL whose instant value is cumulative joules of the pipeline
            (summed over its series), e.g. ``sum(kepler_container_joules_total{
            container_namespace="serving"})``.
        energy_kind: What ``energy_query`` reads: ``measured`` (a hardware counter such as
            RAPL or NVML) or ``estimated`` (a model). No default: say which.
    """

    energy_query: str
    energy_kind: Literal["measured", "estimated"]
    selector: str = ""

    def __post_init__(self) -> None:
        if self.energy_kind not in ("measured", "estimated"):
            raise ConfigError(f"energy_kind must be 'measured' or 'estimated', got "
                              f"{self.energy_kind!r}: say what energy_query reads")
        if not self.energy_query.strip():
            raise ConfigError("energy_query is empty; give a PromQL joule counter")

    def metric(self, name: str) -> str:
        """A stage-server metric with the selector's label matchers.

        Args:
            name: Metric name, e.g. ``stage_server_requests_total``.

        Returns:
            The PromQL selector.
        """
        return f"{name}{{{self.selector}}}"


@dataclass
class _Snapshot:
    at: float
    requests: Series
    buckets: Series
    busy: Series
    queue: Series
    energy: Series


class ClusterBackend:
    """Apply decisions through a launcher; read intervals back from Prometheus.

    Args:
        pipeline: The profiled pipeline (stage names = the servers' ``stage`` label).
        launcher: Applies decisions (a `K8sLauncher`).
        prometheus: The Prometheus that scrapes the stage servers.
        queries: Label selector and energy query.
        settings: SLA-related limits (``interval_s`` is not used: an interval lasts
            ``len(arrivals_rps)`` seconds).
        settle_s: Wait after an interval's end before querying (>= the scrape interval).
        traffic: Called with each interval's arrival rates at its start, to replay them
            against the pipeline (e.g. a `envs.live.driver.PipelineDriver`); None: the
            cluster's own traffic is observed and the rates are not used.
        sleep: The waiting function.
    """

    def __init__(self, pipeline: Pipeline, launcher: Launcher, prometheus: PrometheusClient,
                 queries: ClusterQueries, settings: ServingSettings | None = None,
                 settle_s: float = 15.0, traffic: Callable[[np.ndarray], object] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if settle_s < 0:
            raise ConfigError(f"settle_s must be >= 0, got {settle_s}")
        self.pipeline = pipeline
        self.settings = settings or ServingSettings.for_pipeline(pipeline)
        self.launcher = launcher
        self.prometheus = prometheus
        self.queries = queries
        self.settle_s = settle_s
        self.traffic = traffic
        self.sleep = sleep
        self.last_events: list[str] = []
        self.last_window: tuple[float, float] | None = None
        self._decision: Decision | None = None
        self._last: _Snapshot | None = None

    def check(self) -> None:
        """Prometheus answers and every query returns series.

        Raises:
            PrometheusError: Prometheus is not ready, or a query has no series (for a stage).
        """
        self.prometheus.check_ready()
        now = time.time()
        q = self.queries
        for what, name in (("requests", "stage_server_requests_total"),
                           ("latency", "stage_server_request_latency_seconds_bucket"),
                           ("busy", "stage_server_busy_seconds_total"),
                           ("queue", "stage_server_queue_length")):
            found = self.prometheus.require_series(q.metric(name), now, what)
            stages = {dict(k).get("stage") for k in found}
            missing = [s.name for s in self.pipeline.stages if s.name not in stages]
            if missing:
                raise PrometheusError(f"{what} query {q.metric(name)!r} has no series for "
                                      f"stages {missing} (found {sorted(map(str, stages))})")
        self.prometheus.require_series(q.energy_query, now, "energy")

    def reset(self, decision: Decision, seed: int | None = None) -> None:
        """Apply ``decision``, check Prometheus and the queries; the next interval starts now.

        Args:
            decision: The configuration to apply.
            seed: Not used (the cluster's randomness is its own).
        """
        del seed  # the cluster's randomness is its own
        self.pipeline.validate(decision)
        self.check()
        self.launcher.apply(decision)
        self._decision = decision
        self._last = None
        self.last_events = []

    def apply(self, decision: Decision) -> None:
        """Send ``decision`` to the cluster (rollouts and scaling take their real time).

        Args:
            decision: The configuration the launcher patches the cluster to.

        Raises:
            ActionError: If ``decision`` does not fit the pipeline.
            RuntimeError: If `reset` was not called first.
        """
        self.pipeline.validate(decision)
        if self._decision is None:
            raise RuntimeError("call reset(decision) before apply()")
        self.launcher.apply(decision)
        self._decision = decision

    def _snapshot(self, at: float) -> _Snapshot:
        p, q = self.prometheus, self.queries
        return _Snapshot(
            at=at,
            requests=p.query(q.metric("stage_server_requests_total"), at),
            buckets=p.query(q.metric("stage_server_request_latency_seconds_bucket"), at),
            busy=p.query(q.metric("stage_server_busy_seconds_total"), at),
            queue=p.query(q.metric("stage_server_queue_length"), at),
            energy=p.query(q.energy_query, at))

    def run_interval(self, arrivals_rps: np.ndarray) -> IntervalStats:
        """Wait one interval (replaying ``arrivals_rps`` if a traffic hook is set), then
        read it from Prometheus.

        Args:
            arrivals_rps: Arrival rate of each second; its length sets the interval.

        Returns:
            The interval's stats, from the counters' increase over the window.

        Raises:
            RuntimeError: If `reset` was not called first.
        """
        if self._decision is None:
            raise RuntimeError("call reset(decision) before run_interval()")
        t0 = time.time()
        if self.traffic is not None:
            self.traffic(np.asarray(arrivals_rps, dtype=np.float64))
        self.sleep(max(t0 + len(arrivals_rps) - time.time(), 0.0))
        t1 = time.time()
        self.sleep(self.settle_s)  # the scrapes up to t1 have landed
        # the first interval's start is read now too, at its own time (no extra wait)
        start = self._last if self._last is not None else self._snapshot(t0)
        end = self._snapshot(t1)
        self._last = end
        self.last_window = (start.at, end.at)
        return self._stats(start, end)

    def _stats(self, start: _Snapshot, end: _Snapshot) -> IntervalStats:
        stages = [s.name for s in self.pipeline.stages]
        decision = self._decision
        assert decision is not None
        seconds = end.at - start.at
        req = group_by(counter_increase(start.requests, end.requests), ("stage", "result"))
        busy = group_by(counter_increase(start.busy, end.busy), ("stage",))
        queue_end = group_by(end.queue, ("stage",))
        queue_start = group_by(start.queue, ("stage",))
        stage_dropped = [round(req.get((s, "dropped"), 0.0)) for s in stages]
        served = round(req.get((stages[-1], "served"), 0.0))
        dropped = sum(stage_dropped)
        queued = sum(queue_end.get((s,), 0.0) - queue_start.get((s,), 0.0) for s in stages)
        buckets = counter_increase(start.buckets, end.buckets)
        hists = [stage_histogram(buckets, s) for s in stages]
        p50 = summed_quantile(hists, 0.50)
        p99 = summed_quantile(hists, 0.99)
        late = round(served * share_above(hists, self.pipeline.sla_ms / 1e3))
        energy = sum(counter_increase(start.energy, end.energy).values())
        util = []
        for s, choice in zip(stages, decision.stages, strict=True):
            online = choice.replicas * seconds
            util.append(min(busy.get((s,), 0.0) / online, 1.0) if online > 0 else 0.0)
        return interval_stats(
            self.pipeline, decision, seconds=seconds,
            arrived=max(round(served + dropped + queued), 0), served=served, dropped=dropped,
            late=late, p50_ms=p50 * 1e3, p99_ms=p99 * 1e3,
            core_s=cost_core_s(decision_cores(decision), seconds), energy_j=energy,
            energy_estimated=self.queries.energy_kind == "estimated",
            stage_utilisation=util,
            stage_queue=[queue_end.get((s,), 0.0) for s in stages],
            stage_dropped=stage_dropped,
            stage_p99_ms=[summed_quantile([h], 0.99) * 1e3 for h in hists])

    def close(self) -> None:
        """Nothing to release: the cluster keeps running."""
