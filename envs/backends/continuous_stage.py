"""A continuously batched LLM stage in the request-level simulator: its replicas' state
across intervals, and the configuration tables its event loop reads.

A stage whose variants carry a continuous-serving description (`envs.model.continuous`)
is served as vLLM behind a Kubernetes Service serves it (`envs.backends.continuous_kernel`):
a request is routed at random to a replica taking requests, starts at once if that replica
runs fewer than its limit (the measured concurrency of the cap in use) and waits in the
replica's FIFO queue otherwise; the running requests
share the replica's token rate ``R(n)`` (`envs.model.llm_curve`); the replica draws
``P(n)``, so the stage's dynamic energy is the integral of ``P(n) - P(0)`` (``P(0)``, the
GPUs' idle power, is the power model's idle term). A request's output length is drawn
from its variant's length histogram with a common random number keyed by the request.

Replicas follow the decision's groups (`envs.backends.replicas`): a replica that is
removed or retired takes nothing new and finishes what it runs and queues (as a committed
batch of a statically batched stage does); its devices are no longer counted as allocated
meanwhile. A replica still loading its model takes no requests (a pod is a Service's
endpoint once ready) unless no replica is ready.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.backends.continuous_kernel import serve_continuous
from envs.backends.crn import uniform_draws
from envs.backends.replicas import ReplicaGroup
from envs.model.spec import Pipeline
from envs.workload.lengths import TokenLengths

LENGTH_STREAM = 1000
"""Offset of the token-length draws' stream (`uniform_draws`): stage ``s`` uses
``LENGTH_STREAM + s``, apart from the service-time draws' streams ``0 .. stages - 1``."""
ROUTE_STREAM = 2000
"""Offset of the routing draws' stream: stage ``s`` uses ``ROUTE_STREAM + s``."""


@dataclass
class ReplicaState:
    """One replica's running requests and virtual clock, carried between intervals."""

    cfg: int
    limit: int
    keys: np.ndarray
    ids_origin: np.ndarray
    ids_ready: np.ndarray
    running: int = 0
    clock: float = 0.0
    queue: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
    """Its queued requests' ready and origin times, in queue order."""


@dataclass
class StageOutcome:
    """What one interval of the stage decided.

    Attributes:
        ready: When each decided request was ready at the stage.
        origin: When it entered the pipeline.
        finish: When it finished (nan: dropped).
        dynamic_j: Dynamic energy of the interval.
        utilisation: Running-request seconds over limit x serving seconds.
        queued: Requests waiting at the end.
        oldest_ready: When the oldest of them reached the stage (the interval's end if none).
    """

    ready: np.ndarray
    origin: np.ndarray
    finish: np.ndarray
    dynamic_j: float
    utilisation: float
    queued: int
    oldest_ready: float


