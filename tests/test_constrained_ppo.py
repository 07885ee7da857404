"""Constrained PPO (`agents.training.lagrangian`): the dual update, the penalised reward on
real envs, the config checks, and real short training runs (with resume) on the tiny
profile and the fluid backend."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import train
from agents.runs.checkpoints import latest_checkpoint, read_state
from agents.runs.train_config import TrainConfig, load_train_config
from agents.training.lagrangian import (
    LagrangianCallback,
    LagrangianVecEnv,
    dual_update,
    make_lagrangian_callback,
)
from agents.training.vec_envs import make_normalized_venv
from envs.batched import BatchedPipelineVecEnv
from envs.config.errors import ConfigError, SuspiciousSettingWarning
from envs.pipeline_env import PipelineEnv
from tests.conftest import tiny_profile_doc

REPO = Path(__file__).resolve().parents[1]
# Rollout of 2 envs x 64 steps = 128, as in tests/test_train.py.
TINY = ["agent.n_steps=64", "agent.batch_size=64", "agent.n_epochs=2", "agent.net_arch=[16]",
        "run.n_envs=2", "run.n_eval_episodes=2", "run.progress_bar=false",
        "tracking.mode=disabled"]
CONSTRAINED = ["env.reward.sla_violation=0", "agent.violation_budget=0.01"]


@pytest.fixture(autouse=True)
def _quiet_suspicious_settings():
    # a low SLA and a 0 sla_violation weight are the point here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SuspiciousSettingWarning)
        yield


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_profile_doc(), sort_keys=False))
    return path


def config(profile: Path, *extra: str) -> TrainConfig:
    return load_train_config(overrides=[f"env.pipeline={profile}", *TINY, *extra])


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["charts/steps_per_s"]]  # rollout rows


# -- the dual update -------------------------------------------------------------------------
def test_dual_update_by_hand_on_made_up_rollouts(profile: Path) -> None:
    cfg = config(profile, *CONSTRAINED)
    wrapper = LagrangianVecEnv(DummyVecEnv([lambda: PipelineEnv(cfg.env)]), multiplier=1.0)
    cb = LagrangianCallback(wrapper, budget=0.1, lr=2.0, cap=3.0)

    def rollout(*steps: tuple[int, int]) -> tuple[float, float]:
        for violations, arrived in steps:
            cb.observe(violations, arrived)
        return cb.end_rollout()

    # 30 of 100 requests violate: 0.2 over budget, lambda += 2 x 0.2
    assert rollout((10, 50), (20, 50)) == pytest.approx((0.3, 1.4))
    assert wrapper.multiplier == pytest.approx(1.4)  # the wrapper's reward uses it
    # 5 of 100: 0.05 under budget, lambda falls by 2 x 0.05
    assert rollout((5, 100)) == pytest.approx((0.05, 1.3))
    # no violation for long: lambda falls to 0 and stays there
    for _ in range(10):
        rollout((0, 100))
    assert cb.multiplier == 0.0
    # a rollout with no arrivals counts as rate 0
    assert rollout((0, 0)) == (0.0, 0.0)
    # every request violates: lambda rises by 1.8 a rollout, and stops at the cap
    assert rollout((100, 100))[1] == pytest.approx(1.8)
    assert rollout((100, 100))[1] == 3.0
    assert rollout((100, 100))[1] == 3.0
    assert dual_update(2.0, 0.1, 0.1, 5.0, 10.0) == 2.0  # on budget: unchanged
    # a resumed run takes the checkpoint's multiplier over the initial one
    assert cb.state() == {"lagrange_multiplier": 3.0}
    LagrangianCallback(wrapper, 0.1, 2.0, 3.0, state={"lagrange_multiplier": 0.7})
    assert wrapper.multiplier == 0.7
    wrapper.close()


# -- the penalised reward --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dummy", "batched"])
def test_wrapper_reward_is_env_reward_minus_lambda_times_violation_term(profile: Path,
                                                                        kind: str) -> None:
    cfg = config(profile, *CONSTRAINED, "env.sla_ms=80")
    n, lam = 2, 2.5
    bare = [PipelineEnv(cfg.env) for _ in range(n)]
    inner = (BatchedPipelineVecEnv(cfg.env, n) if kind == "batched"
             else DummyVecEnv([lambda: PipelineEnv(cfg.env) for _ in range(n)]))
    venv = LagrangianVecEnv(inner, multiplier=lam)
    venv.seed(7)
    obs = venv.reset()
    for i, env in enumerate(bare):
        bare_obs, _ = env.reset(seed=7 + i)
        np.testing.assert_allclose(obs[i], bare_obs, rtol=1e-5, atol=1e-6)
    bare[0].action_space.seed(0)
    violated = 0
    for _ in range(30):
        actions = np.stack([bare[0].action_space.sample() for _ in range(n)])
        _, rewards, dones, infos = venv.step(actions)
        for i, env in enumerate(bare):
            _, reward, _, _, info = env.step(actions[i])
            term = info["reward_terms"]["sla_violation"]
            assert infos[i]["reward_terms"]["sla_violation"] == pytest.approx(term)
            assert rewards[i] == pytest.approx(reward - lam * term, rel=1e-5, abs=1e-5)
            violated += term > 0
        assert not dones.any()
    assert violated > 0  # the test saw the penalty at work
    venv.close()


def test_lagrangian_sits_inside_vecnormalize_only_with_a_budget(profile: Path) -> None:
    constrained = make_normalized_venv(config(profile, *CONSTRAINED), config(
        profile, *CONSTRAINED).env, seed=0, resume_from=None)
    assert isinstance(constrained, VecNormalize)
    assert isinstance(constrained.venv, LagrangianVecEnv)  # VecNormalize sees the penalty
    assert constrained.venv.multiplier == 1.0  # agent.lagrange_init
    plain_cfg = config(profile)
    plain = make_normalized_venv(plain_cfg, plain_cfg.env, seed=0, resume_from=None)
    assert not isinstance(plain.venv, LagrangianVecEnv)
    assert make_lagrangian_callback(plain_cfg.agent, plain) is None
    constrained.close()
    plain.close()


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "needle"), [
    (["agent.violation_budget=0"], "agent.violation_budget must be > 0 and < 1"),
    (["agent.violation_budget=1"], "agent.violation_budget must be > 0 and < 1"),
    (["agent.violation_budget=-0.1"], "agent.violation_budget must be > 0 and < 1"),
    (["agent.lagrange_lr=0"], "agent.lagrange_lr must be > 0"),
    (["agent.lagrange_init=-1"], "agent.lagrange_init must be >= 0"),
    (["agent.lagrange_init=5", "agent.lagrange_max=2"], "agent.lagrange_max must be >= 5"),
    (["env.reward.sla_violation=10"], "set env.reward.sla_violation=0"),
    (["env.reward_preset=ipa_energy"], "set env.reward.sla_violation=0"),
])
def test_bad_constraint_config_is_one_config_error_line(profile: Path, tmp_path: Path, capsys,
                                                        extra: list[str], needle: str) -> None:
    overrides = [*CONSTRAINED, *extra]
    if any(e.startswith("env.reward_preset") for e in extra):
        overrides.remove("env.reward.sla_violation=0")
    with pytest.raises(ConfigError) as err:
        config(profile, *overrides)
    assert needle in str(err.value) and "\n" not in str(err.value)
    code = train.main([f"env.pipeline={profile}", f"run.output_dir={tmp_path}", *TINY,
                       *overrides])
    assert code == train.EXIT_CONFIG
    out = capsys.readouterr().err
    assert needle in out and len(out.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_shipped_configs_load(profile: Path) -> None:
    cfg = load_train_config(REPO / "configs/train/constrained_example.yaml")
    assert cfg.agent.violation_budget == 0.01 and cfg.env.reward.sla_violation == 0
    assert cfg.env.backend == "fluid" and cfg.env.pipeline == "video"
    assert TrainConfig().agent.violation_budget is None  # off by default


# -- training --------------------------------------------------------------------------------
def test_training_raises_lambda_when_violating_and_resume_continues_it(profile: Path,
                                                                       tmp_path: Path) -> None:
    from agents.training import ppo

    run_dir = tmp_path / "c"
    cfg = config(profile, *CONSTRAINED, "env.sla_ms=60", "agent.lagrange_lr=0.5",
                 f"run.output_dir={tmp_path}", "run.name=c", "run.total_timesteps=384",
                 "run.eval_freq=384", "run.checkpoint_freq=128")
    ppo.train(cfg, run_dir, "test")
    rows = read_metrics(run_dir)
    assert [int(r["step"]) for r in rows] == [128, 256, 384]
    lam = cfg.agent.lagrange_init
    for r in rows:  # each logged lambda is the dual update of the rollout's logged rate
        rate = float(r["charts/constraint_violation_rate"])
        assert rate == pytest.approx(float(r["charts/sla_violation_rate"]))
        assert rate > 0.5  # an SLA of 60 ms on the tiny profile violates a lot
        lam = dual_update(lam, rate, 0.01, 0.5, cfg.agent.lagrange_max)
        assert float(r["charts/lagrange_multiplier"]) == pytest.approx(lam)
    assert lam > cfg.agent.lagrange_init + 3 * 0.5 * 0.4
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["lagrange_multiplier"] == pytest.approx(lam)
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None and read_state(checkpoint)["lagrange_multiplier"] == \
        pytest.approx(lam)

    # --resume: the fourth rollout starts from the checkpoint's lambda, not lagrange_init
    more = load_train_config(run_dir / "config.yaml", ["run.total_timesteps=512"])
    ppo.train(more, run_dir, "test", resume=True)
    last = read_metrics(run_dir)[-1]
    assert int(last["step"]) == 512
    rate = float(last["charts/constraint_violation_rate"])
    assert float(last["charts/lagrange_multiplier"]) == pytest.approx(
        dual_update(lam, rate, 0.01, 0.5, cfg.agent.lagrange_max))


def test_unconstrained_training_logs_no_multiplier(profile: Path, tmp_path: Path) -> None:
    from agents.training import ppo

    cfg = config(profile, f"run.output_dir={tmp_path}", "run.name=u",
                 "run.total_timesteps=128", "run.eval_freq=128", "run.checkpoint_freq=128")
    ppo.train(cfg, tmp_path / "u", "test")
    rows = read_metrics(tmp_path / "u")
    assert rows and all(r["charts/lagrange_multiplier"] == "" for r in rows)
    assert math.isfinite(float(rows[-1]["charts/sla_violation_rate"]))
    assert "lagrange_multiplier" not in json.loads((tmp_path / "u/summary.json").read_text())
    assert "lagrange_multiplier" not in read_state(latest_checkpoint(tmp_path / "u"))


def test_best_model_prefers_results_within_the_budget() -> None:
    """`best/` in a constrained run: the reward no longer counts violations, so a result
    within the budget beats any outside it; outside it, fewer violations win; without a
    budget the reward alone ranks (today's rule)."""
    from agents.training.lagrangian import selection_key

    budget = 0.01
    within_low = selection_key(-5.0, 0.009, budget)
    within_high = selection_key(3.0, 0.01, budget)
    outside_best_reward = selection_key(50.0, 0.2, budget)
    outside_fewer = selection_key(-40.0, 0.05, budget)
    assert within_high > within_low > outside_fewer > outside_best_reward
    assert max([outside_best_reward, within_low, outside_fewer]) == within_low
    assert selection_key(50.0, 0.2, None) > selection_key(3.0, 0.0, None)
    assert selection_key(3.0, 0.5, None) == (1.0, 3.0)
