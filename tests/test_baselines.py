"""Non-learned autoscalers on a real env."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401
from agents.policies import HpaPolicy, RandomPolicy, RayServePolicy, StaticPolicy


def make(profile: Path, workload: str = "bursty"):
    return gymnasium.make("ipa/Pipeline-v2", pipeline=str(profile), workload=workload,
                          max_replicas=12, **{"workload.window_s": 600})


def episode(env, policy, seed: int = 0) -> list[dict]:
    obs, _ = env.reset(seed=seed)
    policy.reset()
    infos, truncated = [], False
    while not truncated:
        action, _ = policy.predict(obs)
        obs, _, _, truncated, info = env.step(action)
        infos.append(info)
    return infos


def test_hpa_scales_out_under_load_and_in_after_the_window(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path, "steady_high")
    policy = HpaPolicy(env, target_utilisation=0.6, stabilisation_s=50, variants="highest")
    infos = episode(env, policy)
    replicas = [i["decision"].stages[0].replicas for i in infos]
    assert max(replicas) > replicas[0]
    late = infos[-10:]
    utilisation = np.mean([i["stats"].stage_utilisation[0] for i in late])
    assert utilisation == pytest.approx(0.6, abs=0.2)
    assert all(i["decision"].stages[0].variant == 2 for i in infos)

    low = make(tiny_profile_path, "steady_low")
    infos = episode(low, HpaPolicy(low, target_utilisation=0.6, stabilisation_s=50,
                                   variants="highest"))
    assert infos[-1]["decision"].stages[0].replicas < max(replicas)


def test_hpa_stabilisation_window_delays_scale_down(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path, "fluctuating")
    quick = episode(env, HpaPolicy(env, stabilisation_s=10, variants="highest"))
    slow = episode(env, HpaPolicy(env, stabilisation_s=300, variants="highest"))
    total = lambda infos: sum(i["stats"].cores for i in infos)  # noqa: E731
    assert total(slow) > total(quick)


def test_ray_serve_scales_with_ongoing_requests(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path, "steady_high")
    infos = episode(env, RayServePolicy(env, target_ongoing_requests=1.0, variants="highest"))
    replicas = [i["decision"].stages[0].replicas for i in infos]
    assert replicas[-1] > replicas[0]
    assert replicas[1] == replicas[0]  # the upscale delay (30 s) holds the first change back


def test_static_policies_never_change_and_high_costs_more(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path, "steady_low")
    low = episode(env, StaticPolicy(env, "lowest"))
    high = episode(env, StaticPolicy(env, "highest"))
    assert len({i["decision"] for i in low}) == 1
    assert sum(i["stats"].dropped for i in high) == 0
    assert sum(i["stats"].energy_j for i in high) > sum(i["stats"].energy_j for i in low)
    assert high[-1]["stats"].accuracy_rank_sum > low[-1]["stats"].accuracy_rank_sum


def test_random_policy_is_seeded(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path)
    a = [i["decision"] for i in episode(env, RandomPolicy(env, seed=1))]
    b = [i["decision"] for i in episode(env, RandomPolicy(env, seed=1))]
    assert a == b and len(set(a)) > 1


def test_batch_of_observations(tiny_profile_path: Path) -> None:
    env = make(tiny_profile_path)
    obs, _ = env.reset(seed=0)
    action, _ = StaticPolicy(env).predict(obs[None])
    assert action.shape == (1, 6)
    with pytest.raises(ValueError, match="one env at a time"):
        StaticPolicy(env).predict(np.stack([obs, obs]))
