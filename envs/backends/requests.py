"""Request-level simulator: every request, every batch, every replica (numba inner loop).

Arrivals: each second's count from the trace, at uniformly random times within the
second (a Poisson process conditioned on the count), or evenly spaced
(``arrival_process="uniform"``, where IPA's latency formula is exact).

Common random numbers: `envs.backends.crn` (a simulator seed fixes every arrival time
and service draw, whatever the policy does).

Each stage serves its input in arrival order. A batch is dispatched on the replica that
can start first, when it is full (the replica's batch size) or its oldest request has
waited the batching timeout; it takes a shifted-exponential service time with the
profile's mean and p99 for the batch's actual size (`perf.service_time_shape_ms`).
Requests older than the drop limit when their batch would start are dropped. A request's
end-to-end latency is its finish time at the last stage minus its arrival.

Only batches that start before an interval's end are committed in that interval; the
requests still waiting at a stage carry over and are batched with the next interval's
arrivals. An interval reports the requests that completed (or were dropped) in it, like
the fluid simulator, and the arrivals of the interval.
"""

from __future__ import annotations

import numba
import numpy as np

from envs.backends.base import IntervalStats, ServingSettings
from envs.backends.continuous_stage import ContinuousStage
from envs.backends.crn import crn_streams, service_draws
from envs.backends.replicas import SimulatedBackend, allocated_core_s
from envs.backends.stats import interval_stats, latency_quantile_ms
from envs.model import perf, power
from envs.model.continuous_perf import is_continuous
from envs.model.spec import Pipeline
from envs.workload.traces import arrival_counts


