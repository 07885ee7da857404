"""Day split: training and validation never share a day with an evaluation window."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.evaluation.config import EvalConfig, refuse_training_overlap
from agents.runs.train_config import load_train_config
from envs.config.errors import ConfigError
from envs.config.loader import load_config
from envs.workload.day_split import days_of, refuse_overlap, sample_heldout_starts

ROOT = Path(__file__).resolve().parents[1]
IPA_WINDOWS = ROOT / "configs" / "eval" / "ipa_windows.yaml"
AGENT = ROOT / "results" / "agents" / "video_mixed_e12_headroom_1m"


def trace_training(train_days: int, val_days: int):
    return load_train_config(overrides=[
        "env.workload.source=trace", "env.workload.trace_path=/data/workload.txt",
        "env.workload.damping=8", "eval.split=days", f"eval.train_days={train_days}",
        f"eval.val_days={val_days}"])


def test_days_of_a_range() -> None:
    assert days_of(0, 86_400) == {0}
    assert days_of(86_399, 86_401) == {0, 1}
    assert days_of(1301160, 1302360) == {15}  # IPA's bursty window lies in day 15


def test_training_days_that_overlap_an_evaluation_window_are_refused() -> None:
    config = load_config(EvalConfig, IPA_WINDOWS)
    with pytest.raises(ConfigError, match=r"day\(s\) \[15\].*'bursty'"):
        refuse_training_overlap(trace_training(15, 1), config, "workload.txt")  # val = 15
    with pytest.raises(ConfigError, match="training data covers"):
        refuse_training_overlap(trace_training(16, 1), config, "workload.txt")
    refuse_training_overlap(trace_training(12, 2), config, "workload.txt")  # IPA's 14 days


def test_eval_config_refuses_tuning_days_that_hold_a_window() -> None:
    with pytest.raises(ConfigError, match=r"validation \(days.val_days\).*\[20\]"):
        load_config(EvalConfig, IPA_WINDOWS, ["days.val_days=[12,20]"])
    with pytest.raises(ConfigError, match="heldout.days overlap"):
        load_config(EvalConfig, IPA_WINDOWS, ["heldout.days=[13,14]"])


def test_refuse_overlap_is_by_day_not_by_second() -> None:
    # training stops 1 s before the window, but on the same day: refused
    with pytest.raises(ConfigError, match="holds|hold evaluation window 'w'"):
        refuse_overlap({"training": [(0, 150)]}, {"w": [(151, 160)]}, day_s=100)
    refuse_overlap({"training": [(0, 100)]}, {"w": [(151, 160)]}, day_s=100)


def test_evaluate_refuses_an_agent_trained_on_an_evaluation_day(tmp_path: Path) -> None:
    if not (AGENT / "model.zip").is_file():
        pytest.skip(f"the committed agent {AGENT} is absent")
    agent = tmp_path / "agent"
    shutil.copytree(AGENT, agent)
    config = yaml.safe_load((agent / "config.yaml").read_text())
    config["env"]["workload"].update(source="trace", trace_path="/data/workload.txt",
                                     start_s=None, end_s=None)
    config["eval"].update(split="days", train_days=16, val_days=1)
    (agent / "config.yaml").write_text(yaml.safe_dump(config))
    trace = tmp_path / "workload.txt"
    trace.write_text("1 2 3\n")
    result = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--config",
                             str(IPA_WINDOWS), "--trace", str(trace), "--agent", str(agent)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "the agent's training data covers day(s) [15]" in result.stderr
    assert "Traceback" not in result.stderr


def test_heldout_windows_are_fixed_by_their_seed_and_stay_on_heldout_days() -> None:
    day_s = 3000
    rng = np.random.default_rng(1)
    trace = rng.integers(1, 30, 6 * day_s).astype(float)
    trace[4 * day_s + 100: 4 * day_s + 400] = 0.0  # a collection gap on day 4
    starts = sample_heldout_starts(trace, [3, 4, 5], 600, 6, seed=9, warmup_s=120,
                                   day_s=day_s)
    assert starts == sample_heldout_starts(trace, [3, 4, 5], 600, 6, seed=9, warmup_s=120,
                                           day_s=day_s)
    assert starts != sample_heldout_starts(trace, [3, 4, 5], 600, 6, seed=10, warmup_s=120,
                                           day_s=day_s)
    for start in starts:
        assert start // day_s in (3, 4, 5) and (start + 599) // day_s == start // day_s
        assert start % day_s >= 120  # its warm-up lies on the same day
        assert trace[start:start + 600].min() > 0  # no gap inside
    assert all(b - a >= 600 for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ConfigError, match="fewer"):
        sample_heldout_starts(trace, [3], 600, 50, seed=9, warmup_s=120, day_s=day_s)
