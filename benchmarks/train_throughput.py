"""PPO training throughput on the fluid backend, end to end (rollouts, updates, evaluation).

    python benchmarks/train_throughput.py [--steps 16384] [--n-envs 1 4 8 16]
    python benchmarks/train_throughput.py --cartpole-only     # just the CartPole-v1 comparison
    python benchmarks/train_throughput.py --fleet [--fleet-steps 4096]   # just the fleet part

Uses the video pipeline when ``profiles/video.yaml`` exists, else a synthetic two-stage
profile (the one the tests use). Prints env-only steps/s (one `PipelineEnv` with random
actions; the vectorised, normalised env without a policy), then training steps/s with
``agent`` defaults for each ``n_envs``: ``train()`` into a temporary run folder with W&B
disabled, one evaluation (4 validation windows) and one checkpoint at the end. The last
line of that part is ``steps_per_s=<best training configuration>``.

Then comes the comparison against CartPole-v1, measured in the same process, twice,
alternating sides: PPO ``learn()`` steps/s with identical settings (the ``agent`` defaults,
``run.n_envs`` envs, VecNormalize, one torch thread) on the training vec env (the batched
fluid env by default) and on CartPole-v1 (DummyVecEnv); then one env step: a batched step
divided by ``n_envs`` against one CartPole-v1 step through ``gymnasium.make``. The last two
lines of that part are ``ppo_over_cartpole=`` and ``step_over_cartpole=`` (means over the
repeats).

It ends with the fleet scenario (alone with ``--fleet``; under 3 minutes at the default
``--fleet-steps 4096`` on 2 cores, 2.6 with other jobs on them, so it also runs by
default): the A100 + H100 chat fleet (``profiles/llm_chat_a100_h100_tight``) on the
request-level simulator, nodes booting in 120 s and held 60 s, up to 32 replicas,
under IPA's Twitter trace damped by 8 and scaled by 4 (peak about 136 req/s;
``../shared/data/twitter/workload.txt``, else the synthetic ``bursty`` pattern scaled to
the same peak). With ``run.n_envs=2`` it measures PPO
``learn()`` steps/s and env-only steps/s (random actions) with both envs in the main
process (``run.vec_env=dummy``: 1 worker) and with one worker process per env
(``run.vec_env=subproc``: 2 workers), alternating sides. The last six lines are
``fleet_steps_per_s_dummy=``, ``fleet_steps_per_s_subproc=``, ``fleet_subproc_speedup=``
(subproc over dummy; goal >= 1.6 on 2 free cores), ``fleet_env_steps_per_s_dummy=``,
``fleet_env_steps_per_s_subproc=`` and ``fleet_env_subproc_speedup=``.

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

from agents.runs.train_config import load_train_config  # noqa: E402
from agents.training import ppo, vec_envs  # noqa: E402
from envs.config.cli import command_line, positive_int  # noqa: E402
from envs.config.errors import ConfigError  # noqa: E402
from envs.config.loader import to_dict  # noqa: E402
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
    venv = vec_envs.make_normalized_venv(cfg, cfg.env, seed=0, resume_from=None)
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


def _ppo_learn_rate(venv: object, cfg: object, steps: int) -> float:
    """Steps/s of ``model.learn(steps)`` with the run's PPO settings on ``venv``."""
    import torch

    torch.set_num_threads(cfg.run.torch_threads)
    torch.distributions.Distribution.set_default_validate_args(False)  # as ppo.train does
    model = ppo.make_model(cfg, venv, None)
    t0 = time.perf_counter()
    model.learn(steps)
    rate = model.num_timesteps / (time.perf_counter() - t0)
    venv.close()
    return rate


