"""The request-level simulator's continuously batched stage (`envs.backends.continuous_stage`)
against the one-replica simulator written separately (`envs.serving.continuous_batching`),
across interval boundaries, replica changes and the drop limit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.backends.continuous_stage import LENGTH_STREAM, ContinuousStage
from envs.backends.crn import crn_streams, uniform_draws
from envs.backends.replicas import ReplicaGroup
from envs.model import continuous_perf
from envs.model.profiles import load_pipeline
from envs.model.spec import Pipeline
from envs.serving.continuous_batching import serve_replica
from envs.workload.lengths import TokenLengths

PROFILE = "llm_chat_h100_cb"


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return load_pipeline(PROFILE)


def arrivals(rate: float, n: int, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))


def group(cap: int, count: int, gid: int, online: float = 0.0, until: float = math.inf,
          variant: int = 0) -> ReplicaGroup:
    return ReplicaGroup(variant, cap, 1, count, online, online, until, gid)


def play(stage: ContinuousStage, times: np.ndarray, groups_at, interval_s: float,
         drop_limit_s: float = 1e9) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Serve ``times`` interval by interval; returns (origin, finish) of every decided
    request, the dynamic energy and the requests still in the stage."""
    origin, finish, energy = [], [], 0.0
    t = 0.0
    horizon = times[-1] + 5000.0
    while t < horizon:
        new = times[(times >= t) & (times < t + interval_s)]
        out = stage.serve(new, new, groups_at(t), t, t + interval_s, drop_limit_s)
        origin.append(out.origin)
        finish.append(out.finish)
        energy += out.dynamic_j
        t += interval_s
    left = out.queued + sum(s.running for s in stage.replicas.values())
    order = np.argsort(np.concatenate(origin))
    return np.concatenate(origin)[order], np.concatenate(finish)[order], energy, left


def test_one_replica_is_the_one_replica_simulator(pipeline: Pipeline) -> None:
    """Same arrivals and lengths: the stage's finish times and energy are
    `serve_replica`'s, though the stage stops and resumes every 7 s."""
    variant = pipeline.stages[0].variants[0]
    cap = 16
    key = crn_streams(3)[1]
    stage = ContinuousStage(pipeline, 0, key)
    stage.reset(key)
    rate = 0.8 * continuous_perf.saturated_rps(variant, cap)
    times = arrivals(rate, 4000, seed=1)
    origin, finish, dynamic_j, left = play(stage, times, lambda t: [group(cap, 1, 1)], 7.0)
    assert left == 0 and np.array_equal(origin, times)
    lengths = TokenLengths.from_histogram(variant.continuous.output_bins,
                                          variant.continuous.output_counts, "x")
    tokens = lengths.draw(uniform_draws(times, LENGTH_STREAM, key))[1]
    idle_w = pipeline.fleet.pools[0].device_idle_w * variant.base_cores
    assert variant.continuous.idle_w == idle_w
    alone = serve_replica(variant.continuous.curve(), cap, times, tokens)
    np.testing.assert_allclose(finish, alone.finished_s, rtol=1e-9)
    assert dynamic_j == pytest.approx(alone.energy_j - idle_w * (alone.seconds - 0.0), rel=1e-6)


def test_interval_length_changes_nothing(pipeline: Pipeline) -> None:
    """Three replicas, random routing: 5-s and 200-s intervals give the same requests the
    same finish times (routing and lengths are keyed by the request)."""
    variant = pipeline.stages[0].variants[1]
    cap = 32
    key = crn_streams(5)[1]
    rate = 2.5 * continuous_perf.saturated_rps(variant, cap)
    times = arrivals(rate, 6000, seed=2)
    results = []
    for interval in (5.0, 200.0):
        stage = ContinuousStage(pipeline, 0, key)
        stage.reset(key)
        results.append(play(stage, times, lambda t: [group(cap, 3, 7, variant=1)], interval))
    (o1, f1, e1, l1), (o2, f2, e2, l2) = results
    assert l1 == l2 == 0
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_allclose(f1, f2, rtol=1e-9)
    assert e1 == pytest.approx(e2, rel=1e-9)


