"""Per-head entropy of the MultiDiscrete policy (agents.training.head_stats): the formula
against hand-computed values, masks, and the ``heads/`` columns of a real run's metrics.csv."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO

from agents.runs.train_config import load_train_config
from agents.training import ppo
from agents.training.head_stats import head_columns, head_entropies, head_names, rollout_rows
from agents.training.metrics_log import CSV_COLUMNS
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from tests.conftest import tiny_profile_doc

LN2, LN3 = math.log(2), math.log(3)


@pytest.fixture(scope="module")
def env() -> PipelineEnv:
    return PipelineEnv(EnvConfig())


@pytest.fixture(scope="module")
def model(env: PipelineEnv) -> PPO:
    return PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0, device="cpu",
               policy_kwargs={"net_arch": [16]})


def observations(env: PipelineEnv, n: int) -> np.ndarray:
    obs, _ = env.reset(seed=0)
    rows = [obs]
    for _ in range(n - 1):
        rows.append(env.step(env.action_space.sample())[0])
    return np.stack(rows)


def set_logits(model: PPO, logits: np.ndarray) -> None:
    """The policy's logits become ``logits`` whatever the observation."""
    net = model.policy.action_net
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.as_tensor(logits, dtype=net.bias.dtype))


def numpy_entropy(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return float(-(p * np.log(p)).sum())


def test_head_names_follow_the_action_layout() -> None:
    assert head_names([5, 4, 24, 3, 4, 24], "absolute") == [
        "stage0/variant", "stage0/batch", "stage0/replicas",
        "stage1/variant", "stage1/batch", "stage1/replicas"]
    assert head_names([5, 4, 6], "headroom")[2] == "stage0/headroom"
    assert head_names([3, 3, 2, 2], residual=True) == ["rate", "margin", "stage0/keep",
                                                      "stage1/keep"]
    assert head_names([5, 4, 24]) == ["head0", "head1", "head2"]
    assert head_names([5, 4], "absolute") == ["head0", "head1"]
    assert head_columns(["stage0/variant"]) == ["heads/stage0/variant/entropy",
                                                "heads/stage0/variant/entropy_norm"]


def test_entropy_per_head_is_the_softmax_entropy_of_its_logits(env: PipelineEnv,
                                                               model: PPO) -> None:
    nvec = [int(n) for n in env.action_space.nvec]
    assert nvec == [5, 4, 24, 5, 4, 24]
    rng = np.random.default_rng(1)
    parts = [np.zeros(5),  # uniform
             np.log([1.0, 1.0, 2.0, 4.0]),  # p = 1/8, 1/8, 1/4, 1/2
             *(rng.normal(0.0, 2.0, n) for n in nvec[2:])]
    set_logits(model, np.concatenate(parts))
    names = head_names(nvec, "absolute")
    stats = head_entropies(model, observations(env, 8), names)
    assert list(stats) == names
    # uniform over 5: ln 5, the maximum
    assert stats["stage0/variant"].entropy == pytest.approx(math.log(5), rel=1e-6)
    assert stats["stage0/variant"].entropy_norm == pytest.approx(1.0, rel=1e-6)
    # 2 (1/8) ln 8 + (1/4) ln 4 + (1/2) ln 2 = 1.75 ln 2; over ln 4: 0.875
    assert stats["stage0/batch"].entropy == pytest.approx(1.75 * LN2, rel=1e-6)
    assert stats["stage0/batch"].entropy_norm == pytest.approx(0.875, rel=1e-6)
    for name, logits, n in zip(names[2:], parts[2:], nvec[2:], strict=True):
        h = numpy_entropy(logits)
        assert stats[name].entropy == pytest.approx(h, rel=1e-5), name
        assert stats[name].entropy_norm == pytest.approx(h / math.log(n), rel=1e-5), name
        assert 0.0 < stats[name].entropy_norm < 1.0


def test_masks_renormalise_over_the_allowed_choices(env: PipelineEnv, model: PPO) -> None:
    nvec = [int(n) for n in env.action_space.nvec]
    set_logits(model, np.concatenate([np.zeros(5), np.log([1.0, 1.0, 2.0, 4.0]),
                                      np.zeros(sum(nvec[2:]))]))
    masks = np.ones((2, sum(nvec)), dtype=bool)
    masks[0, 0:5] = [True, True, True, False, False]  # row 0: 3 of 5 variants, uniform
    masks[1, 0:5] = [False, False, False, False, True]  # row 1: one variant, certain
    masks[:, 5:9] = [False, False, True, True]  # p = 2/6, 4/6
    stats = head_entropies(model, observations(env, 2), head_names(nvec, "absolute"), masks)
    assert stats["stage0/variant"].entropy == pytest.approx(LN3 / 2, rel=1e-6)
    assert stats["stage0/variant"].entropy_norm == pytest.approx(1.0, rel=1e-6)  # row 0 only
    # (1/3) ln 3 + (2/3) ln (3/2) = ln 3 - (2/3) ln 2, over ln 2
    batch = LN3 - 2 / 3 * LN2
    assert stats["stage0/batch"].entropy == pytest.approx(batch, rel=1e-6)
    assert stats["stage0/batch"].entropy_norm == pytest.approx(batch / LN2, rel=1e-6)
    one = np.zeros((2, sum(nvec)), dtype=bool)
    one[:, [0, 5, 9, 33, 38, 42]] = True  # one choice per head: no maximum to divide by
    stats = head_entropies(model, observations(env, 2), masks=one)
    assert all(s.entropy == 0.0 and math.isnan(s.entropy_norm) for s in stats.values())


def test_rollout_rows_keep_evenly_spaced_rows(env: PipelineEnv) -> None:
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [16]})
    model.learn(64)
    buffer = model.rollout_buffer
    obs, masks = rollout_rows(buffer, 16)
    assert masks is None and obs.shape == (16, env.observation_space.shape[0])
    keep = np.linspace(0, 63, 16).round().astype(int)
    np.testing.assert_array_equal(obs, buffer.observations.reshape(64, -1)[keep])
    assert len(rollout_rows(buffer)[0]) == 64


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_profile_doc(), sort_keys=False))
    return path


