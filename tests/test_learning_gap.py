"""`benchmarks/learning_gap.py`: the better planner, the agent's energy ratio per training
seed and its CI, by hand from a small steps.csv; a folder without steps.csv is one line."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "learning_gap.py"
FIELDS = ("policy", "workload", "seed", "train_seed", "energy_j", "arrived", "served",
          "sla_violations", "accuracy_rank_sum")


def write_report(folder: Path) -> None:
    """Two windows x one simulator seed. mpc 100 + 100 J, ipa_energy 120 + 120 J (no
    violations either); ppo seed 0: 90 + 100 J, seed 1: 110 + 100 J; accuracy 0.5 for the
    planners, 1.0 for ppo; ppo seed 1 violates 2 of 20 requests."""
    rows = []
    for window in ("a", "b"):
        rows += [("mpc", window, 0, 0, 100.0, 10, 10, 0, 0.5),
                 ("ipa_energy", window, 0, 0, 120.0, 10, 10, 0, 0.5),
                 ("ppo", window, 0, 0, 90.0 if window == "a" else 100.0, 10, 10, 0, 1.0),
                 ("ppo", window, 0, 1, 110.0 if window == "a" else 100.0, 10, 10, 1, 1.0)]
    folder.mkdir()
    with (folder / "steps.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerows(rows)
    with (folder / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("policy", "workload", "energy_j", "floor_j"))
        w.writerows([("mpc", "a", 100.0, 50.0), ("mpc", "b", 100.0, 80.0)])


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_ratio_per_seed_and_its_ci_by_hand(tmp_path: Path) -> None:
    write_report(tmp_path / "report")
    out = run(str(tmp_path / "report"))
    assert out.returncode == 0, out.stderr
    metrics = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    # seeds: 190 / 200 = 0.95 and 210 / 200 = 1.05; mean 1.0, t(0.975, 1) = 12.706 x
    # sd 0.0707 / sqrt 2 = 0.6353
    assert float(metrics["agent_over_planner"]) == pytest.approx(1.0)
    half = 12.7062 * math.sqrt(0.005) / math.sqrt(2)
    assert float(metrics["agent_over_planner_ci_high"]) == pytest.approx(1.0 + half, abs=1e-3)
    assert float(metrics["accuracy_diff"]) == pytest.approx(0.5)
    assert float(metrics["violation_diff"]) == pytest.approx((0.0 + 0.1) / 2)  # 2 of 20
    assert float(metrics["floor_over_planner_min"]) == pytest.approx(0.5)
    assert metrics["n_train_seeds"] == "2"
    assert "better planner: mpc" in out.stdout


def test_missing_steps_or_policy_is_one_line(tmp_path: Path) -> None:
    out = run(str(tmp_path))
    assert out.returncode == 2 and "steps.csv does not exist" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    write_report(tmp_path / "report")
    out = run(str(tmp_path / "report"), "--planners", "ipa")
    assert out.returncode == 2 and "['ipa']" in out.stderr
