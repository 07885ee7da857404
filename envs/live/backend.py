"""`LiveBackend`: the `Backend` protocol over real stage servers on this machine.

Each replica is a `envs.live.server` process on 127.0.0.1 (`envs.live.local`); a
`envs.live.driver.PipelineDriver` replays the trace against them in real time. The
statistics (`envs.live.live_stats`) follow the request-level simulator
(`envs.backends.requests`).

Reconfiguration (`apply`), and where it differs from the simulators' replica model
(`envs.backends.replicas`):

* a batch-size change is sent to every replica at once (``POST /config``);
* a variant or cores change is applied in place by each replica: the old model serves
  until the new one is built and warm, then takes over the queue (no second allocation,
  and the switch takes the real build time rather than ``cold_start_s``);
* added replicas are real processes: they cost cores from their start and take requests
  once ``/readyz`` answers (the real cold start; ``cold_start_s`` is not used);
* removed replicas (newest first) stop taking requests at once and are stopped when their
  in-flight requests are done (at most ``drop_limit_s`` later).

A supervisor thread (`envs.live.supervision`) replaces replicas that exit or fail;
events report it.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path

import numpy as np

from envs.backends.base import IntervalStats, ServingSettings
from envs.config.errors import ConfigError
from envs.live import LiveError
from envs.live.driver import PipelineDriver, arrival_offsets
from envs.live.energy import CpuTimeEnergy
from envs.live.live_stats import ReplicaCounters, live_interval_stats, read_counters
from envs.live.local import LocalLauncher
from envs.live.replica import Replica, ReplicaConfig, check_catalog
from envs.live.supervision import answers_ready, send_config, serves, shutdown, supervise
from envs.metering.meter import Meter
from envs.model.spec import Decision, Pipeline
from envs.workload.traces import arrival_counts


class LiveBackend:
    """Serve a pipeline with real models in local processes.

    Args:
        pipeline: The profiled pipeline (its stage and variant names must exist in the
            catalog; its profile is only used to validate decisions and for accuracy).
        settings: Drop limit and batching timeout (``interval_s``, ``cold_start_s`` are not
            used: intervals last ``len(arrivals_rps)`` s, cold starts are real).
        catalog: `models.catalog` pipeline the servers build models from (default: the
            pipeline's name, e.g. ``video`` or ``tiny``).
        meter: An energy meter (RAPL, NVML, ...) read over every interval; None: estimate
            from the replicas' CPU time.
        load_scale: Multiplies the trace's rates, to what this machine can serve.
        dynamic_w_per_core: Busy-core power of the CPU-time estimate.
        workers: Requests the driver keeps in flight at most.
        startup_timeout_s: How long `reset` waits for replicas to be ready.
        log_dir: Where replica logs go (default: a temporary directory, removed on close).
    """

    def __init__(self, pipeline: Pipeline, settings: ServingSettings | None = None,
                 catalog: str | None = None, meter: Meter | None = None,
                 load_scale: float = 1.0, dynamic_w_per_core: float = 3.0, workers: int = 64,
                 startup_timeout_s: float = 120.0, log_dir: Path | None = None) -> None:
        if not load_scale > 0:
            raise ConfigError(f"load_scale must be > 0, got {load_scale}")
        self.pipeline = pipeline
        self.settings = settings or ServingSettings()
        self.catalog = pipeline.name if catalog is None else catalog
        check_catalog(pipeline, self.catalog)
        self.meter = meter
        self.load_scale = load_scale
        self._carry = 0.0  # the fraction of a request the last interval left (scaled traces)
        self.energy_model = CpuTimeEnergy(pipeline.fleet, dynamic_w_per_core)
        self.energy_estimated = meter is None
        self.workers = workers
        self.startup_timeout_s = startup_timeout_s
        self.log_dir = log_dir
        self.last_events: list[str] = []
        self.rng = np.random.default_rng()
        self._events: list[str] = []
        self._lock = threading.RLock()
        self._stages: list[list[Replica]] = [[] for _ in pipeline.stages]
        self._routable: list[tuple[Replica, ...]] = [() for _ in pipeline.stages]
        self._stage_config: list[ReplicaConfig] = []
        self._decision: Decision | None = None
        self._launcher: LocalLauncher | None = None
        self._driver: PipelineDriver | None = None
        self._stop = threading.Event()
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]

    # -- life cycle ------------------------------------------------------------------------
    def _start(self) -> None:
        self._launcher = LocalLauncher(self.catalog, self.settings.batch_timeout_ms,
                                       log_dir=self.log_dir)
        # the driver reads the routes list, not the backend, so that it keeps no reference
        # to the backend (its finalizer holds the driver)
        self._driver = PipelineDriver(len(self.pipeline.stages), self._routable.__getitem__,
                                      self.settings.drop_limit_s, workers=self.workers)
        supervisor = threading.Thread(target=supervise, args=(weakref.ref(self), self._stop),
                                      name="live-supervisor", daemon=True)
        supervisor.start()
        self._finalizer = weakref.finalize(self, shutdown, self._stop, self._driver,
                                           self._launcher)

    def reset(self, decision: Decision, seed: int | None = None) -> None:
        """Bring the servers to ``decision`` and wait until all are ready (no cold start).

        Args:
            decision: The configuration to serve.
            seed: Seed of the arrival times within each second.

        Raises:
            ActionError: If ``decision`` does not fit the pipeline.
            LiveError: If a replica does not get ready in ``startup_timeout_s`` or refuses
                its configuration.
        """
        self.pipeline.validate(decision)
        self.rng = np.random.default_rng(seed)
        self._carry = 0.0
        if self._launcher is None:
            self._start()
        assert self._launcher is not None and self._driver is not None
        with self._lock:
            self._configure(decision)
            for replicas in self._stages:
                for r in [r for r in replicas if r.retiring]:
                    self._launcher.stop(r)
            self._prune()
            active = [r for replicas in self._stages for r in replicas]
            self._launcher.wait_ready(active, self.startup_timeout_s)
            for r in active:
                self._sync(r, wait=True)
            now = time.monotonic()
            for r in active:
                r.ready_at = now
            self._refresh_routes()
        self._driver.clear()
        self._events.clear()
        self.last_events = []

    def apply(self, decision: Decision) -> None:
        """Reconfigure: batch and variant changes are sent to the servers, replicas are
        started (serving once ready) or retired (newest first).

        Args:
            decision: The configuration the local replicas move to.

        Raises:
            ActionError: If ``decision`` does not fit the pipeline.
            RuntimeError: If `reset` has not started the replicas.
        """
        self.pipeline.validate(decision)
        if self._launcher is None:
            raise RuntimeError("call reset(decision) before apply()")
        with self._lock:
            self._configure(decision)
            for replicas in self._stages:
                for r in replicas:
                    if r.ready_at is not None and not r.retiring:
                        self._sync(r, wait=False)
            self._refresh_routes()

    def _configure(self, decision: Decision) -> None:
        """Record the wanted configuration; start or retire replicas to match its counts."""
        assert self._launcher is not None
        self._decision = decision
        self._stage_config = [
            ReplicaConfig(stage.variants[c.variant].name, c.batch, c.cores)
            for stage, c in zip(self.pipeline.stages, decision.stages, strict=True)]
        now = time.monotonic()
        for s, choice in enumerate(decision.stages):
            active = [r for r in self._stages[s] if r.alive and not r.retiring]
            for r in sorted(active, key=lambda r: r.started_at)[choice.replicas:]:
                r.retiring, r.retire_since = True, now
            for _ in range(choice.replicas - len(active)):
                self._stages[s].append(self._launcher.start(
                    s, self.pipeline.stages[s].name, *self._stage_config[s]))

    def _sync(self, replica: Replica, wait: bool) -> None:
        """Send the stage's wanted configuration to a ready replica if it differs."""
        want = self._stage_config[replica.stage]
        if replica.config_sent != want:
            send_config(replica, want, wait, self.startup_timeout_s if wait else 5.0,
                        self._events)

    def _refresh_routes(self) -> None:
        # items are replaced, never mutated: the driver reads them without the lock
        for s, replicas in enumerate(self._stages):
            self._routable[s] = tuple(r for r in replicas if r.routable)

    def _prune(self) -> None:
        self._stages = [[r for r in replicas if r.alive] for replicas in self._stages]

    # -- supervision -----------------------------------------------------------------------
    def _tick(self) -> None:
        """Detect exits, readiness, recoveries and finished retirements (every 50 ms)."""
        launcher = self._launcher
        if launcher is None:
            return
        failing = self._driver.take_failing() if self._driver is not None else {}
        with self._lock:
            now = time.monotonic()
            for s, replicas in enumerate(self._stages):
                for r in list(replicas):
                    if r.retiring:
                        if r.inflight == 0 or now - r.retire_since > self.settings.drop_limit_s:
                            launcher.stop(r, grace_s=0.5)
                        continue
                    code = launcher.reap(r, block=False)
                    if code is None and r.name in failing:
                        launcher.stop(r, grace_s=0.5)
                        reason = failing[r.name]  # "answered 500 {...}"
                    elif code is not None:
                        reason = f"died (exit {code})"
                    else:
                        reason = ""
                    if reason:
                        new = launcher.start(s, r.stage_name, *self._stage_config[s])
                        replicas.append(new)
                        self._events.append(f"replica {r.name} {reason}; restarted as "
                                            f"{new.name}")
                    elif r.ready_at is None:
                        if launcher.poll_ready(r, timeout_s=0.2):
                            self._sync(r, wait=False)
                    elif not r.healthy:
                        r.healthy = answers_ready(r)
                        if r.healthy:
                            self._sync(r, wait=False)
            self._prune()
            self._refresh_routes()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until every replica is ready and serves the wanted configuration.

        Args:
            timeout_s: How long to wait.

        Raises:
            LiveError: Naming the replicas not settled after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = [r for replicas in self._stages for r in replicas
                           if not r.retiring and not serves(r, self._stage_config[r.stage])]
                retiring = [r for replicas in self._stages for r in replicas if r.retiring]
            if not pending and not retiring:
                return
            if time.monotonic() > deadline:
                names = ", ".join(r.name for r in pending + retiring)
                raise LiveError(f"replicas {names} not settled after {timeout_s:g} s")
            time.sleep(0.05)

    # -- intervals -------------------------------------------------------------------------
    def run_interval(self, arrivals_rps: np.ndarray) -> IntervalStats:
        """Replay one interval of the trace in real time and report it.

        Args:
            arrivals_rps: Arrival rate of each second (scaled by ``load_scale``).

        Returns:
            The interval's stats (`envs.live.live_stats`).

        Raises:
            RuntimeError: If `reset` was not called first.
        """
        if self._decision is None or self._driver is None:
            raise RuntimeError("call reset(decision) before run_interval()")
        counts, self._carry = arrival_counts(
            np.asarray(arrivals_rps, dtype=np.float64) * self.load_scale, self._carry)
        offsets = arrival_offsets(counts, self.rng)
        seconds = len(counts)
        before = self._snapshot()
        if self.meter is not None:
            self.meter.begin("live-interval")
        t0 = time.monotonic()
        arrived = self._driver.schedule(t0 + offsets)
        time.sleep(max(t0 + seconds - time.monotonic(), 0.0))
        t1 = time.monotonic()
        reading = self.meter.end("live-interval") if self.meter is not None else None
        after = self._snapshot()
        records, samples = self._driver.collect(t1)
        with self._lock:
            self.last_events, self._events = self._events, []
            replicas = [r for r in self._launcher.replicas  # type: ignore[union-attr]
                        if r.started_at < t1 and (r.stopped_at is None or r.stopped_at > t0)]
        assert self._decision is not None
        return live_interval_stats(
            self.pipeline, self._decision, self.energy_model, t0=t0, t1=t1, arrived=arrived,
            records=records, samples=samples, replicas=replicas,
            waiting=list(self._driver.waiting), before=before, after=after, reading=reading)

    def _snapshot(self) -> dict[int, ReplicaCounters]:
        """Per replica pid, the counters of the live replicas now."""
        with self._lock:
            replicas = [r for replicas in self._stages for r in replicas if r.alive]
        return read_counters(replicas, self._events)

    # -- inspection ------------------------------------------------------------------------
    def replicas(self, stage: int) -> list[Replica]:
        """The stage's live replicas (starting, ready or retiring).

        Args:
            stage: Stage index.

        Returns:
            A copy of the stage's replica list.
        """
        with self._lock:
            return list(self._stages[stage])

    def all_pids(self) -> list[int]:
        """Every replica process this backend started, running or not.

        Returns:
            Their process ids.
        """
        return [] if self._launcher is None else [r.pid for r in self._launcher.replicas]

    def close(self) -> None:
        """Stop the driver and every replica (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
