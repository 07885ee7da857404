"""The fluid simulator of `envs.backends.fluid` for N pipelines at once, in array form.

State and rules are `FluidBackend`'s, held as ``(envs, stages)`` arrays:

* the replicas of a stage are at most three groups (`envs.backends.replicas`): the current
  configuration's replicas that serve from the interval's start (``n_on``), those added at
  this interval's decision (``n_new``, serving ``cold_start_s`` later) and, after a variant
  change, the old variant's replicas (``n_ret``), serving until the new ones are ready.
  This is exact while ``cold_start_s <= interval_s`` (every group added at one decision is
  online by the next), which `BatchedFluid` requires;
* every second, every stage serves up to its capacity, queues the rest and drops what
  would wait past the drop limit; latencies, SLA violations, energy and the power model
  follow `FluidBackend.run_interval` line by line, with the `envs.model.perf` functions in their
  array forms (`envs.batched.array_perf`).

A continuously batched stage reads its load tables per second (`envs.batched.continuous`).
The `envs.model.perf` math runs as array operations over ``(env, stage, second)``; the queue
recursion over seconds and stages and the interval's sums and quantiles (fluid rules, no
`envs.model.perf` formula) are compiled loops (`envs.batched.kernels`).
"""

from __future__ import annotations

import numpy as np

from envs.backends.base import ServingSettings
from envs.batched import array_perf as ap
from envs.batched import kernels
from envs.batched.batch_stats import BatchStats
from envs.batched.continuous import ContinuousTables
from envs.batched.tables import Tables
from envs.model import node_power, perf
from envs.model.spec import Pipeline


