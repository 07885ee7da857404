"""The one `Policy` protocol: every policy meets it, and an explicit episode start is what
clears a stateful policy's memory (so no state leaks from one window into the next)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.evaluation.config import LEARNED, POLICIES, EvalConfig
from agents.evaluation.episode import run_episode
from agents.evaluation.registry import policy_factories
from agents.evaluation.windows import Window, window_env
from agents.policies import HpaPolicy, Policy, RayServePolicy
from envs.env_config import EnvConfig
from envs.workload.settings import WorkloadConfig
from envs.workload.synthetic import synthetic_trace

WINDOW_S = 300


def window(pattern: str, seed: int) -> Window:
    rates = synthetic_trace(pattern, 120 + WINDOW_S, seed, 1.0)
    return Window(pattern, rates[:120], rates[120:], "test")


def base_env(profile: Path) -> EnvConfig:
    return EnvConfig(pipeline=str(profile), backend="fluid", max_replicas=12,
                     action_mode="absolute", workload=WorkloadConfig(window_s=WINDOW_S))


def test_every_rule_policy_meets_the_protocol(tiny_profile_path: Path, tmp_path: Path) -> None:
    base = base_env(tiny_profile_path)
    names = tuple(p for p in POLICIES if p not in LEARNED)
    config = EvalConfig(env=base, policies=names)
    env = window_env(base, window("bursty", 1), tmp_path)
    for name, make in policy_factories(config, {}, 20.0, names).items():
        policy = make(env)
        assert isinstance(policy, Policy), name
        obs, _ = env.reset(seed=0)
        action, state = policy.predict(obs, None, np.array([True]), True)
        assert env.action_space.contains(np.asarray(action)), name
        assert state is None


def test_a_stateful_policy_starts_each_window_afresh(tiny_profile_path: Path,
                                                     tmp_path: Path) -> None:
    def make(env):
        return HpaPolicy(env, target_utilisation=0.5, stabilisation_s=300)

    base = base_env(tiny_profile_path)
    busy = window_env(base, window("steady_high", 2), tmp_path / "busy")
    quiet = window_env(base, window("steady_low", 3), tmp_path / "quiet")
    reused = make(busy)
    run_episode(busy, reused, "p", "busy", 0)
    remembered = run_episode(quiet, _rebind(reused, quiet), "p", "quiet", 0)
    fresh = run_episode(quiet, make(quiet), "p", "quiet", 0)
    assert [s.replicas for s in remembered.steps] == [s.replicas for s in fresh.steps]


def test_without_an_episode_start_the_state_is_kept(tiny_profile_path: Path,
                                                    tmp_path: Path) -> None:
    env = window_env(base_env(tiny_profile_path), window("steady_high", 2), tmp_path)
    policy = HpaPolicy(env, target_utilisation=0.5, stabilisation_s=300)
    obs, _ = env.reset(seed=0)
    policy.predict(obs, None, np.array([True]))
    policy.predict(obs, None, np.array([False]))
    assert [len(r) for r in policy.recommendations] == [2] * len(policy.pipeline.stages)
    policy.predict(obs, None, np.array([True]))
    assert [len(r) for r in policy.recommendations] == [1] * len(policy.pipeline.stages)


def test_ray_serve_delay_counters_restart_at_an_episode_start(tiny_profile_path: Path,
                                                               tmp_path: Path) -> None:
    env = window_env(base_env(tiny_profile_path), window("steady_high", 2), tmp_path)
    policy = RayServePolicy(env, target_ongoing_requests=0.01, upscale_delay_s=10_000)
    obs, _ = env.reset(seed=0)
    for first in (True, False, False):
        policy.predict(obs, None, np.array([first]))
    assert max(policy.want_up) == 3  # wanted more replicas three times, delay not over
    policy.predict(obs, None, np.array([True]))
    assert max(policy.want_up) == 1


def _rebind(policy, env):
    """The same policy object (its memory intact) driving another env of the same pipeline."""
    policy.env = env.unwrapped
    return policy