def run(profile: Path, out: Path, name: str, *extra: str
        ) -> tuple[list[str], list[dict[str, str]]]:
    """Train the tiny pipeline (two stages); metrics.csv's columns after `CSV_COLUMNS` and
    its training rows."""
    cfg = load_train_config(overrides=[
        f"env.pipeline={profile}", f"run.output_dir={out}", f"run.name={name}",
        "agent.n_steps=64", "agent.batch_size=64", "agent.n_epochs=2", "agent.net_arch=[16]",
        "run.n_envs=2", "run.n_eval_episodes=2", "run.progress_bar=false",
        "run.eval_freq=128", "run.checkpoint_freq=128", "tracking.mode=disabled", *extra])
    ppo.train(cfg, out / name, "test")
    with (out / name / "metrics.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames is not None
        assert list(reader.fieldnames[:len(CSV_COLUMNS)]) == list(CSV_COLUMNS)
        return (list(reader.fieldnames[len(CSV_COLUMNS):]),
                [r for r in reader if r["charts/steps_per_s"]])


def test_training_writes_head_entropies_and_explained_variance(profile: Path,
                                                               tmp_path: Path) -> None:
    columns, rows = run(profile, tmp_path, "plain", "run.total_timesteps=256")
    assert [int(r["step"]) for r in rows] == [128, 256]
    names = [f"stage{i}/{head}" for i in (0, 1) for head in ("variant", "batch", "replicas")]
    assert columns == head_columns(names)
    for row in rows:
        for name in names:
            h = float(row[f"heads/{name}/entropy"])
            norm = float(row[f"heads/{name}/entropy_norm"])
            assert math.isfinite(h) and h > 0.0 and 0.0 < norm <= 1.0 + 1e-9, name
    # the first rollout's policy is the initial one: logits near 0, near uniform heads
    assert all(float(rows[0][f"heads/{n}/entropy_norm"]) > 0.99 for n in names)
    # sb3 dumps a rollout's row before its update: update 1's losses are in row 256
    assert rows[0]["losses/explained_variance"] == ""
    assert math.isfinite(float(rows[1]["losses/explained_variance"]))


def test_masked_headroom_run_names_the_third_head_headroom(profile: Path,
                                                           tmp_path: Path) -> None:
    columns, rows = run(profile, tmp_path, "masked", "agent.masked=true", "env.max_cores=12",
                        "env.action_mode=headroom", "run.total_timesteps=128")
    names = [f"stage{i}/{head}" for i in (0, 1) for head in ("variant", "batch", "headroom")]
    assert columns == head_columns(names)
    for column in columns:
        assert math.isfinite(float(rows[0][column])), column