def cartpole_comparison(pipeline: str, n_envs: int, steps: int, repeats: int) -> None:
    """PPO steps/s and one env step, ours against CartPole-v1, alternating, same process."""
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from envs.batched import BatchedPipelineVecEnv

    cfg = load_train_config(overrides=[f"env.pipeline={pipeline}", f"run.n_envs={n_envs}"])
    kind = vec_envs.vec_env_kind(cfg, cfg.env)
    print(f"cartpole comparison: n_envs={n_envs} steps={steps} vec_env={kind}")

    def ours() -> float:
        venv = vec_envs.make_normalized_venv(cfg, cfg.env, seed=0, resume_from=None)
        return _ppo_learn_rate(venv, cfg, steps)

    def cartpole() -> float:
        venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=n_envs, seed=0,
                                         vec_env_cls=DummyVecEnv),
                            norm_obs=cfg.agent.normalize_obs,
                            norm_reward=cfg.agent.normalize_reward, gamma=cfg.agent.gamma)
        return _ppo_learn_rate(venv, cfg, steps)

    def batched_step_us() -> float:
        venv = BatchedPipelineVecEnv(cfg.env, n_envs)
        venv.seed(0)
        venv.reset()
        rng = np.random.default_rng(0)
        nvec = venv.action_space.nvec
        actions = [rng.integers(nvec, size=(n_envs, len(nvec))) for _ in range(64)]
        for a in actions:
            venv.step(a)
        k = 1000
        t0 = time.perf_counter()
        for i in range(k):
            venv.step(actions[i % len(actions)])
        return (time.perf_counter() - t0) / k / n_envs * 1e6

    def cartpole_step_us() -> float:
        env = gym.make("CartPole-v1")
        env.reset(seed=0)
        env.action_space.seed(0)
        actions = [env.action_space.sample() for _ in range(512)]
        k = 20_000
        t0 = time.perf_counter()
        for i in range(k):
            _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
            if terminated or truncated:
                env.reset()
        return (time.perf_counter() - t0) / k * 1e6

    ppo_ratios, step_ratios = [], []
    for r in range(repeats):
        a, b = ours(), cartpole()
        ppo_ratios.append(a / b)
        print(f"repeat {r + 1}: PPO {a:.0f} steps/s on the pipeline env, {b:.0f} on "
              f"CartPole-v1: {a / b:.3f}x")
        if kind == "batched":
            s_ours, s_cp = batched_step_us(), cartpole_step_us()
            step_ratios.append(s_ours / s_cp)
            print(f"repeat {r + 1}: one env step {s_ours:.1f} us (batched step / {n_envs}), "
                  f"CartPole-v1 {s_cp:.1f} us: {s_ours / s_cp:.2f}x")
    print(f"ppo_over_cartpole={np.mean(ppo_ratios):.3f}")
    print(f"step_over_cartpole={np.mean(step_ratios):.2f}" if step_ratios else
          "step_over_cartpole=nan (the training vec env is not the batched one)")


FLEET_TRACE = ROOT.parent / "shared" / "data" / "twitter" / "workload.txt"
FLEET_ENV = ["env.pipeline=llm_chat_a100_h100_tight", "env.backend=requests",
             "env.node_boot_s=120", "env.node_hold_s=60", "env.max_replicas=32",
             "env.rate_scale_rps=136"]


def fleet_overrides(trace: Path) -> list[str]:
    """Config overrides of the fleet scenario: the A100 + H100 chat fleet on the request
    simulator under IPA's Twitter trace (damped by 8, scaled by 4), as
    ``configs/eval/llm_chat_a100_h100_tight_windows.yaml``.

    Args:
        trace: The Twitter trace; when it is absent, the synthetic ``bursty`` pattern
            (peak 34 req/s) scaled by 4 gives the same peak of about 136 req/s.

    Returns:
        ``section.key=value`` overrides for `load_train_config`.
    """
    if trace.is_file():
        workload = ["env.workload.source=trace", f"env.workload.trace_path={trace}",
                    "env.workload.damping=8.0", "env.workload.scale=4.0"]
        print(f"fleet workload: Twitter trace {trace}, damped by 8, scaled by 4")
    else:
        workload = ["env.workload.source=synthetic", "env.workload.pattern=bursty",
                    "env.workload.scale=4.0"]
        print(f"fleet workload: {trace} not found; synthetic bursty pattern scaled by 4 "
              "(peak about 136 req/s, as the scaled trace's)")
    return FLEET_ENV + workload