class BatchedFluid:
    """N copies of `FluidBackend` over one pipeline, stepped together.

    A stage's replica groups are held as in `envs.backends.replicas`, in the same order:
    ``counts[env, stage, :]`` are the groups of the configuration in force before this
    interval's decision (oldest first; retired this interval where ``retired``, serving
    until ``cold_start_s`` with ``ret_v``/``ret_bi``), and ``n_new`` the group the
    decision added (serving after ``cold_start_s``). Group by group, sums run in the
    order `FluidBackend` adds them, so results agree to the last bit.

    Args:
        pipeline: The pipeline every env simulates.
        settings: Serving settings (as `FluidBackend`'s); ``0 <= cold_start_s <=
            interval_s`` and no size-dependent loads or node power states, else
            `envs.batched.groups.BatchedGroupFluid` (`envs.batched.support.needs_replica_groups`).
        n_envs: How many envs.
        max_replicas: Most replicas a stage can hold (bounds the number of groups).
    """

    def __init__(self, pipeline: Pipeline, settings: ServingSettings, n_envs: int,
                 max_replicas: int) -> None:
        self.pipeline, self.settings, self.n_envs = pipeline, settings, n_envs
        self.tables = Tables.for_pipeline(pipeline)
        self.continuous = ContinuousTables(pipeline)
        self.n_stages = len(pipeline.stages)
        shape = (n_envs, self.n_stages)
        self.cur_v = np.zeros(shape, dtype=np.int64)
        self.cur_bi = np.zeros(shape, dtype=np.int64)
        self.counts = np.zeros((*shape, max_replicas + 1), dtype=np.int64)
        self.retired = np.zeros(shape, dtype=bool)
        self.ret_v = np.zeros(shape, dtype=np.int64)
        self.ret_bi = np.zeros(shape, dtype=np.int64)
        self.n_new = np.zeros(shape, dtype=np.int64)
        self.queues = np.zeros(shape)
        self.oldest_wait_s = np.zeros(shape)
        self.now = np.zeros(n_envs)
        self._powered_end = np.zeros((n_envs, len(pipeline.fleet.pools)), dtype=np.int64)
        self._stage = np.arange(self.n_stages)

    def reset(self, envs: np.ndarray, v: np.ndarray, bi: np.ndarray, r: np.ndarray) -> None:
        """Start ``envs`` over at time 0 with the given decision warm (`reset`).

        Args:
            envs: Indices of the envs to reset.
            v: Their ``(stages,)`` (or ``(envs, stages)``) variant indices.
            bi: Their batch-size indices.
            r: Their replicas.
        """
        self.cur_v[envs], self.cur_bi[envs] = v, bi
        self.counts[envs] = 0
        self.counts[envs, :, 0] = r
        self.n_new[envs] = 0
        self.retired[envs] = False
        self.queues[envs] = 0.0
        self.oldest_wait_s[envs] = 0.0
        self.now[envs] = 0.0

    def apply(self, v: np.ndarray, bi: np.ndarray, r: np.ndarray) -> None:
        """Every env's new decision (`envs.backends.replicas.apply_choice`; a stage whose
        choice did not change is left as it is).

        Args:
            v: ``(envs, stages)`` variant indices.
            bi: ``(envs, stages)`` batch-size indices.
            r: ``(envs, stages)`` replicas.
        """
        counts = self.counts  # at an interval's start: the groups in force, all serving
        have = counts.sum(axis=-1)
        same = v == self.cur_v
        before = np.cumsum(counts, axis=-1) - counts
        kept = np.clip(r[..., None] - before, 0, counts)  # the newest go first
        self.counts = np.where(same[..., None], kept, counts)
        self.retired = ~same
        self.ret_v = np.where(same, self.ret_v, self.cur_v)
        self.ret_bi = np.where(same, self.ret_bi, self.cur_bi)
        self.n_new = np.where(same, np.maximum(r - have, 0), r)
        self.cur_v, self.cur_bi = v, bi

    def _end_interval(self, seconds: int) -> None:
        """Retired groups are gone and the new group serves from the next interval."""
        slot = np.where(self.retired, 0, (self.counts > 0).sum(axis=-1))
        kept = np.where(self.retired[..., None], 0, self.counts)
        put = (np.arange(self.counts.shape[-1]) == slot[..., None]) & (self.n_new > 0)[..., None]
        self.counts = np.where(put, self.n_new[..., None], kept)
        self.n_new = np.zeros_like(self.n_new)
        self.retired = np.zeros_like(self.retired)
        self.now = self.now + seconds

    def _per_second(self, seconds: int) -> tuple[np.ndarray, ...]:
        """Capacity, p99, mean, J per request (full batches) and batch size of each
        ``(env, stage, second)``: `FluidBackend._per_second`, group by group."""
        t = self.tables
        s = self._stage
        cur, prev = (s, self.cur_v, self.cur_bi), (s, self.ret_v, self.ret_bi)
        tables = (t.capacity_rps, t.p99_ms, t.mean_ms, t.energy_full_j)
        now = np.stack([x[cur] for x in tables] + [t.batch_sizes[s, self.cur_bi]])
        before = np.stack([x[prev] for x in tables] + [t.batch_sizes[s, self.ret_bi]])
        old = np.where(self.retired, before, now)
        # The groups in force, then the new one (`FluidBackend`'s order): a retired group
        # serves until the new one is ready, the new one from then on.
        ready = (self.now + self.settings.cold_start_s)[:, None, None]
        n_old = self.counts.shape[-1]
        count = np.concatenate([self.counts, self.n_new[..., None]], axis=-1)
        rates = np.concatenate([np.repeat(old[..., None], n_old, axis=-1), now[..., None]],
                               axis=-1)
        until = np.where(self.retired[..., None], ready, np.inf)
        window = np.stack([
            np.concatenate([np.full(self.counts.shape, -np.inf),
                            np.broadcast_to(ready, (*self.n_new.shape, 1))], axis=-1),
            np.concatenate([np.broadcast_to(until, self.counts.shape),
                            np.full((*self.n_new.shape, 1), np.inf)], axis=-1)])
        return kernels.per_second_groups(self.now, seconds, count.astype(float), rates, window)

    def run_interval(self, arrivals_rps: np.ndarray) -> BatchStats:
        """Serve one interval of per-second arrivals ``(envs, seconds)`` in every env.

        Args:
            arrivals_rps: ``(envs, seconds)`` arrival rates.

        Returns:
            Every env's stats of the interval.
        """
        n, seconds = arrivals_rps.shape
        n_s = self.n_stages
        cfg = self.settings
        timeout_ms, drop_s = cfg.batch_timeout_ms, cfg.drop_limit_s
        cap, p99, mean, e_full, batch = self._per_second(seconds)
        inflow_a, backlog_a, served_a, drop_a = (np.empty((n, n_s, seconds)) for _ in range(4))
        kernels.queue_recursion(arrivals_rps, np.ascontiguousarray(cap), self.queues, drop_s,
                        inflow_a, backlog_a, served_a, drop_a)
        # Partial batches: the newest group's (current) configuration sets their energy.
        t = self.tables
        partial = perf.partial_batches(batch, inflow_a, timeout_ms)
        n_v = t.throughput_rps.shape[1]
        row = np.broadcast_to((self._stage * n_v + self.cur_v)[..., None], batch.shape)
        size_cur = np.broadcast_to(t.batch_sizes[self._stage, self.cur_bi][..., None],
                                   batch.shape)
        e_partial = ap.energy_per_request_j(t.energy_by_batch, row, size_cur, inflow_a,
                                            timeout_ms)
        e_req = np.where(partial, e_partial, e_full)
        wait_ms = np.where(cap > 0.0, ap.backlog_delay_ms(backlog_a, cap), 0.0)
        fill_ms = ap.batch_fill_delay_ms(batch, inflow_a, timeout_ms)
        for k in self.continuous.stages:  # load-dependent, no batch to fill
            p99_k, mean_k, dynamic_w = self.continuous.seconds(
                k, self.cur_v[:, k], self.cur_bi[:, k], cap[:, k], served_a[:, k])
            p99[:, k], mean[:, k], fill_ms[:, k] = p99_k, mean_k, 0.0
            served_k = served_a[:, k]
            e_req[:, k] = np.where(served_k > 0.0, dynamic_w / np.where(served_k > 0.0,
                                                                        served_k, 1.0), 0.0)
        (arrived, served_total, dropped, late, dynamic_j, p50_ms, p99_ms, stage_dropped,
         stage_served, stage_capacity, stage_p99_ms) = kernels.interval_sums(
            arrivals_rps, served_a, drop_a, cap, e_req, wait_ms + fill_ms + p99,
            perf.stage_median_latency_ms(wait_ms, fill_ms, mean), self.pipeline.sla_ms)
        core_s, energy = self._allocation(seconds)
        static_j, idle_j = energy
        self.oldest_wait_s = kernels.oldest_wait(inflow_a, self.queues, self.oldest_wait_s)
        loading, booting, powered = self._end_state()
        total_j = static_j + idle_j + dynamic_j
        acc_sum = np.zeros(n)
        acc_prod = np.ones(n)
        for k in range(n_s):
            acc_sum = acc_sum + t.rank[k, self.cur_v[:, k]]
            acc_prod = acc_prod * t.accuracy_frac[k, self.cur_v[:, k]]
        stats = BatchStats(
            seconds=float(seconds),
            arrived=np.rint(arrived).astype(np.int64),
            served=np.rint(served_total).astype(np.int64),
            dropped=np.rint(dropped).astype(np.int64),
            sla_violations=np.rint(dropped + late).astype(np.int64),
            p50_ms=p50_ms, p99_ms=p99_ms,
            accuracy_rank_sum=acc_sum, accuracy_product=acc_prod,
            cores=core_s / seconds if seconds else np.zeros(n), cost_core_s=core_s,
            energy_j=total_j, static_j=static_j, idle_j=idle_j, dynamic_j=dynamic_j,
            stage_utilisation=np.where(stage_capacity > 0.0, stage_served
                                       / np.where(stage_capacity > 0.0, stage_capacity, 1.0),
                                       0.0),
            stage_queue=self.queues.copy(),
            stage_dropped=np.rint(stage_dropped).astype(np.int64),
            stage_p99_ms=stage_p99_ms,
            stage_loading=loading,
            stage_oldest_wait_s=self.oldest_wait_s.copy(),
            pool_booting=booting,
            pool_powered=powered,
        )
        self._end_interval(seconds)
        return stats

    def _end_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replicas loading per stage, nodes booting and powered per pool at the interval's
        end (`SimulatedBackend.end_state`): every added replica serves by then, and the
        powered nodes are those the interval's last allocation needs."""
        n_pools = self._powered_end.shape[1]
        return (np.zeros((self.n_envs, self.n_stages), dtype=np.int64),
                np.zeros((self.n_envs, n_pools), dtype=np.int64), self._powered_end.copy())

    def _allocation(self, seconds: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Core-seconds and (static, idle) energy of the interval
        (`allocated_core_s`, `allocation_segments`, `node_power.energy_parts`)."""
        t, s = self.tables, self._stage
        cold = self.settings.cold_start_s
        start, end = self.now, self.now + seconds
        c_cur = t.cores[s, self.cur_v]
        c_old = np.where(self.retired, t.cores[s, self.ret_v], c_cur)
        until = start + cold
        retired_s = np.maximum(0.0, np.minimum(end, until) - start)[:, None]
        held_s = np.where(self.retired, retired_s, (end - start)[:, None])
        old_core_s = np.cumsum((self.counts * c_old[..., None]) * held_s[..., None], axis=-1)
        per_stage = old_core_s[..., -1] + (self.n_new * c_cur) * (end - start)[:, None]
        core_s = np.zeros(len(start))
        for k in range(self.n_stages):
            core_s = core_s + per_stage[:, k]
        old_devices = self.counts.sum(axis=-1) * c_old
        new_devices = self.n_new * c_cur
        pool_cur = t.pool[s, self.cur_v]
        pool_old = np.where(self.retired, t.pool[s, self.ret_v], pool_cur)
        cut = self.retired.any(axis=1) & (start < until) & (until < end)
        first_s = np.where(cut, until - start, end - start)
        second_s = np.where(cut, end - until, 0.0)
        fleet = self.pipeline.fleet
        node_s, device_s = [], []
        for p, pool in enumerate(fleet.pools):
            old_p = np.where(pool_old == p, old_devices, 0)
            rest = (np.where(self.retired, 0, old_p)
                    + np.where(pool_cur == p, new_devices, 0)).sum(axis=1)
            held = rest + (np.where(self.retired, old_p, 0).sum(axis=1) if cold > 0.0 else 0)
            device_s.append(np.where(cut, first_s * held + second_s * rest, first_s * held))
            nodes_held, nodes_rest = ap.powered_nodes(pool, held), ap.powered_nodes(pool, rest)
            node_s.append(np.where(cut, first_s * nodes_held + second_s * nodes_rest,
                                   first_s * nodes_held))
            self._powered_end[:, p] = np.where(cut, nodes_rest, nodes_held)
        return core_s, (node_power.static_energy_j(fleet, node_s),
                        node_power.idle_energy_j(fleet, node_s, device_s))