@dataclass
class ContinuousStage:
    """The state of one continuously batched stage of a `RequestBackend`."""

    pipeline: Pipeline
    index: int
    key: np.uint64
    replicas: dict[tuple[int, int], ReplicaState] = field(default_factory=dict)
    draining: list[ReplicaState] = field(default_factory=list)
    pending: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))

    def __post_init__(self) -> None:
        stage = self.pipeline.stages[self.index]
        self.configs: dict[tuple[int, int], int] = {}
        self.limits: dict[tuple[int, int], int] = {}
        rates, powers, cfg_variant = [], [], []
        self.lengths = [TokenLengths.from_histogram(v.continuous.output_bins,
                                                    v.continuous.output_counts, v.name)
                        for v in stage.variants if v.continuous is not None]
        for v, variant in enumerate(stage.variants):
            serving = variant.continuous
            assert serving is not None
            curve = serving.curve()
            limit = max(curve.running_limit(cap) for cap in stage.batch_sizes)
            rate, power = curve.rate_table(limit)
            for cap in stage.batch_sizes:
                self.configs[(v, cap)] = len(rates)
                self.limits[(v, cap)] = curve.running_limit(cap)
                rates.append(rate)
                powers.append(power - power[0])
                cfg_variant.append(v)
        self.cfg_variant = np.array(cfg_variant, dtype=np.int64)
        width = max(r.shape[0] for r in rates)
        self.rate = np.zeros((len(rates), width))
        self.dynamic_w = np.zeros((len(rates), width))
        for i, (r, p) in enumerate(zip(rates, powers, strict=True)):
            self.rate[i, : r.shape[0]] = r
            self.dynamic_w[i, : p.shape[0]] = p
        self.width = width

    def reset(self, key: np.uint64) -> None:
        """Forget every replica and request (a new episode).

        Args:
            key: The seed's key of the common random numbers.
        """
        self.key = key
        self.replicas, self.draining = {}, []
        self.pending = (np.empty(0), np.empty(0))

    def _replica_list(self, groups: list[ReplicaGroup]) -> list[tuple[ReplicaState, float,
                                                                      float]]:
        """(state, from, until) of every replica: the groups' then the draining ones."""
        live: dict[tuple[int, int], ReplicaState] = {}
        out = []
        for g in groups:
            cfg = self.configs[(g.variant, g.batch)]
            for k in range(g.count):
                state = self.replicas.pop((g.id, k), None)
                if state is None:
                    state = ReplicaState(cfg, 0, np.zeros(self.width), np.zeros(self.width),
                                         np.zeros(self.width))
                state.cfg = cfg  # a cap change applies at once to running replicas
                state.limit = self.limits[(g.variant, g.batch)]
                live[(g.id, k)] = state
                out.append((state, g.online_s, g.until_s))
        self.draining += [s for s in self.replicas.values() if s.running or s.queue[0].size]
        self.draining = [s for s in self.draining if s.running or s.queue[0].size]
        self.replicas = live
        return out + [(s, -np.inf, -np.inf) for s in self.draining]

    def serve(self, ready: np.ndarray, origin: np.ndarray, groups: list[ReplicaGroup],
              start: float, end: float, drop_limit_s: float) -> StageOutcome:
        """Serve one interval: what runs and waits from before, then ``ready``.

        Args:
            ready: Requests ready at the stage this interval (sorted).
            origin: When each entered the pipeline.
            groups: The stage's replica groups.
            start: Start of the interval.
            end: Its end.
            drop_limit_s: Age at which a queued request is dropped.

        Returns:
            The interval's outcome.
        """
        reps = self._replica_list(groups)
        states = [state for state, _, _ in reps]
        old_ready, old_origin = self.pending
        new_ready = np.concatenate([old_ready, ready])
        new_origin = np.concatenate([old_origin, origin])
        order = np.argsort(new_ready, kind="stable")
        parts_ready = ([s.ids_ready[: s.running] for s in states] + [s.queue[0] for s in states]
                       + [new_ready[order]])
        parts_origin = ([s.ids_origin[: s.running] for s in states]
                        + [s.queue[1] for s in states] + [new_origin[order]])
        all_ready, all_origin = np.concatenate(parts_ready), np.concatenate(parts_origin)
        n_run = sum(s.running for s in states)
        assigned = np.concatenate([np.full(s.queue[0].shape[0], r, dtype=np.int64)
                                   for r, s in enumerate(states)]
                                  + [np.full(new_ready.shape[0], -1, dtype=np.int64)])
        assigned = np.concatenate([np.full(n_run, -1, dtype=np.int64), assigned])
        keys = np.zeros((len(states), self.width))
        ids = np.zeros((len(states), self.width), dtype=np.int64)
        offset = 0
        for r, s in enumerate(states):
            keys[r, : s.running] = s.keys[: s.running]
            ids[r, : s.running] = np.arange(offset, offset + s.running)
            offset += s.running
        waiting = all_origin[n_run:]
        by_variant = np.zeros((len(self.lengths), all_ready.shape[0]))
        u = uniform_draws(waiting, LENGTH_STREAM + self.index, self.key)
        for v, lengths in enumerate(self.lengths):  # one draw per variant, not per cap
            by_variant[v, n_run:] = lengths.draw(u)[1]
        tokens = by_variant[self.cfg_variant]
        route_u = np.zeros(all_ready.shape[0])
        route_u[n_run:] = uniform_draws(waiting, ROUTE_STREAM + self.index, self.key)
        running = np.array([s.running for s in states], dtype=np.int64)
        clock = np.array([s.clock for s in states])
        finish, energy, busy, qhead, nxt, arrival = serve_continuous(
            all_ready, all_origin, tokens, route_u, assigned, n_run, keys, ids, running,
            clock, np.array([f for _, f, _ in reps]), np.array([u_ for _, _, u_ in reps]),
            np.array([s.cfg for s in states], dtype=np.int64),
            np.array([s.limit for s in states], dtype=np.int64),
            self.rate, self.dynamic_w, start, end, drop_limit_s)
        for r, s in enumerate(states):
            s.running, s.clock = int(running[r]), float(clock[r])
            s.keys[: s.running] = keys[r, : s.running]
            s.ids_origin[: s.running] = all_origin[ids[r, : s.running]]
            s.ids_ready[: s.running] = all_ready[ids[r, : s.running]]
            queued = []
            j = qhead[r]
            while j >= 0:
                queued.append(j)
                j = nxt[j]
            s.queue = (all_ready[queued], all_origin[queued])
        self.pending = (all_ready[arrival:], all_origin[arrival:])
        decided = ~np.isinf(finish)
        queues = [s.queue[0] for s in states] + [all_ready[arrival:]]
        oldest = min((float(q.min()) for q in queues if q.shape[0]), default=end)
        serving_s = sum(s.limit * max(0.0, min(end, u_) - max(start, f)) for s, f, u_ in reps)
        return StageOutcome(all_ready[decided], all_origin[decided], finish[decided], energy,
                            min(float(busy.sum()) / serving_s, 1.0) if serving_s else 0.0,
                            int(sum(s.queue[0].shape[0] for s in states)
                                + all_ready.shape[0] - arrival), oldest)
