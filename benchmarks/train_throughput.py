"""PPO training throughput on the fluid backend, end to end (rollouts, updates, evaluation).

    python benchmarks/train_throughput.py [--steps 16384] [--n-envs 1 4 8 16]

Uses the video pipeline when ``profiles/video.yaml`` exists, else a synthetic two-stage
profile (the one the tests use). Prints env-only steps/s (one `PipelineEnv` with random
actions; the vectorised, normalised env without a policy), then training steps/s with
``agent`` defaults for each ``n_envs``: ``train()`` into a temporary run folder with W&B
disabled, one evaluation (4 validation windows) and one checkpoint at the end. The last
line is ``steps_per_s=<best training configuration>``.

With ``--run DIR`` (default: the committed agent in ``results/agents/``, when present) it
also reports the time that run took to reach the energy-aware ILP's validation reward:
the ILP (IPA + energy, same reward weights) is played on the run's own validation
windows, and the run's ``metrics.csv`` gives the first evaluation at or above it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import ppo  # noqa: E402
from agents.train_config import load_train_config  # noqa: E402
from envs.cli import command_line, positive_int  # noqa: E402
from envs.config import to_dict  # noqa: E402
from envs.pipeline_env import PipelineEnv  # noqa: E402


def pipeline_arg(tmp: Path) -> str:
    """``video`` when its profile exists, else the path of a synthetic test profile."""
    if (ROOT / "profiles" / "video.yaml").is_file():
        return "video"
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import tiny_profile_doc

    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_profile_doc(), sort_keys=False))
    print("profiles/video.yaml not found: using the synthetic 2-stage test profile")
    return str(path)


def env_only(pipeline: str, steps: int) -> float:
    """Steps/s of one bare `PipelineEnv` under pre-sampled random actions."""
    env = PipelineEnv(load_train_config(overrides=[f"env.pipeline={pipeline}"]).env)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(512)]
    t0 = time.perf_counter()
    for i in range(steps):
        if env.step(actions[i % len(actions)])[3]:
            env.reset()
    return steps / (time.perf_counter() - t0)


def vec_only(pipeline: str, n_envs: int, steps: int) -> float:
    """Steps/s of the training vec env (Monitor, DummyVecEnv, VecNormalize), no policy."""
    cfg = load_train_config(overrides=[f"env.pipeline={pipeline}", f"run.n_envs={n_envs}"])
    venv = ppo._make_venv(cfg, cfg.env, seed=0, resume_from=None)
    venv.reset()
    rng = np.random.default_rng(0)
    nvec = venv.action_space.nvec
    actions = [rng.integers(nvec, size=(n_envs, len(nvec))) for _ in range(64)]
    t0 = time.perf_counter()
    for i in range(steps // n_envs):
        venv.step(actions[i % len(actions)])
    return (steps // n_envs) * n_envs / (time.perf_counter() - t0)


def train_rate(pipeline: str, n_envs: int, steps: int, out: Path) -> float:
    """Steps/s of `ppo.train` (learn + final evaluation), W&B and progress bar off."""
    cfg = load_train_config(overrides=[
        f"env.pipeline={pipeline}", f"run.n_envs={n_envs}", f"run.total_timesteps={steps}",
        f"run.eval_freq={steps}", f"run.checkpoint_freq={steps}", f"run.output_dir={out}",
        f"run.name=n{n_envs}", "tracking.mode=disabled", "run.progress_bar=false"])
    t0 = time.perf_counter()
    result = ppo.train(cfg, out / f"n{n_envs}", "benchmark")
    return result.num_timesteps / (time.perf_counter() - t0)


DEFAULT_RUN = ROOT / "results" / "agents" / "video_mixed_e12_headroom_1m"


def time_to_ilp_reward(run_dir: Path) -> None:
    """Print the energy-aware ILP's validation reward and when ``run_dir`` reached it."""
    import csv
    from dataclasses import replace

    from agents.eval_config import IpaWeights
    from agents.policy import evaluate_windows
    from agents.train_config import eval_window_starts, split_env_configs
    from envs.config import from_dict, read_yaml_file
    from ipa_baseline.policies import IPAPolicy

    cfg = from_dict(type(load_train_config()), read_yaml_file(run_dir / "config.yaml"))
    _, val_cfg = split_env_configs(cfg)
    env = PipelineEnv(replace(val_cfg, action_mode="absolute"))
    starts = eval_window_starts(len(env.trace), val_cfg.workload.window_s, val_cfg.interval_s,
                                cfg.run.n_eval_episodes)
    w = IpaWeights()
    ilp = IPAPolicy(env, mode=w.mode, alpha=w.alpha, beta=w.beta, gamma=w.gamma,
                    delta=w.delta, use_batch_timeout=True)
    target = evaluate_windows(ilp, env, starts).mean_reward
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    evals = [(int(r["step"]), float(r["eval/mean_reward"])) for r in rows
             if r.get("eval/mean_reward")]
    rates = [float(r["charts/steps_per_s"]) for r in rows if r.get("charts/steps_per_s")]
    steps_per_s = float(np.median(rates)) if rates else float("nan")
    best = max(v for _, v in evals)
    print(f"run {run_dir.name}: energy-aware ILP validation reward {target:.2f}, PPO best "
          f"{best:.2f} over {len(evals)} evaluations")
    reached = next((step for step, value in evals if value >= target), None)
    print(f"ilp_energy_val_reward={target:.3f}")
    print(f"ppo_best_val_reward={best:.3f}")
    if reached is None:
        print("steps_to_ilp_reward=nan (not reached)")
        print("seconds_to_ilp_reward=nan")
    else:
        print(f"steps_to_ilp_reward={reached}")
        print(f"seconds_to_ilp_reward={reached / steps_per_s:.1f}")


@command_line("python benchmarks/train_throughput.py")
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=16_384)
    parser.add_argument("--n-envs", type=positive_int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN,
                        help="train.py run folder for the time-to-ILP-reward figure")
    args = parser.parse_args()
    if args.run.is_dir():
        time_to_ilp_reward(args.run)
    else:
        print(f"no run folder {args.run}: skipping the time-to-ILP-reward figure")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pipeline = pipeline_arg(tmp)
        agent = to_dict(load_train_config().agent)
        print(f"pipeline={pipeline} steps={args.steps} agent: n_steps={agent['n_steps']} "
              f"batch_size={agent['batch_size']} n_epochs={agent['n_epochs']} "
              f"net_arch={agent['net_arch']}")
        print(f"env_only_steps_per_s={env_only(pipeline, 4096):.0f}")
        for n in args.n_envs:
            print(f"vec_env_only n_envs={n}: {vec_only(pipeline, n, 4096):.0f} steps/s")
        rates = {}
        for n in args.n_envs:
            rates[n] = train_rate(pipeline, n, args.steps, tmp)
            print(f"train n_envs={n}: {rates[n]:.0f} steps/s")
        best = max(rates, key=rates.get)
        print(f"best: n_envs={best}")
        print(f"steps_per_s={rates[best]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
