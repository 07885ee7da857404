"""`BatchedFluid` for what its three replica groups cannot hold: cold starts longer than an
interval, size-dependent model loads (`envs.model.perf.model_load_s`) and node power states
(`envs.backends.nodes`: boots of 60-300 s delay replicas for many intervals).

Each env keeps its replica groups and its pools' node states in a `SimulatedBackend`, the
bookkeeping both scalar simulators use (`envs.backends.replicas.apply_choice`,
`envs.backends.nodes.NodeStates`), so the rule is not re-typed; the allocation's energy is
`SimulatedBackend.interval_energy` of each env. Only the serving math runs in arrays: each
second's capacity-weighted rates of the groups serving then (`kernels.per_second_groups`,
the loop of `FluidBackend._per_second`), then the queues, latencies and sums of
`BatchedFluid`.

The per-env Python work is one `apply_choice` per changed stage and one energy integral per
interval, so this form is slower than the three-group one; `BatchedPipelineVecEnv` uses it
only where it is needed (`envs.batched.support.needs_replica_groups`).
"""

from __future__ import annotations

import numpy as np

from envs.backends.base import ServingSettings
from envs.backends.replicas import SimulatedBackend, allocated_core_s
from envs.batched import kernels
from envs.batched.actions import Decisions
from envs.batched.fluid import BatchedFluid
from envs.model.spec import Decision, Pipeline


class BatchedGroupFluid(BatchedFluid):
    """N `FluidBackend`s whose replica groups and node states are kept per env (module
    docstring); same arguments and results as `BatchedFluid`.

    Args:
        pipeline: The pipeline every env simulates.
        settings: Serving settings (any cold start, model-load scale).
        n_envs: How many envs.
        max_replicas: Most replicas a stage can hold.
    """

    def __init__(self, pipeline: Pipeline, settings: ServingSettings, n_envs: int,
                 max_replicas: int) -> None:
        super().__init__(pipeline, settings, n_envs, max_replicas)
        self.books = [SimulatedBackend(pipeline, settings) for _ in range(n_envs)]
        self._decisions = Decisions([s.batch_sizes for s in pipeline.stages], self.tables.cores)
        self._in_force: list[Decision | None] = [None] * n_envs
        self._batch_index = [{b: i for i, b in enumerate(s.batch_sizes)}
                             for s in pipeline.stages]

    def reset(self, envs: np.ndarray, v: np.ndarray, bi: np.ndarray, r: np.ndarray) -> None:
        """`BatchedFluid.reset`, and each reset env's groups and nodes warm on its decision.

        Args:
            envs: Indices of the envs to reset.
            v: Their variant indices.
            bi: Their batch-size indices.
            r: Their replicas.
        """
        super().reset(envs, v, bi, r)
        for i in np.atleast_1d(envs).tolist():
            decision = self._decisions.decision(self.cur_v[i].tolist(), self.cur_bi[i].tolist(),
                                                self.counts[i, :, 0].tolist())
            self.books[i].reset(decision)
            self._in_force[i] = decision

    def apply(self, v: np.ndarray, bi: np.ndarray, r: np.ndarray) -> None:
        """Every env's new decision, applied as `PipelineEnv` applies it (only if changed).

        Args:
            v: ``(envs, stages)`` variant indices.
            bi: ``(envs, stages)`` batch-size indices.
            r: ``(envs, stages)`` replicas.
        """
        for i, (vi, bii, ri) in enumerate(zip(v.tolist(), bi.tolist(), r.tolist(), strict=True)):
            decision = self._decisions.decision(vi, bii, ri)
            if decision != self._in_force[i]:
                self.books[i].apply(decision)
                self._in_force[i] = decision
        self.cur_v, self.cur_bi = v, bi

    def _per_second(self, seconds: int) -> tuple[np.ndarray, ...]:
        """Capacity, p99, mean, J per request and batch size of each ``(env, stage,
        second)`` from every env's groups (`FluidBackend._per_second`)."""
        n, n_s = self.n_envs, self.n_stages
        width = max(len(groups) for book in self.books for groups in book.groups)
        count = np.zeros((n, n_s, width))
        rates = np.zeros((5, n, n_s, width))
        window = np.zeros((2, n, n_s, width))
        t = self.tables
        for e, book in enumerate(self.books):
            for k, groups in enumerate(book.groups):
                for g, group in enumerate(groups):
                    b = self._batch_index[k][group.batch]
                    count[e, k, g] = group.count
                    rates[:, e, k, g] = (t.capacity_rps[k, group.variant, b],
                                         t.p99_ms[k, group.variant, b],
                                         t.mean_ms[k, group.variant, b],
                                         t.energy_full_j[k, group.variant, b], group.batch)
                    window[:, e, k, g] = group.online_s, group.until_s
        return kernels.per_second_groups(self.now, seconds, count, rates, window)

    def _allocation(self, seconds: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Core-seconds and (static, idle) energy of each env's interval, from its groups
        and node states (`SimulatedBackend.interval_energy`)."""
        core_s, static_j, idle_j = (np.zeros(self.n_envs) for _ in range(3))
        for e, book in enumerate(self.books):
            start = float(self.now[e])
            end = start + seconds
            book.now = end
            core_s[e] = sum(allocated_core_s(g, start, end) for g in book.groups)
            parts = book.interval_energy(start, end, 0.0)
            static_j[e], idle_j[e] = parts.static_j, parts.idle_j
        return core_s, (static_j, idle_j)

    def _end_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each env's `SimulatedBackend.end_state`, as arrays."""
        states = [book.end_state() for book in self.books]
        return tuple(np.array([getattr(st, name) for st in states], dtype=np.int64)
                     for name in ("stage_loading", "pool_booting", "pool_powered"))

    def _end_interval(self, seconds: int) -> None:
        """The clock moves on; the groups live in the books."""
        self.now = self.now + seconds
