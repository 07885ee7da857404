"""evaluate.py end to end in a subprocess, and its statistics."""

from __future__ import annotations

import csv
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.evaluation.config import LEARNED, POLICIES
from agents.evaluation.statistics import mean_ci95, paired_test

ROOT = Path(__file__).resolve().parents[1]


def run_evaluate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)


def tiny_config(tmp_path: Path, profile: Path, policies: list[str], **extra) -> Path:
    config = {
        "name": "tiny",
        "env": {"pipeline": str(profile), "backend": "requests", "max_replicas": 6},
        "windows": [{"name": "bursty", "pattern": "bursty", "window_s": 60},
                    {"name": "steady_low", "pattern": "steady_low", "window_s": 60}],
        "seeds": [0, 1],
        "policies": policies,
        "hpa_targets": [0.6, 0.8],
        "ray_targets": [2.0],
        "output_dir": str(tmp_path / "reports"),
        "tracking": {"mode": "offline"},
        **extra,
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_summary(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_policy_end_to_end(tmp_path: Path, tiny_profile_path: Path) -> None:
    policies = [p for p in POLICIES if p not in LEARNED]
    result = run_evaluate(tmp_path, "--config", str(tiny_config(tmp_path, tiny_profile_path,
                                                                 policies)))
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / "reports" / "tiny"
    for name in ("report.md", "summary.csv", "paired.csv", "steps.csv", "latency_cdf.png",
                 "pareto_energy_accuracy.png", "sla_vs_energy.png", "timeseries_bursty.png"):
        assert (report / name).is_file(), name
    rows = read_summary(report / "summary.csv")
    assert {(r["policy"], r["workload"]) for r in rows} == {
        (p, w) for p in policies for w in ("bursty", "steady_low")}
    text = (report / "report.md").read_text()
    for r in rows:  # the report's table shows exactly the CSV's numbers
        cells = [r[c] for c in ("policy", "workload", "n_sim_seeds", "sla_violation_rate",
                                "energy_j", "accuracy")]
        line = next(line for line in text.splitlines()
                    if line.startswith(f"| {r['policy']} | {r['workload']} |"))
        for cell in cells:
            assert f" {cell} " in line
    assert "estimated" in text
    assert list((report / "wandb").glob("offline-run-*"))
    by = {(r["policy"], r["workload"]): r for r in rows}
    # sanity of the whole chain: the most accurate static configuration serves steady-low
    # without drops and spends more energy than the cheapest one
    high, low = by[("static_high", "steady_low")], by[("static_low", "steady_low")]
    assert float(high["sla_violation_rate"]) == 0.0
    assert float(high["energy_j"]) > float(low["energy_j"])
    assert float(high["accuracy"]) > float(low["accuracy"])
    assert all(r["energy_estimated"] == "true" for r in rows)
    # one floor per window, below every policy that served (nearly) every request
    for window in ("bursty", "steady_low"):
        assert len({r["floor_j"] for r in rows if r["workload"] == window}) == 1
    served_all = [r for r in rows if float(r["sla_violation_rate"]) < 0.01]
    assert served_all and all(float(r["energy_over_floor"]) >= 1.0 for r in served_all)
    assert "energy floor" in text


def test_garbage_trace_is_a_clear_error(tmp_path: Path, tiny_profile_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("1 2 3\n4 five 6\n")
    config = tiny_config(tmp_path, tiny_profile_path, ["static_low"],
                         windows=[{"name": "bursty", "segments": [[200, 203]]}],
                         days={"train_days": [], "val_days": []})
    result = run_evaluate(tmp_path, "--config", str(config), "--trace", str(trace))
    assert result.returncode == 2
    assert "line 2" in result.stderr and "five" in result.stderr


def test_agent_folder_without_model_is_a_clear_error(tmp_path: Path,
                                                     tiny_profile_path: Path) -> None:
    empty = tmp_path / "runs" / "nothing"
    empty.mkdir(parents=True)
    config = tiny_config(tmp_path, tiny_profile_path, ["static_low"])
    result = run_evaluate(tmp_path, "--config", str(config), "--agent", str(empty))
    assert result.returncode == 2
    assert str(empty) in result.stderr


def test_unknown_policy_is_rejected(tmp_path: Path, tiny_profile_path: Path) -> None:
    config = tiny_config(tmp_path, tiny_profile_path, ["ipa", "hpaa"])
    result = run_evaluate(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert "did you mean 'hpa'" in result.stderr


def test_confidence_interval_and_paired_test() -> None:
    mean, half = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert half == pytest.approx(2.776445 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5))
    result = paired_test([2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 1.5, 2.0, 2.5, 3.0])
    assert result["mean_diff"] == pytest.approx(2.0)
    assert result["ci_low"] > 0
    assert result["wilcoxon_p"] == pytest.approx(0.0625)
    assert paired_test([1.0, 2.0], [1.0, 2.0])["wilcoxon_p"] == 1.0
    # four positive differences with ties: only 1 of the 16 sign patterns is as extreme on
    # each side, so p = 2/16 exactly, which is also the smallest p four pairs can reach
    tied = paired_test([1.0, 1.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0])
    assert tied["wilcoxon_p"] == pytest.approx(0.125) and tied["min_p"] == 0.125
    # one zero difference is dropped: three pairs remain, smallest p 2/8
    assert paired_test([1.0, 2.0, 3.0, 0.0], [0.0] * 4)["min_p"] == 0.25


def test_trace_alone_evaluates_that_file(tmp_path: Path, tiny_profile_path: Path) -> None:
    trace = tmp_path / "my_trace.txt"
    rates = [6 + (i // 40) % 5 for i in range(300)]
    trace.write_text("\n".join(map(str, rates)) + "\n")
    result = run_evaluate(tmp_path, "--trace", str(trace), f"env.pipeline={tiny_profile_path}",
                          "env.max_replicas=6", "policies=[ipa,static_low]", "seeds=[0]",
                          f"output_dir={tmp_path / 'reports'}", "tracking.mode=disabled")
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / "reports" / "my_trace"
    text = (report / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| my_trace | "))
    # the workload table names the file, and the played part is the file after its warm-up
    assert "trace my_trace.txt seconds [[120, 300]]" in row
    played = np.array(rates[120:300], dtype=float)
    assert f"| 180 | {played.mean():.3g} | {played.max():.3g} |" in row
    assert {r["workload"] for r in read_summary(report / "summary.csv")} == {"my_trace"}


def test_trace_the_config_does_not_use_is_an_error(tmp_path: Path,
                                                   tiny_profile_path: Path) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("5\n" * 400)
    config = tiny_config(tmp_path, tiny_profile_path, ["static_low"])
    result = run_evaluate(tmp_path, "--config", str(config), "--trace", str(trace))
    assert result.returncode == 2
    assert "uses no trace" in result.stderr and "Traceback" not in result.stderr


def test_an_agent_of_another_pipeline_is_refused() -> None:
    """Given video agents, the chat -> image config evaluated the video pipeline under the
    name chat_to_image_windows (issue 25); now one line names both pipelines."""
    from agents.evaluation.setup import eval_config_from_flags
    from envs.config.errors import IpaEnergyError

    video = [ROOT / "results" / "agents" / f"video_s{i}" for i in (0, 1)]
    with pytest.raises(IpaEnergyError, match="trained on pipeline 'video' but config "
                                             "'chat_to_image_windows' evaluates "
                                             "'chat_to_image_h100'"):
        eval_config_from_flags(ROOT / "configs" / "eval" / "chat_to_image_windows.yaml", None,
                               video, [])
    with pytest.raises(IpaEnergyError, match="env.pipeline=video"):
        eval_config_from_flags(None, None, video, ["env.pipeline=llm"])
    same = eval_config_from_flags(ROOT / "configs" / "eval" / "ipa_windows.yaml", None, video, [])
    assert same.env.pipeline == "video"


def test_tuning_ties_go_to_the_lower_energy() -> None:
    """HPA's targets 0.6-0.9 tied exactly and the tie went to 0.6, the most
    over-provisioned (issue 25): now the lowest energy among the tied wins."""
    from agents.evaluation.compare import best_setting

    scores = {0.6: (-10.0, 500.0), 0.7: (-11.0, 100.0), 0.8: (-10.0, 300.0),
              0.9: (-10.0 * (1 + 1e-12), 400.0)}
    assert best_setting(scores) == 0.8
    assert best_setting({0.6: (-9.0, 500.0), 0.9: (-10.0, 100.0)}) == 0.6
    assert best_setting({1.0: (-1.0, 50.0), 2.0: (-1.0, 50.0)}) == 1.0


def test_paired_rows_take_the_training_seed_as_the_unit() -> None:
    """3 training seeds x 4 windows are 3 units, not 12 (issue 25: a CI of [6.5, 11.0] %
    and p = 0.00049 came from treating the 12 cells as independent)."""
    from agents.evaluation.statistics import paired_rows

    windows = ("a", "b", "c", "d")
    other = {"sla_violation_rate": 0.0, "accuracy_requests": 1.0}
    table = {("ipa", w, 0): {"energy_j": 100.0, "accuracy": 1.0, **other} for w in windows}
    gaps = {0: (0.10, 0.12, 0.08, 0.10), 1: (0.02, 0.04, 0.00, 0.02),
            2: (0.20, 0.18, 0.22, 0.20)}  # energy_rel per (seed, window)
    for seed, per_window in gaps.items():
        for w, gap in zip(windows, per_window, strict=True):
            table[("ppo", w, seed)] = {"energy_j": 100.0 * (1 + gap), "accuracy": 1.5, **other}
    table.update({("hpa", w, 0): {"energy_j": 150.0, "accuracy": 0.0, **other}
                  for w in windows})
    rows = {(r["policy"], r["workload"], r["metric"]): r
            for r in paired_rows(table) if r["metric"] in ("energy_rel", "accuracy")}
    energy = rows[("ppo", "all", "energy_rel")]
    seed_means = np.array([0.10, 0.02, 0.20])
    half = 4.302653 * seed_means.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 df)
    assert (energy["unit"], energy["n_units"], energy["n_windows"]) == ("training seed", 3, 4)
    assert energy["mean_diff"] == pytest.approx(seed_means.mean())
    assert energy["ci_low"] == pytest.approx(seed_means.mean() - half, rel=1e-5)
    assert energy["min_p"] == 0.25 and energy["wilcoxon_p"] == pytest.approx(0.25)
    per_window = rows[("ppo", "b", "energy_rel")]
    assert per_window["n_units"] == 3 and per_window["mean_diff"] == pytest.approx(0.34 / 3)
    rule = rows[("hpa", "all", "energy_rel")]
    assert (rule["unit"], rule["n_units"]) == ("window", 4)
    assert rule["mean_diff"] == pytest.approx(0.5)
    assert ("hpa", "a", "energy_rel") not in rows


def test_a_grid_grows_past_the_edge_its_best_value_is_on() -> None:
    from agents.evaluation.compare import TUNED_BOUNDS, next_grid_value

    hpa = TUNED_BOUNDS["hpa"]
    assert next_grid_value([0.5, 0.6, 0.7, 0.8, 0.9], 0.9, hpa) == pytest.approx(1.0)
    assert next_grid_value([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 1.0, hpa) is None  # 1.1 > 1
    assert next_grid_value([0.5, 0.6, 0.7], 0.5, hpa) == pytest.approx(0.4)
    assert next_grid_value([0.5, 0.6, 0.7], 0.6, hpa) is None  # not on an edge
    deltas = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3]  # spans 100x: geometric
    assert next_grid_value(deltas, 1e-3, TUNED_BOUNDS["ipa_energy"]) == pytest.approx(1e-3 / 0.3)
    assert next_grid_value(deltas, 1e-5, TUNED_BOUNDS["ipa_energy"]) == pytest.approx(1e-5 / 3)
    assert next_grid_value([1.0], 1.0, TUNED_BOUNDS["ray_serve"]) is None


def test_baselines_are_tuned_on_the_evaluation_simulator(tmp_path: Path,
                                                         tiny_profile_path: Path) -> None:
    """Tuning forced the fluid simulator and one seed while the evaluation ran on the
    request-level one (issue 25); it now plays the evaluation's backend and seeds, and the
    grids as played are written."""
    import json

    from agents.evaluation.compare import tune_baselines
    from agents.evaluation.config import EvalConfig, TuningConfig
    from envs.config.loader import from_dict

    config = from_dict(EvalConfig, yaml.safe_load(tiny_config(
        tmp_path, tiny_profile_path, ["hpa"], hpa_targets=[0.8, 0.9]).read_text()))
    config = replace(config, tuning=TuningConfig(seeds=(0, 1), max_extensions=1))
    tuned = tune_baselines(config, tmp_path, None)
    played = json.loads((tmp_path / "tuning" / "grids.json").read_text())
    assert played["backend"] == "requests" and played["seeds"] == [0, 1]
    grid = played["grids"]["hpa"]["grid"]
    assert tuned["hpa"] in grid and {0.8, 0.9} <= set(grid)
    assert len(grid) <= 3  # at most one step past an edge
    assert played["grids"]["hpa"]["at_edge"] == (tuned["hpa"] in (min(grid), max(grid)))


@pytest.mark.parametrize("override, match", [
    ("hpa_targets=[]", "hpa_targets must list one or more values"),
    ("ray_targets=[1.0, .nan]", "ray_targets[1]: expected a finite number"),
    ("ipa_headrooms=[a]", "ipa_headrooms"),
])
def test_bad_tuning_grids_are_one_line(tmp_path: Path, tiny_profile_path: Path,
                                       override: str, match: str) -> None:
    config = tiny_config(tmp_path, tiny_profile_path, ["hpa"])
    result = run_evaluate(tmp_path, "--config", str(config), override)
    assert result.returncode == 2, result.stderr[-2000:]
    assert match in result.stderr and "Traceback" not in result.stderr


def test_the_mpc_switching_weight_is_tuned_after_the_energy_weight(
        tmp_path: Path, tiny_profile_path: Path) -> None:
    """The MPC's cost per added replica is tuned like the other baselines, on top of
    ipa_energy's tuned weight; a grid of one value is used as it is, unplayed."""
    import json

    from agents.evaluation.compare import tune_baselines
    from agents.evaluation.config import EvalConfig, TuningConfig
    from envs.config.loader import from_dict

    config = from_dict(EvalConfig, yaml.safe_load(tiny_config(
        tmp_path, tiny_profile_path, ["ipa_energy", "mpc"], ipa_energy_deltas=[0.01, 0.05],
        mpc_switch_weights=[0.0, 5.0]).read_text()))
    config = replace(config, tuning=TuningConfig(seeds=(0,), max_extensions=0))
    tuned = tune_baselines(config, tmp_path, None)
    played = json.loads((tmp_path / "tuning" / "grids.json").read_text())["grids"]
    assert tuned["ipa_energy"] in (0.01, 0.05) and tuned["mpc"] in (0.0, 5.0)
    assert played["mpc"]["grid"] == [0.0, 5.0]
    fixed = replace(config, mpc_switch_weights=(2.0,), policies=("mpc",))
    assert tune_baselines(fixed, tmp_path / "fixed", None) == {"mpc": 2.0}
    grids = json.loads((tmp_path / "fixed" / "tuning" / "grids.json").read_text())["grids"]
    assert grids["mpc"] == {"grid": [2.0], "chosen": 2.0, "at_edge": False}