def fleet_comparison(steps: int, repeats: int, trace: Path = FLEET_TRACE) -> None:
    """PPO ``learn()`` and env-only steps/s on the fleet scenario, 1 against 2 processes.

    Both vec envs (``run.n_envs=2``; ``dummy``: both envs in the main process,
    ``subproc``: one worker process each) are built once and warmed up (one rollout of
    ``learn()`` and a few hundred env steps, so imports and numba compilation are done in
    every process), then measured ``repeats`` times, alternating sides so both see the
    same machine load. Each learn measurement is a new PPO model (the ``agent``
    defaults, one torch thread) learning ``steps`` steps on the kept VecNormalize'd env;
    each env-only measurement steps the monitored vec env (no VecNormalize, no policy)
    ``steps`` times under pre-sampled random actions. Prints ``fleet_*`` metrics last.

    Args:
        steps: Env steps per measurement (both envs together).
        repeats: Measurements per side.
        trace: The Twitter trace (see `fleet_overrides`).
    """
    import torch

    torch.set_num_threads(1)
    torch.distributions.Distribution.set_default_validate_args(False)  # as ppo.train does
    overrides = fleet_overrides(trace)
    kinds = ("dummy", "subproc")
    cfgs = {k: load_train_config(overrides=[*overrides, "run.n_envs=2", f"run.vec_env={k}"])
            for k in kinds}
    a = cfgs["dummy"].agent
    print(f"fleet: {cfgs['dummy'].env.pipeline} on backend={cfgs['dummy'].env.backend}, "
          f"n_envs=2, steps={steps} per measurement, {repeats} repeats alternating; PPO "
          f"n_steps={a.n_steps} batch_size={a.batch_size} n_epochs={a.n_epochs} "
          f"net_arch={list(a.net_arch)}, one torch thread")
    venvs = {k: vec_envs.make_normalized_venv(c, c.env, seed=0, resume_from=None)
             for k, c in cfgs.items()}
    rng = np.random.default_rng(0)
    nvec = venvs["dummy"].action_space.nvec
    actions = [rng.integers(nvec, size=(2, len(nvec))) for _ in range(64)]

    def learn(kind: str, n: int) -> float:
        model = ppo.make_model(cfgs[kind], venvs[kind], None)
        t0 = time.perf_counter()
        model.learn(n)
        return model.num_timesteps / (time.perf_counter() - t0)

    def env_only(kind: str, n: int) -> float:
        venv = venvs[kind].venv  # the monitored vec env under VecNormalize
        venv.reset()
        t0 = time.perf_counter()
        for i in range(n // 2):
            venv.step(actions[i % len(actions)])
        return (n // 2) * 2 / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for kind in kinds:
        learn(kind, 2 * a.n_steps)
        env_only(kind, 512)
    print(f"fleet warm-up: {time.perf_counter() - t0:.1f} s")
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    env_rates: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(repeats):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            rates[kind].append(learn(kind, steps))
            env_rates[kind].append(env_only(kind, steps))
        print(f"repeat {r + 1}: PPO {rates['dummy'][-1]:.0f} steps/s dummy, "
              f"{rates['subproc'][-1]:.0f} subproc; env only {env_rates['dummy'][-1]:.0f} "
              f"dummy, {env_rates['subproc'][-1]:.0f} subproc")
    for venv in venvs.values():
        venv.close()
    ppo_d, ppo_s = np.mean(rates["dummy"]), np.mean(rates["subproc"])
    env_d, env_s = np.mean(env_rates["dummy"]), np.mean(env_rates["subproc"])
    print(f"fleet_steps_per_s_dummy={ppo_d:.1f}")
    print(f"fleet_steps_per_s_subproc={ppo_s:.1f}")
    print(f"fleet_subproc_speedup={ppo_s / ppo_d:.3f}")
    print(f"fleet_env_steps_per_s_dummy={env_d:.1f}")
    print(f"fleet_env_steps_per_s_subproc={env_s:.1f}")
    print(f"fleet_env_subproc_speedup={env_s / env_d:.3f}")


DEFAULT_RUN = ROOT / "results" / "agents" / "video_mixed_e12_headroom_1m"


def time_to_ilp_reward(run_dir: Path) -> None:
    """Print the energy-aware ILP's validation reward and when ``run_dir`` reached it."""
    import csv
    from dataclasses import replace

    from agents.evaluation.config import IpaWeights
    from agents.policies import IPAPolicy
    from agents.runs.validation_split import eval_window_starts, split_env_configs
    from agents.training.validation import evaluate_windows
    from envs.config.loader import from_dict
    from envs.config.yaml_io import read_yaml_file

    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise ConfigError(f"{metrics} does not exist: --run takes a train.py run folder that "
                          "has logged evaluations")
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    evals = [(int(r["step"]), float(r["eval/mean_reward"])) for r in rows
             if r.get("eval/mean_reward")]
    if not evals:
        raise ConfigError(f"{metrics} has no evaluation rows (eval/mean_reward); train "
                          "past run.eval_freq or pick another --run")
    cfg = from_dict(type(load_train_config()), read_yaml_file(run_dir / "config.yaml"))
    _, val_cfg = split_env_configs(cfg.env, cfg.eval)
    env = PipelineEnv(replace(val_cfg, action_mode="absolute"))
    starts = eval_window_starts(len(env.trace), val_cfg.workload.window_s, val_cfg.interval_s,
                                cfg.run.n_eval_episodes)
    w = IpaWeights()
    ilp = IPAPolicy(env, mode=w.mode, alpha=w.alpha, beta=w.beta, gamma=w.gamma,
                    delta=w.delta, use_batch_timeout=True)
    target = evaluate_windows(ilp, env, starts).mean_reward
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
    parser.add_argument("--cartpole-only", action="store_true",
                        help="run only the CartPole-v1 comparison")
    parser.add_argument("--cartpole-steps", type=positive_int, default=16_384)
    parser.add_argument("--cartpole-n-envs", type=positive_int, default=8)
    parser.add_argument("--repeats", type=positive_int, default=2)
    parser.add_argument("--fleet", action="store_true",
                        help="run only the fleet scenario's 1- against 2-process comparison")
    parser.add_argument("--fleet-steps", type=positive_int, default=4096,
                        help="env steps per fleet measurement (e.g. 512 for a smoke run)")
    args = parser.parse_args()
    if args.fleet:
        fleet_comparison(args.fleet_steps, args.repeats)
        return
    if args.cartpole_only:
        with tempfile.TemporaryDirectory() as tmp_name:
            cartpole_comparison(pipeline_arg(Path(tmp_name)), args.cartpole_n_envs,
                                args.cartpole_steps, args.repeats)
        return
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
        cartpole_comparison(pipeline, args.cartpole_n_envs, args.cartpole_steps, args.repeats)
    fleet_comparison(args.fleet_steps, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
