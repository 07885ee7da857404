"""Common random numbers: a simulator seed fixes the requests every policy sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.evaluation.episode import run_episode
from agents.policies import StaticPolicy
from envs.backends.crn import crn_streams, service_draws
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from envs.workload.settings import WorkloadConfig


def recorded_env(profile: Path) -> tuple[PipelineEnv, list[np.ndarray]]:
    """A request-level env whose backend keeps every interval's arrival times."""
    env = PipelineEnv(EnvConfig(pipeline=str(profile), backend="requests", max_replicas=6,
                                workload=WorkloadConfig(pattern="bursty", window_s=200,
                                                        synthetic_windows=1)))
    seen: list[np.ndarray] = []
    real = env.backend.arrivals

    def keep(rates: np.ndarray) -> np.ndarray:
        times = real(rates)
        seen.append(times.copy())
        return times

    env.backend.arrivals = keep  # the real method runs; its output is kept
    return env, seen


def test_two_policies_on_one_seed_receive_identical_arrival_times(
        tiny_profile_path: Path) -> None:
    cheap_env, cheap = recorded_env(tiny_profile_path)
    big_env, big = recorded_env(tiny_profile_path)
    low = run_episode(cheap_env, StaticPolicy(cheap_env, "lowest", peak_rps=1.0), "low", "w", 3)
    high = run_episode(big_env, StaticPolicy(big_env, "highest", peak_rps=40.0), "high", "w", 3)
    # the two policies served differently (queues used to shift the random draws) ...
    assert [s.stats.served for s in low.steps] != [s.stats.served for s in high.steps]
    assert len(cheap) == len(big) == 20
    for a, b in zip(cheap, big, strict=True):
        np.testing.assert_array_equal(a, b)
    # ... and another seed gives other times
    other_env, other = recorded_env(tiny_profile_path)
    run_episode(other_env, StaticPolicy(other_env, "lowest", peak_rps=1.0), "low", "w", 4)
    assert not np.array_equal(np.concatenate(other), np.concatenate(cheap))


def test_service_draw_of_a_request_does_not_depend_on_the_others() -> None:
    _, key = crn_streams(11)
    times = np.sort(np.random.default_rng(0).uniform(0.0, 10.0, 500))
    alone = service_draws(times[::7], 1, key)
    together = service_draws(times, 1, key)[::7]
    np.testing.assert_array_equal(alone, together)
    # other stage or other seed: other draws
    assert not np.allclose(service_draws(times, 0, key), service_draws(times, 1, key))
    assert not np.allclose(service_draws(times, 1, crn_streams(12)[1]),
                           service_draws(times, 1, key))


def test_service_draws_are_unit_exponential() -> None:
    _, key = crn_streams(5)
    draws = service_draws(np.arange(200_000) * 1e-3 + 0.1234, 0, key)
    assert draws.min() >= 0.0
    # mean 1 and P(X > 1) = e^-1 for a unit exponential (standard errors ~0.002, ~0.001)
    assert abs(draws.mean() - 1.0) < 0.01
    assert abs(np.mean(draws > 1.0) - np.exp(-1.0)) < 0.005
