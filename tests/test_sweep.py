"""Sweeps on Ray Tune: expansion of sweep files, bad input, a two-trial sweep on a local Ray,
resuming it, and evaluate.py's expansion of a sweep folder."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import train
from agents.sweeps.config import SweepConfig, expand_trials, load_sweep_config
from agents.sweeps.dirs import agent_run_dirs
from agents.sweeps.summary import format_table
from envs.config.errors import ConfigError
from envs.config.loader import from_dict

REPO = Path(__file__).resolve().parents[1]
CI_SWEEP = REPO / "configs" / "sweep" / "ci.yaml"


def _sweep(tmp_path: Path, **doc: object) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# -- expansion -------------------------------------------------------------------------------
def test_grid_is_the_product_in_a_fixed_order(tmp_path: Path) -> None:
    sweep = from_dict(SweepConfig, {"grid": {"run.seed": [0, 1], "env.reward.energy": [0.5, 2.0]},
                                    "overrides": ["run.total_timesteps=4096"]})
    trials = expand_trials(sweep, tmp_path / "sw")
    assert [t.name for t in trials] == ["t000_seed=0_energy=0.5", "t001_seed=0_energy=2",
                                        "t002_seed=1_energy=0.5", "t003_seed=1_energy=2"]
    assert [(t.config.run.seed, t.config.env.reward.energy) for t in trials] == [
        (0, 0.5), (0, 2.0), (1, 0.5), (1, 2.0)]
    for t in trials:
        assert t.config.run.output_dir == str(tmp_path / "sw")
        assert t.config.run.name == t.name and t.config.run.total_timesteps == 4096
        assert t.config.run.progress_bar is False


def test_random_draws_are_seeded_and_in_range(tmp_path: Path) -> None:
    doc = {"grid": {"run.seed": [0, 1]}, "num_samples": 3, "seed": 5,
           "random": {"agent.learning_rate": {"loguniform": [1.0e-4, 1.0e-2]},
                      "agent.n_epochs": {"randint": [2, 4]},
                      "agent.activation": {"choice": ["tanh", "relu"]}}}
    first = expand_trials(from_dict(SweepConfig, doc), tmp_path)
    again = expand_trials(from_dict(SweepConfig, doc), tmp_path)
    assert len(first) == 6  # 2 grid points x 3 samples
    assert [t.config for t in first] == [t.config for t in again]  # resumable: same trials
    rates = [t.config.agent.learning_rate for t in first]
    assert all(1.0e-4 <= r < 1.0e-2 for r in rates) and len(set(rates)) == 6
    assert {t.config.agent.n_epochs for t in first} <= {2, 3, 4}
    other = expand_trials(from_dict(SweepConfig, {**doc, "seed": 6}), tmp_path)
    assert [t.config.agent.learning_rate for t in other] != rates


@pytest.mark.parametrize(("doc", "match"), [
    ({"grid": {"run.seeed": [0, 1]}}, r"run\.seeed.*did you mean 'seed'"),
    ({"grid": {"agent.learning_rate": ["fast"]}}, r"t000.*agent\.learning_rate.*number"),
    ({"grid": {"run.name": ["a"]}}, r"run\.name cannot be swept"),
    ({"grid": {"run.seed": []}}, r"grid\.run\.seed lists no values"),
    ({"random": {"agent.gamma": {"uniform": [0.9, 0.99], "choice": [0.9]}}}, "exactly one"),
    ({"grids": {"run.seed": [0]}}, r"unknown key 'grids'.*did you mean 'grid'"),
])
def test_bad_sweep_files_name_the_problem(tmp_path: Path, doc: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        expand_trials(load_sweep_config(_sweep(tmp_path, **doc)), tmp_path)


def test_cli_bad_key_exits_2_with_one_line_before_any_trial(tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _sweep(tmp_path, name="bad", grid={"env.reward.enrgy": [1.0]})
    assert train.main(["--sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "env.reward.enrgy" in err[0] and "did you mean 'energy'" in err[0]
    assert not (tmp_path / "runs").exists()


def test_cli_override_of_a_swept_key_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert train.main(["--sweep", str(CI_SWEEP), "run.seed=3"]) == 2
    assert "['run.seed'] clashes with the sweep" in capsys.readouterr().err


def test_ray_address_that_does_not_answer_exits_2_before_any_trial(tmp_path: Path,
                                                                   monkeypatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--sweep", str(CI_SWEEP),
         "--address", f"127.0.0.1:{port}"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"train.py: error: Ray address 127.0.0.1:{port} does not answer")
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "runs" / "ci").glob("t0*"))  # no trial started


def test_address_without_sweep_is_refused(capsys) -> None:
    assert train.main(["--address", "auto"]) == 2
    assert "--address needs --sweep" in capsys.readouterr().err


def test_table_formats_missing_values() -> None:
    text = format_table([{"trial": "t000", "final_val_reward": math.nan, "steps": 0},
                         {"trial": "t001", "final_val_reward": 1.23456, "steps": 256}])
    assert text.splitlines()[1].split() == ["t000", "nan", "0"]
    assert text.splitlines()[2].split() == ["t001", "1.235", "256"]


# -- a real sweep on a local Ray -------------------------------------------------------------
def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ci_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("sweep")
    proc = _run(["--sweep", str(CI_SWEEP)], cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return cwd / "runs" / "ci", proc


def test_two_trial_sweep_writes_ordinary_run_folders_and_a_table(ci_sweep) -> None:
    sweep_dir, proc = ci_sweep
    names = ["t000_seed=0", "t001_seed=1"]
    for seed, name in enumerate(names):
        run = sweep_dir / name
        for f in ("config.yaml", "command.txt", "metrics.csv", "model.zip", "summary.json",
                  "best/model.zip", "vecnormalize.pkl"):
            assert (run / f).is_file(), (name, f)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["run"]["seed"] == seed and cfg["run"]["total_timesteps"] == 256
        assert json.loads((run / "summary.json").read_text())["num_timesteps"] == 256
    assert [t["name"] for t in json.loads((sweep_dir / "sweep.json").read_text())["trials"]] \
        == names
    rows = (sweep_dir / "summary.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["trial", "run.seed", "status"]
    assert len(rows) == 3 and all(",done," in r for r in rows[1:])
    table = [line for line in proc.stdout.splitlines() if line.startswith("t00")]
    assert len(table) == 2
    header = next(line for line in proc.stdout.splitlines() if line.startswith("trial"))
    for column in ("final_val_reward", "best_val_reward", "val_energy_j",
                   "val_sla_violation_rate"):
        assert column in header
    # the two seeds trained different agents (seed reached the trials)
    rewards = {json.loads((sweep_dir / n / "summary.json").read_text())["best_eval_reward"]
               for n in names}
    assert len(rewards) == 2


def test_rerun_skips_finished_and_continues_a_killed_trial(ci_sweep) -> None:
    sweep_dir, _ = ci_sweep
    done, killed = sweep_dir / "t000_seed=0", sweep_dir / "t001_seed=1"
    stamp = (done / "model.zip").stat().st_mtime_ns
    # what a trial killed after its first checkpoint leaves behind
    for f in ("summary.json", "model.zip"):
        (killed / f).unlink()
    for f in (killed / "checkpoints" / "step_0000000256").iterdir():
        f.unlink()
    (killed / "checkpoints" / "step_0000000256").rmdir()
    proc = _run(["--sweep", str(CI_SWEEP)], sweep_dir.parent.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(1 already finished)" in proc.stdout
    assert (done / "model.zip").stat().st_mtime_ns == stamp  # not re-run
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["num_timesteps"] == 256 and summary["steps_this_session"] == 128
    assert len((killed / "command.txt").read_text().splitlines()) == 2


def test_evaluate_expands_a_sweep_folder_into_its_trials(ci_sweep, tmp_path: Path) -> None:
    sweep_dir, _ = ci_sweep
    assert agent_run_dirs(sweep_dir) == [sweep_dir / "t000_seed=0", sweep_dir / "t001_seed=1"]
    assert agent_run_dirs(sweep_dir / "t000_seed=0") == [sweep_dir / "t000_seed=0"]
    half = tmp_path / "half"
    half.mkdir()
    (half / "sweep.json").write_text(json.dumps(
        {"sweep_file": "s.yaml", "trials": [{"name": "t000"}, {"name": "t001"}]}))
    (half / "t000").mkdir()
    (half / "t000" / "model.zip").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"\['t001'\] have no final model.*--sweep s.yaml"):
        agent_run_dirs(half)


def test_evaluate_py_scores_every_trial_of_a_sweep(ci_sweep, tmp_path: Path) -> None:
    sweep_dir, _ = ci_sweep
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "name": "sweep", "env": {"backend": "fluid"}, "seeds": [0],
        "windows": [{"name": "bursty", "pattern": "bursty", "window_s": 60}],
        "policies": ["static_low"], "output_dir": str(tmp_path / "reports"),
        "tracking": {"mode": "disabled"}}))
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--config", str(config),
                           "--agent", str(sweep_dir)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (tmp_path / "reports" / "sweep" / "summary.csv").open() as f:
        rows = {row["policy"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"ppo", "static_low"}  # the trials are ppo's training seeds
    assert rows["ppo"]["n_train_seeds"] == "2" and rows["static_low"]["n_train_seeds"] == "1"
