"""train.py and agents/: config loading, end-to-end runs, W&B offline, kill and resume,
Ctrl-C, determinism, validation splits. Budgets are a few hundred to a few thousand steps."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import train
from agents.policies import NormalizedPolicy, Policy, load_ppo_policy
from agents.runs.train_config import TrainConfig, load_train_config
from agents.runs.validation_split import split_env_configs
from agents.training.validation import EvalResult, evaluate_windows
from envs.config.errors import ConfigError
from envs.pipeline_env import PipelineEnv
from tests.conftest import tiny_profile_doc

REPO = Path(__file__).resolve().parents[1]
# Rollout of 2 envs x 64 steps = 128; small nets; everything at rollout boundaries.
TINY = ["agent.n_steps=64", "agent.batch_size=64", "agent.n_epochs=2", "agent.net_arch=[16]",
        "run.n_envs=2", "run.n_eval_episodes=2", "run.progress_bar=false"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_profile_doc(), sort_keys=False))
    return path


def overrides(profile: Path, out: Path, name: str, *extra: str) -> list[str]:
    return [f"env.pipeline={profile}", f"run.output_dir={out}", f"run.name={name}", *TINY,
            *extra]


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def train_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["charts/steps_per_s"]]


# -- configuration ---------------------------------------------------------------------------
def test_default_yaml_spells_out_the_embedded_defaults() -> None:
    assert load_train_config(REPO / "configs/train/default.yaml") == TrainConfig()


def test_video_config_takes_overrides_through_the_strict_loader() -> None:
    cfg = load_train_config(REPO / "configs/train/video_ppo.yaml",
                            ["agent.learning_rate=1e-4", "env.reward.energy=2.0"])
    assert cfg.agent.learning_rate == pytest.approx(1e-4)
    assert cfg.env.reward.energy == 2.0
    assert cfg.env.pipeline == "video"


@pytest.mark.parametrize(("extra", "needle"), [
    (["agent.learnin_rate=1e-4"], "agent.learnin_rate"),
    (["agent.learning_rate=fast"], "agent.learning_rate"),
    (["run.total_timesteps='1000'"], "run.total_timesteps"),
    (["env.workload.source=trace", "env.workload.trace_path=/nope/trace.txt"],
     "/nope/trace.txt"),
    (["agent.batch_size=512"], "agent.batch_size"),
    (["eval.seed=0"], "eval.seed"),
    (["tracking.mode=onlin"], "tracking.mode"),
])
def test_bad_config_fails_before_training(profile: Path, tmp_path: Path, capsys,
                                          extra: list[str], needle: str) -> None:
    code = train.main(overrides(profile, tmp_path, "bad", *extra))
    assert code == train.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("train.py: error: ") and needle in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_bad_config_exit_code_and_stderr_in_a_subprocess(profile: Path, tmp_path: Path) -> None:
    proc = run_cli(overrides(profile, tmp_path, "bad", "agent.gamma=high"), tmp_path)
    assert proc.returncode != 0
    assert "agent.gamma" in proc.stderr and "expected a number" in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_online_tracking_without_network_fails_fast(profile: Path, tmp_path: Path, capsys,
                                                    monkeypatch) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    t0 = time.monotonic()
    code = train.main(overrides(profile, tmp_path, "online", "tracking.mode=online"))
    assert time.monotonic() - t0 < 10
    assert code == train.EXIT_CONFIG
    assert "tracking.mode=offline" in capsys.readouterr().err
    assert not (tmp_path / "online").exists()


def test_splits_keep_validation_apart(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text(" ".join(["5"] * 3600))
    base = [f"env.workload.trace_path={trace}", "env.workload.source=trace",
            "env.workload.window_s=300", "eval.day_s=1200"]
    days = load_train_config(overrides=base)
    train_env, val_env = split_env_configs(days.env, days.eval)
    assert (train_env.workload.start_s, train_env.workload.end_s) == (0, 1200)
    assert (val_env.workload.start_s, val_env.workload.end_s) == (1200, 2400)
    with pytest.raises(ConfigError, match="overlap"):
        load_train_config(overrides=[*base, "eval.split=range", "eval.start_s=600",
                                     "eval.end_s=1200"])
    ranged = load_train_config(overrides=[*base, "eval.split=range", "eval.start_s=2400",
                                          "eval.end_s=3600", "env.workload.end_s=2400"])
    assert split_env_configs(ranged.env, ranged.eval)[1].workload.start_s == 2400
    with pytest.raises(ConfigError, match="needs env.workload.source=trace"):
        load_train_config(overrides=["eval.split=days"])
    synth_train, synth_val = split_env_configs(TrainConfig().env, TrainConfig().eval)
    assert synth_train.workload.seed != synth_val.workload.seed


# -- end to end ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offline_run(profile: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli(overrides(profile, out, "e2e", "run.total_timesteps=256",
                             "run.eval_freq=128", "run.checkpoint_freq=128"), out)
    assert proc.returncode == 0, proc.stderr
    return out / "e2e"


def test_run_folder_holds_config_command_commit_metrics(offline_run: Path) -> None:
    for name in ("config.yaml", "command.txt", "git_commit.txt", "metrics.csv", "model.zip",
                 "vecnormalize.pkl", "best/model.zip", "summary.json"):
        assert (offline_run / name).is_file(), name
    cfg = load_train_config(offline_run / "config.yaml")
    assert cfg.run.name == "e2e" and cfg.run.total_timesteps == 256
    assert "run.total_timesteps=256" in (offline_run / "command.txt").read_text()
    assert (offline_run / "git_commit.txt").read_text().strip()
    rows = read_metrics(offline_run)
    assert [int(r["step"]) for r in train_rows(rows)] == [128, 256]
    last = train_rows(rows)[-1]
    for column in ("charts/episode_reward", "charts/sla_violation_rate", "charts/energy_j",
                   "losses/policy_loss", "losses/value_loss", "losses/approx_kl",
                   "losses/entropy"):
        assert math.isfinite(float(last[column])), column
    evals = [r for r in rows if r["eval/mean_reward"]]
    assert [int(r["step"]) for r in evals] == [128, 256]
    for column in ("eval/sla_violation_rate", "eval/energy_j", "eval/accuracy", "eval/cores",
                   "eval/energy_estimated"):
        assert math.isfinite(float(evals[-1][column])), column
    assert sorted(p.name for p in (offline_run / "checkpoints").iterdir()) == [
        "step_0000000128", "step_0000000256"]


def test_saved_policy_loads_and_plays_raw_observations(offline_run: Path) -> None:
    policy = load_ppo_policy(offline_run)
    assert isinstance(policy, Policy) and isinstance(policy.model, Policy)
    assert policy.model.num_timesteps == 256
    env = PipelineEnv(load_train_config(offline_run / "config.yaml").env)
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs)
    assert env.action_space.contains(action)
    assert not np.allclose(policy.normalize(obs), obs)  # VecNormalize stats applied
    result = evaluate_windows(policy, env, [0, 1200], seed=1)
    assert isinstance(result, EvalResult) and result.episodes == 2
    assert 0.0 <= result.sla_violation_rate <= 1.0 and result.energy_j > 0
    assert load_ppo_policy(offline_run, which="best").model.num_timesteps in (128, 256)


def test_wandb_offline_run_dir_holds_logged_metrics(offline_run: Path) -> None:
    runs = list((offline_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = list(runs[0].glob("run-*.wandb"))
    assert len(files) == 1
    data = files[0].read_bytes()
    for name in (b"charts/episode_reward", b"eval/sla_violation_rate", b"eval/energy_j",
                 b"losses/value_loss", b"global_step"):
        assert name in data, name
    state = json.loads((offline_run / "wandb.json").read_text())
    assert state["id"] in files[0].name and state["logged_until"] == 256


def test_resume_rejects_overrides_the_checkpoint_would_ignore(offline_run: Path, capsys
                                                               ) -> None:
    assert train.main(["--resume", str(offline_run), "agent.learning_rate=1e-3"]) == 2
    assert "agent.learning_rate" in capsys.readouterr().err
    assert train.main(["--resume", str(offline_run), "--config", "x.yaml"]) == 2
    assert "drop --config" in capsys.readouterr().err
    assert train.main(["--resume", str(offline_run), "--dry-run",
                       "run.total_timesteps=512"]) == 0


def test_sigkill_then_resume_continues_the_step_counter(profile: Path, tmp_path: Path) -> None:
    args = overrides(profile, tmp_path, "killed", "run.total_timesteps=3072",
                     "run.checkpoint_freq=256", "run.eval_freq=1024", "tracking.mode=disabled")
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir = tmp_path / "killed"
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "step_0000000768" / "state.json").is_file():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run_dir / "model.zip").exists(), "finished before the kill; raise the budget"
    from agents.runs.checkpoints import latest_checkpoint, read_state

    saved = read_state(latest_checkpoint(run_dir))["num_timesteps"]
    logged = max(int(r["step"]) for r in read_metrics(run_dir))
    assert logged - saved <= 256  # at most one checkpoint interval lost

    resumed = run_cli(["--resume", str(run_dir)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    steps = [int(r["step"]) for r in train_rows(read_metrics(run_dir))]
    assert steps == list(range(128, 3072 + 1, 128))  # no gap, no duplicate
    assert load_ppo_policy(run_dir).model.num_timesteps == 3072
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2


def test_sigint_saves_a_checkpoint_and_resume_continues_the_same_run(profile: Path,
                                                                    tmp_path: Path) -> None:
    # a real SIGINT to a train.py process (what Ctrl-C sends), then --resume
    args = overrides(profile, tmp_path, "sigint", "run.total_timesteps=768",
                     "run.checkpoint_freq=1024", "run.eval_freq=1024", "tracking.mode=disabled")
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    run_dir = tmp_path / "sigint"
    deadline = time.monotonic() + 120
    while not (run_dir / "metrics.csv").is_file() or not any(
            int(r["step"]) >= 256 for r in train_rows(read_metrics(run_dir))):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == train.EXIT_INTERRUPTED, stderr
    assert "checkpoint saved to" in stderr and f"--resume {run_dir}" in stderr
    assert not (run_dir / "model.zip").exists(), "finished before the signal; raise the budget"
    from agents.runs.checkpoints import latest_checkpoint, read_state

    saved = read_state(latest_checkpoint(run_dir))["num_timesteps"]
    assert saved % 128 == 0 and 256 <= saved < 768  # at a rollout boundary: nothing lost
    killed_rows = train_rows(read_metrics(run_dir))
    assert [int(r["step"]) for r in killed_rows] == list(range(128, saved + 1, 128))

    resumed = run_cli(["--resume", str(run_dir)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rows = train_rows(read_metrics(run_dir))
    assert [int(r["step"]) for r in rows] == list(range(128, 768 + 1, 128))  # no gap, no dup
    assert rows[:len(killed_rows)] == killed_rows  # the killed run's rows are kept as they were
    assert load_ppo_policy(run_dir).model.num_timesteps == 768  # as an uninterrupted run
    assert json.loads((run_dir / "summary.json").read_text())["num_timesteps"] == 768


def test_same_seed_same_learning_curve(profile: Path, tmp_path: Path) -> None:
    from agents.training import ppo

    curves = []
    for name in ("a", "b"):
        cfg = load_train_config(overrides=overrides(
            profile, tmp_path, name, "run.total_timesteps=512", "run.eval_freq=256",
            "run.checkpoint_freq=512", "tracking.mode=disabled"))
        ppo.train(cfg, tmp_path / name, "test")
        curves.append([{k: v for k, v in r.items()
                        if "reward" in k or k.startswith(("losses/", "eval/"))}
                       for r in read_metrics(tmp_path / name)])
    assert curves[0] == curves[1]
    assert any(r["charts/episode_reward"] for r in curves[0])


def test_masked_ppo_trains_with_action_masks(profile: Path, tmp_path: Path) -> None:
    from agents.training import ppo

    cfg = load_train_config(overrides=overrides(
        profile, tmp_path, "masked", "agent.masked=true", "env.max_cores=12",
        "run.total_timesteps=128", "run.eval_freq=128", "run.checkpoint_freq=128",
        "tracking.mode=disabled"))
    result = ppo.train(cfg, tmp_path / "masked", "test")
    assert result.last_eval is not None and result.num_timesteps == 128
    policy = load_ppo_policy(tmp_path / "masked")
    assert isinstance(policy, NormalizedPolicy) and policy.masked
    env = PipelineEnv(cfg.env)
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs, action_masks=env.action_masks())
    assert env.action_space.contains(action)


def test_metrics_log_drops_lost_rows_on_resume_and_replays_them_to_wandb(tmp_path: Path
                                                                          ) -> None:
    import wandb

    from agents.training.metrics_log import MetricsLog

    log = MetricsLog(tmp_path / "metrics.csv")
    for step in (128, 256, 384):  # 384 came after the last checkpoint (256)
        log.log(step, {"charts/episode_reward": step / 10})
    log.close()
    run = wandb.init(project="ipa-energy-test", mode="offline", dir=str(tmp_path),
                     settings=wandb.Settings(silent=True))
    log = MetricsLog(tmp_path / "metrics.csv", run, resume_step=256)
    assert log.replay_to_wandb(after_step=128) == 1
    log.log(384, {"charts/episode_reward": 1.0})
    log.close()
    run.finish()
    rows = read_metrics(tmp_path)
    assert [(r["step"], r["charts/episode_reward"]) for r in rows] == [
        ("128", "12.8"), ("256", "25.6"), ("384", "1.0")]
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    (data,) = run_dir.glob("run-*.wandb")
    # W&B's service process may still be writing the file when finish() returns (seen once
    # in CI: only the header was there); wait for the records, at most 30 s
    deadline = time.monotonic() + 30.0
    logged = data.read_bytes()  # protobuf records: keys and JSON values appear verbatim
    while b"charts/episode_reward" not in logged and time.monotonic() < deadline:
        time.sleep(0.2)
        logged = data.read_bytes()
    assert b"charts/episode_reward" in logged and b"global_step" in logged
    assert b"25.6" in logged and b"1.0" in logged  # the replayed row and the new one
    assert b"12.8" not in logged  # W&B had the step-128 row already: not sent twice


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
@pytest.mark.parametrize("name", ["model.zip", "vecnormalize.pkl", "state.json"])
def test_corrupt_checkpoint_files_are_one_clear_error_naming_the_file(
        offline_run: Path, tmp_path: Path, capsys, name: str, damage: str) -> None:
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(offline_run, run_dir, ignore=shutil.ignore_patterns("wandb"))
    from agents.runs.checkpoints import latest_checkpoint

    path = latest_checkpoint(run_dir) / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 8)
    code = train.main(["--resume", str(run_dir), "run.total_timesteps=512",
                       "tracking.mode=disabled"])
    err = capsys.readouterr().err
    assert code == train.EXIT_CONFIG, err
    assert f"{path} is corrupt or truncated" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["model.zip", "vecnormalize.pkl"])
def test_corrupt_final_model_is_a_clear_error_naming_the_file(offline_run: Path,
                                                              tmp_path: Path,
                                                              name: str) -> None:
    import shutil

    from envs.config.errors import IpaEnergyError

    run_dir = tmp_path / "copy"
    shutil.copytree(offline_run, run_dir, ignore=shutil.ignore_patterns("wandb"))
    path = run_dir / name
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IpaEnergyError, match=f"{path} is corrupt or truncated.*retrain"):
        load_ppo_policy(run_dir)
