"""No policy sees the future: two traces that share their first seconds get the same
decisions there, for every policy the evaluation runs (PPO included)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.evaluation.config import LEARNED, ORACLES, POLICIES, EvalConfig
from agents.evaluation.episode import run_episode
from agents.evaluation.registry import policy_factories
from agents.evaluation.windows import Window, window_env
from agents.policies import load_ppo_policy
from agents.runs.train_config import load_train_config
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from envs.workload.settings import WorkloadConfig

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "results" / "agents" / "video_mixed_e12_headroom_1m"
INTERVAL_S = 10
SHARED_S = 100  # the window's first 100 s are the same in both traces
WINDOW_S = 200


def twin_windows() -> tuple[Window, Window]:
    """Same warm-up and first SHARED_S seconds; after that, one stays quiet and the other
    bursts far above anything before (its peak would leak into any scale or size taken
    from the episode)."""
    rng = np.random.default_rng(0)
    warmup = rng.integers(4, 9, 120).astype(float)
    shared = rng.integers(5, 12, SHARED_S).astype(float)
    quiet = np.concatenate([shared, rng.integers(5, 12, WINDOW_S - SHARED_S)]).astype(float)
    burst = np.concatenate([shared, np.full(WINDOW_S - SHARED_S, 60.0)])
    return Window("quiet", warmup, quiet, "test"), Window("burst", warmup, burst, "test")


def decisions(env: PipelineEnv, policy: object, name: str) -> list[tuple]:
    ep = run_episode(env, policy, name, "w", seed=5,
                     use_masks=bool(getattr(policy, "masked", False)))
    return [(s.variants, s.batches, s.replicas) for s in ep.steps]


def shared_decisions(a: list[tuple], b: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """The decisions made with only shared seconds seen: step k decides at k x interval."""
    k = SHARED_S // INTERVAL_S + 1
    return a[:k], b[:k]


def play_both(base: EnvConfig, make, name: str, tmp_path: Path) -> tuple[list, list]:
    out = []
    for window in twin_windows():
        env = window_env(base, window, tmp_path / name)
        out.append(decisions(env, make(env), name))
        env.close()
    return out[0], out[1]


RULES = [p for p in POLICIES if p not in LEARNED]
FIXED = ("static_low", "static_high", "random")  # decide without reading the load


@pytest.mark.parametrize("name", RULES)
def test_rule_decisions_in_the_shared_part_do_not_depend_on_what_follows(
        name: str, tiny_profile_path: Path, tmp_path: Path) -> None:
    base = EnvConfig(pipeline=str(tiny_profile_path), backend="requests", max_replicas=12,
                     workload=WorkloadConfig(window_s=WINDOW_S))
    config = EvalConfig(env=base, policies=tuple(RULES))
    make = policy_factories(config, {}, peak_rps=20.0, names=(name,))[name]
    quiet, burst = play_both(base, make, name, tmp_path)
    a, b = shared_decisions(quiet, burst)
    if name in ORACLES:
        # the positive control: a policy that reads the next interval does differ
        assert a != b
    else:
        assert a == b
        if name not in FIXED:
            assert quiet != burst  # the traces did lead to different decisions later


def test_ppo_decisions_in_the_shared_part_do_not_depend_on_what_follows(
        tmp_path: Path) -> None:
    if not (AGENT / "model.zip").is_file():
        pytest.skip(f"the committed agent {AGENT} is absent")
    trained = load_train_config(AGENT / "config.yaml")
    base = replace(trained.env, backend="requests",
                   workload=replace(trained.env.workload, window_s=WINDOW_S))
    ppo = load_ppo_policy(AGENT)
    quiet, burst = play_both(base, lambda env: ppo, "ppo", tmp_path)
    a, b = shared_decisions(quiet, burst)
    assert a == b