@numba.njit(cache=True)
def serve_stage(
    ready: np.ndarray, origin: np.ndarray, free_at: np.ndarray, rep_from: np.ndarray,
    rep_until: np.ndarray, rep_cfg: np.ndarray, rep_batch: np.ndarray, shift_s: np.ndarray,
    scale_s: np.ndarray, energy_j: np.ndarray, timeout_s: float, drop_limit_s: float,
    exps: np.ndarray, horizon: float,
) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Serve requests (sorted by ``ready``) on replicas, committing only batches that start
    before ``horizon``. Updates ``free_at``.

    Args:
        ready: When each request is ready at this stage (sorted).
        origin: When each entered the pipeline.
        free_at: When each replica is next free (updated in place).
        rep_from: When each replica starts serving.
        rep_until: When it stops.
        rep_cfg: Each replica's configuration row in the tables.
        rep_batch: Each replica's batch size.
        shift_s: Per configuration and batch size, the service time's shift.
        scale_s: Per configuration and batch size, its exponential scale.
        energy_j: Per configuration and batch size, the batch's dynamic energy.
        timeout_s: Partial-batch timeout.
        drop_limit_s: Age (since ``origin``) at which a request is dropped.
        exps: One unit-mean exponential draw per request (`service_draws`).
        horizon: End of the interval.

    Returns:
        ``(finish times (nan for dropped), dynamic energy, busy seconds per replica,
        index of the first request left pending)``.
    """
    n = ready.shape[0]
    n_rep = free_at.shape[0]
    finish = np.full(n, np.nan)
    busy = np.zeros(n_rep)
    energy = 0.0
    i = 0
    e = 0
    while i < n:
        best = -1
        best_t = np.inf
        for r in range(n_rep):
            t = max(free_at[r], rep_from[r])
            if t < rep_until[r] and t < best_t:
                best_t = t
                best = r
        if best < 0:
            break  # no replica will serve again: the rest stays pending
        b = rep_batch[best]
        last = i + b - 1
        full_t = ready[last] if last < n else np.inf
        start = max(best_t, min(full_t, ready[i] + timeout_s))
        if start >= horizon:
            break  # decided in a later interval, with the arrivals it may batch with
        if start >= rep_until[best]:
            free_at[best] = np.inf  # this replica retires before it could start
            continue
        if start - origin[i] > drop_limit_s:
            i += 1  # too old: dropped
            continue
        k = 1
        while k < b and i + k < n and ready[i + k] <= start:
            k += 1
        c = rep_cfg[best]
        service = shift_s[c, k] + scale_s[c, k] * exps[i]  # the first request's draw
        e += 1
        end = start + service
        for j in range(i, i + k):
            finish[j] = end
        free_at[best] = end
        busy[best] += service
        energy += energy_j[c, k]
        i += k
    return finish, energy, busy, i


class RequestBackend(SimulatedBackend):
    """Request-level discrete-event simulation of a profiled pipeline."""

    def __init__(
        self, pipeline: Pipeline, settings: ServingSettings | None = None,
        arrival_process: str = "poisson",
    ) -> None:
        """Create the simulator (call `reset` before the first interval).

        Args:
            pipeline: The profiled pipeline to simulate.
            settings: Serving behaviour (None: the defaults).
            arrival_process: ``poisson`` or ``uniform`` arrivals within each second.

        Raises:
            ValueError: An unknown arrival process.
        """
        if arrival_process not in ("poisson", "uniform"):
            raise ValueError(f"arrival_process must be 'poisson' or 'uniform', got "
                             f"{arrival_process!r}")
        super().__init__(pipeline, settings)
        self.arrival_process = arrival_process
        self.carry = 0.0
        self.rng, self.service_key = crn_streams(None)
        self.free_at: dict[int, np.ndarray] = {}
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._tables = [self._stage_tables(s) for s in range(len(pipeline.stages))]
        self.continuous = {s: ContinuousStage(pipeline, s, self.service_key)
                           for s, stage in enumerate(pipeline.stages) if is_continuous(stage)}

    def _stage_tables(self, s: int) -> tuple[dict[tuple[int, int], int], np.ndarray,
                                               np.ndarray, np.ndarray]:
        stage = self.pipeline.stages[s]
        configs = [(v, c) for v, variant in enumerate(stage.variants)
                   for c in variant.profile.core_counts]
        k_max = max(stage.variants[v].profile.max_batch(c) for v, c in configs)
        shift = np.full((len(configs), k_max + 1), np.inf)
        scale = np.zeros((len(configs), k_max + 1))
        energy = np.zeros((len(configs), k_max + 1))
        for i, (v, c) in enumerate(configs):
            variant = stage.variants[v]
            for k in range(1, variant.profile.max_batch(c) + 1):
                shift_ms, scale_ms = perf.service_time_shape_ms(
                    perf.batch_latency_mean_ms(variant, k, c),
                    perf.batch_latency_p99_ms(variant, k, c))
                shift[i, k] = shift_ms / 1e3
                scale[i, k] = scale_ms / 1e3
                energy[i, k] = power.batch_energy_j(variant, k, c)
        return {cfg: i for i, cfg in enumerate(configs)}, shift, scale, energy

    def _on_reset(self, seed: int | None) -> None:
        self.rng, self.service_key = crn_streams(seed)
        self.carry = 0.0
        for stage in self.continuous.values():
            stage.reset(self.service_key)
        self.free_at = {}
        empty = np.empty(0)
        self.pending = [(empty, empty) for _ in self.pipeline.stages]

    def _replicas(self, s: int) -> tuple[np.ndarray, ...]:
        index = self._tables[s][0]
        groups = self.groups[s]
        free = []
        for g in groups:
            kept = self.free_at.get(g.id, np.empty(0))[: g.count]
            pad = np.full(g.count - kept.shape[0], g.online_s)
            self.free_at[g.id] = np.concatenate([kept, pad])
            free.append(self.free_at[g.id])
        rep = lambda f: np.concatenate([np.full(g.count, f(g)) for g in groups])  # noqa: E731
        return (
            np.concatenate(free),
            rep(lambda g: g.online_s).astype(np.float64),
            rep(lambda g: g.until_s).astype(np.float64),
            rep(lambda g: index[(g.variant, g.cores)]).astype(np.int64),
            rep(lambda g: g.batch).astype(np.int64),
        )

    def arrivals(self, arrivals_rps: np.ndarray) -> np.ndarray:
        """Arrival times of one interval's requests, sorted.

        Each second gets ``rate`` requests; a fractional rate (a scaled trace) carries its
        fraction into the next second, so ``0.4`` req/s gives 2 requests in 5 s and the
        whole trace's count is kept. Whole rates give exactly their count.

        Args:
            arrivals_rps: Arrival rate of each second of the interval.

        Returns:
            Arrival times in seconds.
        """
        counts, self.carry = arrival_counts(arrivals_rps, self.carry)
        seconds = np.repeat(np.arange(len(counts), dtype=np.float64) + self.now, counts)
        if self.arrival_process == "uniform":
            offsets = np.concatenate([(np.arange(c) + 0.5) / c for c in counts if c > 0]
                                     or [np.empty(0)])
        else:
            offsets = self.rng.random(seconds.shape[0])
        times = seconds + offsets
        times.sort()
        return times

    def run_interval(self, arrivals_rps: np.ndarray) -> IntervalStats:
        """Serve one interval of arrivals request by request and report it.

        Args:
            arrivals_rps: Arrival rate of each second; a fraction carries to the next.

        Returns:
            The interval's stats, with every served request's latency.

        Raises:
            RuntimeError: If `reset` was not called first.
        """
        decision = self._decision_in_force("run_interval")
        start, end = self.now, self.now + len(arrivals_rps)
        new = self.arrivals(arrivals_rps)
        ready, origin = new, new
        dynamic_j = 0.0
        dropped = 0
        utilisation, queue, dropped_per_stage, stage_p99 = [], [], [], []
        oldest_ready = []
        for s in range(len(self.pipeline.stages)):
            if s in self.continuous:
                outcome = self.continuous[s].serve(ready, origin, self.groups[s], start, end,
                                                   self.settings.drop_limit_s)
                dynamic_j += outcome.dynamic_j
                utilisation.append(outcome.utilisation)
                queue.append(float(outcome.queued))
                oldest_ready.append(outcome.oldest_ready)
                ready, origin, dropped_s, p99 = _passed_on(outcome.ready, outcome.origin,
                                                           outcome.finish)
                dropped_per_stage.append(dropped_s)
                dropped += dropped_s
                stage_p99.append(p99)
                continue
            ready, origin = self._merge_pending(s, ready, origin)
            _, shift, scale, energy = self._tables[s]
            free_at, rep_from, rep_until, rep_cfg, rep_batch = self._replicas(s)
            exps = service_draws(origin, s, self.service_key)
            finish, stage_j, busy, stop = serve_stage(
                ready, origin, free_at, rep_from, rep_until, rep_cfg, rep_batch,
                shift, scale, energy, self.settings.batch_timeout_ms / 1e3,
                self.settings.drop_limit_s, exps, end)
            self._store_free(s, free_at)
            self.pending[s] = (ready[stop:], origin[stop:])
            dynamic_j += stage_j
            online = sum(g.count * g.overlap_s(start, end, allocated=False)
                         for g in self.groups[s])
            utilisation.append(min(float(busy.sum()) / online, 1.0) if online else 0.0)
            queue.append(float(ready.shape[0] - stop))
            oldest_ready.append(float(ready[stop]) if stop < ready.shape[0] else end)
            ready, origin, stage_drops, p99 = _passed_on(ready[:stop], origin[:stop],
                                                         finish[:stop])
            dropped_per_stage.append(stage_drops)
            dropped += stage_drops
            stage_p99.append(p99)
        self.now = end
        latencies_ms = (ready - origin) * 1e3
        late = int(np.count_nonzero(latencies_ms > self.pipeline.sla_ms))
        core_s = sum(allocated_core_s(g, start, end) for g in self.groups)
        energy = self.interval_energy(start, end, dynamic_j)
        return interval_stats(
            self.pipeline, decision, seconds=end - start, arrived=new.shape[0],
            served=ready.shape[0], dropped=dropped, late=late, core_s=core_s,
            stage_utilisation=utilisation, stage_queue=queue, stage_dropped=dropped_per_stage,
            stage_p99_ms=stage_p99, energy=energy, energy_estimated=self.energy_estimated,
            energy_method=self.energy_method, latencies_ms=latencies_ms,
            end_state=self.end_state(),
            stage_oldest_wait_s=[max(0.0, end - t) for t in oldest_ready])

    def _merge_pending(self, s: int, ready: np.ndarray, origin: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """This interval's input of stage ``s`` plus what waits there from before."""
        old_ready, old_origin = self.pending[s]
        if not old_ready.shape[0]:
            return ready, origin
        ready = np.concatenate([old_ready, ready])
        origin = np.concatenate([old_origin, origin])
        order = np.argsort(ready, kind="stable")
        return ready[order], origin[order]

    def _store_free(self, s: int, free_at: np.ndarray) -> None:
        offset = 0
        for g in self.groups[s]:
            self.free_at[g.id] = free_at[offset:offset + g.count]
            offset += g.count


def _passed_on(ready: np.ndarray, origin: np.ndarray, finish: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, int, float]:
    """The requests a stage decided, as the next stage's input (sorted by finish time),
    with the stage's drop count and p99 time in the stage.

    Args:
        ready: When each decided request was ready at the stage.
        origin: When it entered the pipeline.
        finish: When it finished (nan: dropped).
    """
    kept = ~np.isnan(finish)
    stage_ms = (finish[kept] - ready[kept]) * 1e3
    order = np.argsort(finish[kept], kind="stable")
    return (finish[kept][order], origin[kept][order], int(finish.shape[0] - kept.sum()),
            latency_quantile_ms(stage_ms, 99))
