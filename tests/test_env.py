"""PipelineEnv: gymnasium conformance, determinism, reward terms, bad input."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.config.errors import ActionError, ConfigError
from envs.env_config import REWARD_PRESETS
from envs.reward import weighted_reward


def make(profile: Path, **kwargs):
    kwargs.setdefault("workload", "bursty")
    kwargs.setdefault("workload.window_s", 200)
    return gymnasium.make("ipa/Pipeline-v2", pipeline=str(profile), **kwargs)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("backend", ["fluid", "requests"])
def test_check_env_passes(tiny_profile_path: Path, env_id: str, backend: str) -> None:
    env = gymnasium.make(env_id, pipeline=str(tiny_profile_path), backend=backend,
                         **{"workload.window_s": 100})
    check_env(env.unwrapped, skip_render_check=True)


def rollout(env, seed: int, steps: int = 15) -> tuple[list, list]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        assert not terminated
        if truncated:
            break
    return observations, rewards


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("backend", ["fluid", "requests"])
def test_same_seed_same_episode(tiny_profile_path: Path, env_id: str, backend: str) -> None:
    a = rollout(gymnasium.make(env_id, pipeline=str(tiny_profile_path), backend=backend), 3)
    b = rollout(gymnasium.make(env_id, pipeline=str(tiny_profile_path), backend=backend), 3)
    c = rollout(gymnasium.make(env_id, pipeline=str(tiny_profile_path), backend=backend), 4)
    np.testing.assert_array_equal(np.array(a[0]), np.array(b[0]))
    assert a[1] == b[1]
    assert a[1] != c[1]


def test_episode_is_one_window_and_truncates(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        assert not terminated
    assert steps == 200 // 10


def test_reward_is_the_weighted_sum_of_named_terms(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path, reward_preset="ipa_energy")
    env.reset(seed=1)
    _, reward, _, _, info = env.step(env.action_space.sample())
    terms = info["reward_terms"]
    assert set(terms) == {"accuracy", "sla_violation", "cost", "energy", "switching", "batch"}
    assert reward == pytest.approx(weighted_reward(terms, REWARD_PRESETS["ipa_energy"]))
    assert info["energy_estimated"] is True
    assert 0.0 <= terms["accuracy"] <= 1.0


def test_decode_encode_round_trip(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path).unwrapped
    for _ in range(20):
        action = env.action_space.sample()
        np.testing.assert_array_equal(env.encode(env.decode(action)), action)


def test_out_of_range_action_is_an_error(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path)
    env.reset(seed=0)
    with pytest.raises(ActionError, match="outside MultiDiscrete"):
        env.step(np.array([9, 0, 0, 0, 0, 0]))


def test_core_budget_masks_and_repairs(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path, max_cores=6, max_replicas=8).unwrapped
    env.reset(seed=0)
    masks = env.action_masks()
    assert masks.shape == (int(env.action_space.nvec.sum()),)
    replicas_mask_first = masks[3 + 3:3 + 3 + 8]  # stage 0: 3 variants, 3 batches, 8 replicas
    assert replicas_mask_first.tolist() == [True] * 5 + [False] * 3
    _, _, _, _, info = env.step(np.array([0, 0, 4, 0, 0, 4]))  # 5 + 5 cores > 6
    assert info["repairs"] == 4
    assert sum(c.replicas for c in info["decision"].stages) == 6


def test_more_replicas_fewer_violations_more_energy(tiny_profile_path: Path) -> None:
    """The whole chain: under heavy load, the biggest allocation drops nothing."""
    results = {}
    for name, replicas in (("small", 0), ("big", 7)):
        env = make(tiny_profile_path, workload="steady_high")
        env.reset(seed=0)
        action = np.array([2, 0, replicas, 1, 0, replicas])
        energy = violations = 0.0
        for _ in range(10):
            _, _, _, _, info = env.step(action)
            energy += info["stats"].energy_j
            violations += info["stats"].sla_violations
        results[name] = (energy, violations)
    assert results["big"][1] == 0 < results["small"][1]
    assert results["big"][0] > results["small"][0]


def test_bad_kwargs_are_clear(tiny_profile_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'max_replica'"):
        make(tiny_profile_path, max_replica=3)
    with pytest.raises(ConfigError, match="did you mean 'bursty'"):
        make(tiny_profile_path, workload="burst")


def test_trace_workload_by_path(tiny_profile_path: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text(" ".join(str(10 + i % 7) for i in range(400)))
    env = gymnasium.make("ipa/Pipeline-v2", pipeline=str(tiny_profile_path),
                         workload=str(trace), **{"workload.window_s": 100,
                                                 "workload.warmup_s": 0})
    _, info = env.reset(seed=0, options={"window_start": 50})
    assert info["window_start"] == 50
    np.testing.assert_array_equal(env.unwrapped.upcoming_rates(),
                                  [10 + i % 7 for i in range(50, 60)])


def test_headroom_action_mode_sizes_replicas_from_the_forecast(tiny_profile_path: Path) -> None:
    from envs.model import perf

    env = make(tiny_profile_path, workload="steady_high", action_mode="headroom",
               headroom_levels=[1.0, 2.0]).unwrapped
    obs, _ = env.reset(seed=0)
    forecast = env.layout.forecast_rps(obs)
    assert env.action_space.nvec.tolist() == [3, 3, 2, 2, 3, 2]
    decision = env.decode(np.array([2, 0, 1, 1, 0, 0]))
    large = env.pipeline.stages[0].variants[2]
    assert decision.stages[0].replicas == perf.replicas_for_rate(large, 1, 1, 2.0 * forecast)
    slow = env.pipeline.stages[1].variants[1]
    assert decision.stages[1].replicas == perf.replicas_for_rate(slow, 1, 1, forecast)
    np.testing.assert_array_equal(env.encode(decision), [2, 0, 1, 1, 0, 0])
    _, _, _, _, info = env.step(np.array([2, 0, 1, 1, 0, 1]))
    assert info["stats"].dropped == 0


def test_reward_power_scale_is_the_largest_decision_busy(tmp_path: Path) -> None:
    from envs.model.profile_doc import write_profile
    from envs.model.profiles import load_pipeline
    from envs.reward import RewardScales
    from tests.conftest import tiny_profile_doc

    doc = tiny_profile_doc()
    doc["pools"][0]["node_static_w"] = 50.0
    doc["pools"][0]["sources"]["node_static_w"] = "static"
    pipeline = load_pipeline(write_profile(doc, tmp_path / "tiny.yaml"))
    scales = RewardScales.for_pipeline(pipeline, max_replicas=3)
    # By hand: 2 stages x 3 replicas x 1 core = 6 cores; 4 per node -> 2 nodes x 50 W
    # static; 6 cores x (1 W allocated + 3 W busy, the profile's dynamic power, rounded rows)
    assert scales.max_cores == 6
    assert scales.max_power_w == pytest.approx(2 * 50.0 + 6 * (1.0 + 3.0), rel=1e-3)
    assert scales.max_batch == 4


def test_observed_queue_reads_back_as_the_rate_that_clears_it() -> None:
    from envs.observation import STAGE_FIELDS_V2, ObsLayout

    layout = ObsLayout(history_intervals=3, n_stages=2, rate_scale=20.0)
    obs = np.zeros(layout.size)
    # stage 1's queue sits after the history, the two forecast slots and stage 0's fields
    obs[3 + 2 + len(STAGE_FIELDS_V2) + STAGE_FIELDS_V2.index("queue")] = 0.25
    assert layout.queue_rps(obs, 1) == pytest.approx(5.0)  # 0.25 x 20 req/s
    assert layout.queue_rps(obs, 0) == 0.0
