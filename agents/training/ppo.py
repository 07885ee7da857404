"""Train PPO (or MaskablePPO) on `PipelineEnv` into a run folder; resume killed runs.

A run folder ``<output_dir>/<name>/`` holds::

    config.yaml          resolved TrainConfig (load it back with load_train_config)
    command.txt          every command line that wrote to the folder, one a line
    git_commit.txt       git rev-parse HEAD at the first start ("unknown" outside git)
    metrics.csv          charts/, losses/, heads/ and eval/ metrics by env step
    model.zip            final model          vecnormalize.pkl  its VecNormalize stats
    best/                best validation model (model.zip, vecnormalize.pkl, eval.json)
    checkpoints/step_*/  model.zip, vecnormalize.pkl, state.json (step counter, ...)
    summary.json         final step count, throughput, last evaluation
    wandb/               the W&B run (offline runs upload with ``wandb sync``)
    wandb.json           its id (a resumed run continues it) and how far it is complete

With ``agent.residual`` set, the agent adjusts IPA's ILP: each training env is a
`ResidualPlannerEnv` (`agents.policies.residual_agent.make_training_env`) and validation
plays the agent through `ResidualAgentPolicy` on the validation env, as evaluation does.

With ``agent.violation_budget`` set, training is constrained PPO: a Lagrange multiplier on
the SLA-violation term (`agents.training.lagrangian`), in ``state.json`` and
``summary.json`` as ``lagrange_multiplier``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecNormalize

from agents.policies.residual_agent import ResidualAgentPolicy, make_training_env
from agents.runs.checkpoints import CHECKPOINT_FIX, latest_checkpoint, read_state
from agents.runs.run_files import load_algo
from agents.runs.tracking import (
    check_wandb_reachable,
    init_wandb,
    read_wandb_state,
    write_wandb_state,
)
from agents.runs.train_config import AgentConfig, TrainConfig, with_run
from agents.runs.validation_split import eval_window_starts, split_env_configs
from agents.training.callbacks import TrainingCallback
from agents.training.head_stats import HeadStatsCallback, head_columns, head_names
from agents.training.lagrangian import make_lagrangian_callback, penalty_replaced
from agents.training.metrics_log import LogWriter, MetricsLog
from agents.training.progress import Progress
from agents.training.validation import EvalResult
from agents.training.vec_envs import make_normalized_venv, vec_env_kind
from envs.config.errors import ConfigError
from envs.config.loader import to_dict
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from envs.workload.day_split import split_by_day
from envs.workload.traces import load_trace

__all__ = ["PreparedRun", "TrainResult", "git_commit", "prepare", "new_run_dir", "train"]

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PreparedRun:
    """What `prepare` checked and built before any training starts."""

    train_env: EnvConfig
    val_env: EnvConfig
    eval_starts: list[int]


@dataclass(frozen=True)
class TrainResult:
    """How a call to `train` ended."""

    run_dir: Path
    num_timesteps: int
    interrupted: bool
    last_eval: EvalResult | None


def prepare(cfg: TrainConfig) -> PreparedRun:
    """Check everything a run needs before any training starts or any file is written.

    Builds the training and validation envs (profile, trace files, the split) and, for
    ``tracking.mode=online``, checks that the W&B server answers.

    Args:
        cfg: The training config.

    Returns:
        The training and validation env configs and the validation windows' start seconds.

    Raises:
        ConfigError, ProfileError, TraceError: What is wrong, naming the key or file.
    """
    train_env, val_env = split_env_configs(cfg.env, cfg.eval)
    vec_env_kind(cfg, train_env)
    w = cfg.env.workload
    if cfg.split == "days":
        assert w.trace_path is not None
        split_by_day(load_trace(w.trace_path, w.damping), cfg.eval.train_days,
                     cfg.eval.val_days, day_s=cfg.eval.day_s)
    with penalty_replaced(cfg.agent):
        make_training_env(train_env, cfg.agent).close()  # the residual planner's checks
        val = PipelineEnv(val_env)
    starts = eval_window_starts(len(val.trace), w.window_s, cfg.env.interval_s,
                                cfg.run.n_eval_episodes)
    val.close()
    if cfg.tracking.mode == "online":
        check_wandb_reachable()
    return PreparedRun(train_env, val_env, starts)


def new_run_dir(cfg: TrainConfig, label: str | None = None) -> tuple[TrainConfig, Path]:
    """The config with its run name filled in, and its (not yet existing) run folder.

    Args:
        cfg: The config; ``run.name`` None becomes ``<label>-s<seed>-<date>-<time>``.
        label: Prefix of generated names (the config file's stem); None: the pipeline's.

    Returns:
        The config with ``run.name`` set, and ``run.output_dir / run.name``.

    Raises:
        ConfigError: The folder exists (resume it or choose another run.name).
    """
    label = label or Path(cfg.env.pipeline).stem
    name = cfg.run.name or f"{label}-s{cfg.run.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.run.output_dir) / name
    if run_dir.exists():
        raise ConfigError(f"run folder {run_dir} already exists; continue it with "
                          f"--resume {run_dir} or set another run.name")
    return with_run(cfg, name=name), run_dir


def git_commit() -> str:
    """``git rev-parse HEAD`` of the package's repository, or ``unknown``.

    Returns:
        The commit hash, or ``unknown`` without git or outside a repository.
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def make_model(cfg: TrainConfig, venv: VecNormalize, resume_from: Path | None) -> Any:
    """The PPO (or MaskablePPO) model: new from ``cfg.agent``, or a checkpoint's.

    Args:
        cfg: The training config.
        venv: The normalised training envs.
        resume_from: A checkpoint folder to load the model from, or None.

    Returns:
        The model, bound to ``venv``.

    Raises:
        ConfigError: The checkpoint's model cannot be loaded (names the fix).
    """
    a = cfg.agent
    if a.masked:
        from sb3_contrib import MaskablePPO as algo
    else:
        algo = PPO
    if resume_from is not None:
        return load_algo(algo, resume_from / "model.zip", CHECKPOINT_FIX, env=venv,
                         device=a.device)
    activation = torch.nn.Tanh if a.activation == "tanh" else torch.nn.ReLU
    arch = list(a.net_arch)
    return algo(
        "MlpPolicy", venv, learning_rate=a.learning_rate, n_steps=a.n_steps,
        batch_size=a.batch_size, n_epochs=a.n_epochs, gamma=a.gamma, gae_lambda=a.gae_lambda,
        clip_range=a.clip_range, ent_coef=a.ent_coef, vf_coef=a.vf_coef,
        max_grad_norm=a.max_grad_norm, target_kl=a.target_kl, seed=cfg.run.seed,
        device=a.device, verbose=0,
        policy_kwargs={"net_arch": {"pi": arch, "vf": arch}, "activation_fn": activation},
    )


def _write_run_files(cfg: TrainConfig, run_dir: Path, command: str, fresh: bool) -> str:
    import yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    with (run_dir / "command.txt").open("a") as f:
        f.write(command + "\n")
    commit_file = run_dir / "git_commit.txt"
    if fresh or not commit_file.is_file():
        commit_file.write_text(git_commit() + "\n")
    return commit_file.read_text().strip()


def train(cfg: TrainConfig, run_dir: Path, command: str, resume: bool = False,
          prepared: PreparedRun | None = None) -> TrainResult:
    """Train into ``run_dir``; on ``resume``, continue from its latest checkpoint.

    Args:
        cfg: The resolved config (run.name set).
        run_dir: The run folder (created for a fresh run).
        command: The command line, recorded in ``command.txt``.
        resume: Continue the run in ``run_dir`` (same VecNormalize stats, step counter).
        prepared: The result of `prepare` (computed here when None).

    Returns:
        How the run ended; ``interrupted`` when Ctrl-C stopped it (a checkpoint was saved).
    """
    prepared = prepared or prepare(cfg)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    state = read_state(checkpoint) if checkpoint is not None else {}
    start_step = int(state.get("num_timesteps", 0))
    if start_step >= cfg.run.total_timesteps:
        print(f"{run_dir} already reached {start_step} of {cfg.run.total_timesteps} steps; "
              "raise run.total_timesteps to train further", file=sys.stderr)
        return TrainResult(run_dir, start_step, False, None)
    if resume and checkpoint is None:
        print(f"{run_dir} has no checkpoint yet; starting it over", file=sys.stderr)
    commit = _write_run_files(cfg, run_dir, command, fresh=not resume)
    wandb_run = init_wandb(cfg, run_dir, {"git_commit": commit, "command": command})

    threads, validate = torch.get_num_threads(), torch.distributions.Distribution._validate_args
    try:
        torch.set_num_threads(cfg.run.torch_threads)
        # Argument checks of torch distributions cost more than the small MLP; same values.
        torch.distributions.Distribution.set_default_validate_args(False)
        with penalty_replaced(cfg.agent):
            return _train(cfg, run_dir, resume, prepared, checkpoint, state, wandb_run)
    finally:
        torch.set_num_threads(threads)
        torch.distributions.Distribution.set_default_validate_args(validate)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, prepared: PreparedRun,
           checkpoint: Path | None, state: dict[str, Any], wandb_run: Any | None
           ) -> TrainResult:
    start_step = int(state.get("num_timesteps", 0))
    set_random_seed(cfg.run.seed + start_step)
    venv = make_normalized_venv(cfg, prepared.train_env, cfg.run.seed + start_step, checkpoint)
    model = make_model(cfg, venv, checkpoint)
    heads = head_names(model.action_space.nvec, cfg.env.action_mode, cfg.agent.residual)
    log = MetricsLog(run_dir / "metrics.csv", wandb_run,
                     resume_step=start_step if resume else None,
                     extra_columns=head_columns(heads))
    model.set_logger(Logger(folder=None, output_formats=[LogWriter(log)]))
    progress = Progress(cfg.run.total_timesteps, start_step, cfg.run.progress_bar)
    lagrangian = make_lagrangian_callback(cfg.agent, venv, state)
    callback = TrainingCallback(
        run_dir, log, progress, partial(PipelineEnv, prepared.val_env), prepared.eval_starts,
        eval_seed=cfg.run.seed + 10_000, eval_freq=cfg.run.eval_freq,
        checkpoint_freq=cfg.run.checkpoint_freq, keep_checkpoints=cfg.run.keep_checkpoints,
        deterministic=cfg.eval.deterministic, masked=cfg.agent.masked, state=state,
        extra_state=lagrangian.state if lagrangian is not None else None,
        wrap_policy=(partial(_residual_policy, agent=cfg.agent) if cfg.agent.residual
                     else None),
        violation_budget=cfg.agent.violation_budget)
    # the multiplier is updated at a rollout's end, before the next rollout's checkpoint
    callbacks = CallbackList([c for c in (lagrangian, callback, HeadStatsCallback(heads))
                              if c is not None])
    if wandb_run is not None and resume:
        # A killed process loses what W&B had not flushed; replay it from metrics.csv.
        log.replay_to_wandb(after_step=read_wandb_state(run_dir).get("logged_until", 0))
    t0 = time.perf_counter()
    interrupted = completed = False
    try:
        try:
            model.learn(cfg.run.total_timesteps - start_step, callback=callbacks,
                        log_interval=1, reset_num_timesteps=False)
            interrupted = callback.stopped
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            if callback.collecting:
                # the partial rollout trained nothing: checkpoint at its start, so that --resume
                # plays the same rollouts (and steps) as an uninterrupted run
                model.num_timesteps = callback.rollout_start_step
            folder = callback.save_checkpoint()
            print(f"\ninterrupted at step {model.num_timesteps}; checkpoint saved to {folder}; "
                  f"continue with: python train.py --resume {run_dir}", file=sys.stderr)
        else:
            if callback.last_checkpoint_step != model.num_timesteps:
                callback.save_checkpoint()
            model.save(run_dir / "model.zip")
            venv.save(str(run_dir / "vecnormalize.pkl"))
            _write_summary(run_dir, model.num_timesteps, model.num_timesteps - start_step,
                           time.perf_counter() - t0, callback)
            completed = True
    finally:
        exit_code = 130 if interrupted else 0 if completed else 1
        progress.close()
        log.close()
        venv.close()
        callback.eval_env.close()
        if wandb_run is not None:
            wandb_run.finish(exit_code=exit_code)
            if exit_code != 1:
                write_wandb_state(run_dir, wandb_run.id, model.num_timesteps)
    return TrainResult(run_dir, model.num_timesteps, interrupted, callback.last_eval)


def _residual_policy(policy: Any, env: PipelineEnv, agent: AgentConfig) -> ResidualAgentPolicy:
    return ResidualAgentPolicy(env, policy, agent)


def _write_summary(run_dir: Path, num_timesteps: int, steps: int, wall_s: float,
                   callback: TrainingCallback) -> None:
    last = callback.last_eval
    summary = {
        "num_timesteps": num_timesteps,
        "steps_this_session": steps,
        "wall_s": round(wall_s, 3),
        "steps_per_s": round(steps / wall_s, 1) if wall_s > 0 else None,
        "best_eval_reward": callback.best_reward,
        "last_eval": last.metrics() if last is not None else None,
        **(callback.extra_state() if callback.extra_state is not None else {}),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