def test_removed_replicas_drain_and_loading_ones_wait(pipeline: Pipeline) -> None:
    """Two replicas until t = 300 s, then one; a new one loading from 300 s is online at
    330 s. No request is lost, none finishes before it arrives, and nothing is routed to
    the loading replica before it is online."""
    variant = pipeline.stages[0].variants[0]
    cap = 8
    key = crn_streams(9)[1]
    stage = ContinuousStage(pipeline, 0, key)
    stage.reset(key)
    rate = 1.2 * continuous_perf.saturated_rps(variant, cap)
    times = arrivals(rate, 1500, seed=4)

    def groups_at(t: float) -> list[ReplicaGroup]:
        if t < 300:
            return [group(cap, 2, 11)]
        return [group(cap, 1, 11), group(cap, 1, 12, online=330.0)]

    origin, finish, _, left = play(stage, times, groups_at, 10.0)
    assert left == 0 and origin.shape == times.shape
    assert not np.isnan(finish).any() and np.all(finish >= origin)


def test_old_queued_requests_are_dropped(pipeline: Pipeline) -> None:
    """At twice one replica's capacity with a 20-s drop limit, about half the requests are
    dropped, and every served one started within the limit."""
    variant = pipeline.stages[0].variants[0]
    cap = 8
    key = crn_streams(1)[1]
    stage = ContinuousStage(pipeline, 0, key)
    stage.reset(key)
    rate = 2.0 * continuous_perf.saturated_rps(variant, cap)
    times = arrivals(rate, 1500, seed=6)
    origin, finish, _, left = play(stage, times, lambda t: [group(cap, 1, 21)], 10.0,
                                   drop_limit_s=20.0)
    dropped = np.isnan(finish)
    assert left == 0 and 0.2 < dropped.mean() < 0.8
    served = ~dropped
    lengths = TokenLengths.from_histogram(variant.continuous.output_bins,
                                          variant.continuous.output_counts, "x")
    idle_w = pipeline.fleet.pools[0].device_idle_w * variant.base_cores
    assert variant.continuous.idle_w == idle_w
    curve = variant.continuous.curve()
    limit = curve.running_limit(cap)
    slowest_rate = min(curve.tokens_per_s(k) / k for k in range(1, limit + 1))
    longest_s = lengths.draw(uniform_draws(origin, LENGTH_STREAM, key))[1] / slowest_rate
    # started within 20 s of arriving, then served at no less than the slowest share
    assert np.all(finish[served] - origin[served] <= 20.0 + longest_s[served] + 1e-9)
    # without the limit the same requests queue far longer
    stage.reset(key)
    _, unlimited, _, _ = play(stage, times, lambda t: [group(cap, 1, 21)], 10.0)
    assert np.max(unlimited - origin) > 10 * 20.0


@pytest.mark.parametrize("backend", ["fluid", "requests"])
def test_a_continuous_stage_feeds_a_batched_one_in_the_env(backend: str) -> None:
    """chat (continuous) -> image (static batches) through `PipelineEnv`: the env passes
    gymnasium's checker, a seed replays its episode, and on the request-level simulator
    every request is accounted for (served, dropped, or still in the pipeline)."""
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    import envs  # noqa: F401 - registers ipa/Pipeline-v2

    def make():
        return gymnasium.make("ipa/Pipeline-v2", pipeline="chat_to_image_h100_cb",
                              backend=backend, workload="bursty",
                              **{"workload.window_s": 300, "workload.scale": 0.05})

    check_env(make().unwrapped, skip_render_check=True)
    runs = []
    for _ in range(2):
        env = make()
        env.reset(seed=5)
        env.action_space.seed(5)
        arrived = served = dropped = 0
        energy = []
        for _ in range(30):
            _, _, _, truncated, info = env.step(env.action_space.sample())
            s = info["stats"]
            arrived, served, dropped = arrived + s.arrived, served + s.served, dropped + s.dropped
            energy.append(s.energy_j)
            assert s.energy_j == pytest.approx(s.static_j + s.idle_j + s.dynamic_j)
            if truncated:
                break
        runs.append(energy)
        if backend == "requests":
            sim = env.unwrapped.backend
            inside = sum(st.pending[0].shape[0] + sum(r.running + r.queue[0].shape[0]
                                                       for r in st.replicas.values())
                         + sum(r.running + r.queue[0].shape[0] for r in st.draining)
                         for st in sim.continuous.values())
            inside += sum(p[0].shape[0] for p in sim.pending)
            assert served + dropped + inside == arrived and served > 0
    assert runs[0] == runs[1]
