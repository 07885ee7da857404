"""Training-time bookkeeping: metrics (CSV, W&B, progress bar), evaluation and checkpoints.

Metric names are grouped: ``charts/`` (training episodes and domain metrics of the rollout),
``losses/`` (PPO update), ``eval/`` (validation windows). Everything happens at rollout
boundaries: evaluation and checkpoints run when a rollout starts, i.e. after the previous
PPO update, so a checkpoint holds exactly the parameters, VecNormalize statistics and step
counter that the next rollout starts from.
"""

from __future__ import annotations

import csv
import math
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from agents.checkpoints import (
    CHECKPOINT_PREFIX,
    latest_checkpoint,
    read_state,
    save_model_files,
)
from agents.episode import EvalResult, evaluate_windows
from agents.policy import NormalizedPolicy

__all__ = [
    "CSV_COLUMNS",
    "MetricsLog",
    "Progress",
    "TrainingCallback",
    "latest_checkpoint",
    "read_state",
]

CSV_COLUMNS: tuple[str, ...] = (
    "step",
    "charts/episode_reward", "charts/episode_length", "charts/sla_violation_rate",
    "charts/energy_j", "charts/power_w", "charts/accuracy", "charts/cores", "charts/p99_ms",
    "charts/energy_estimated", "charts/steps_per_s", "charts/learning_rate",
    "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl",
    "losses/clip_fraction", "losses/explained_variance", "losses/loss",
    "eval/mean_reward", "eval/std_reward", "eval/sla_violation_rate", "eval/energy_j",
    "eval/power_w", "eval/accuracy", "eval/cores", "eval/p99_ms", "eval/energy_estimated",
)
"""Columns of ``metrics.csv``; every W&B metric with these names, keyed by env step."""

_SB3_NAMES = {
    "rollout/ep_rew_mean": "charts/episode_reward",
    "rollout/ep_len_mean": "charts/episode_length",
    "time/fps": "charts/steps_per_s",
    "train/learning_rate": "charts/learning_rate",
    "train/policy_gradient_loss": "losses/policy_loss",
    "train/value_loss": "losses/value_loss",
    "train/entropy_loss": "losses/entropy",
    "train/approx_kl": "losses/approx_kl",
    "train/clip_fraction": "losses/clip_fraction",
    "train/explained_variance": "losses/explained_variance",
    "train/loss": "losses/loss",
    "train/n_updates": "losses/n_updates",
}


class Progress:
    """A rich progress bar on stderr: steps, steps/s, ETA and the latest evaluation."""

    def __init__(self, total: int, start: int, enabled: bool = True) -> None:
        self._bar = None
        self._task = None
        self._last = 0.0
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} steps/s"), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[eval]}"),
            console=Console(stderr=True), refresh_per_second=4,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=start, rate="-",
                                        eval="")
        self._t0, self._s0 = time.monotonic(), start

    def update(self, step: int, force: bool = False) -> None:
        """Move the bar to ``step`` (throttled to a few updates a second)."""
        if self._bar is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        rate = (step - self._s0) / max(now - self._t0, 1e-9)
        self._bar.update(self._task, completed=step, rate=f"{rate:,.0f}")

    def show_eval(self, text: str) -> None:
        """Show the latest evaluation next to the bar."""
        if self._bar is not None:
            self._bar.update(self._task, eval=text)

    def close(self) -> None:
        """Stop redrawing (the last state stays on screen)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class MetricsLog:
    """Writes metric rows to ``metrics.csv`` (flushed per row) and to a W&B run.

    Args:
        csv_path: The CSV file; on resume, rows after ``resume_step`` are dropped first
            (they belong to the part of the killed run that the checkpoint lost).
        wandb_run: A ``wandb`` run, or None when tracking is disabled.
        resume_step: The checkpoint step a resumed run starts from (None: a fresh run).
    """

    def __init__(self, csv_path: Path, wandb_run: Any | None = None,
                 resume_step: int | None = None) -> None:
        self.wandb_run = wandb_run
        if resume_step is not None and csv_path.is_file():
            with csv_path.open(newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
            with csv_path.open("w", newline="") as f:
                writer = csv.DictWriter(f, CSV_COLUMNS)
                writer.writeheader()
                writer.writerows(kept)
        fresh = not csv_path.is_file()
        self._file = csv_path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, CSV_COLUMNS, extrasaction="ignore")
        if fresh:
            self._csv.writeheader()
            self._file.flush()
        if wandb_run is not None:
            wandb_run.define_metric("global_step")
            wandb_run.define_metric("*", step_metric="global_step")

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write one row at env step ``step``."""
        row = {k: _fmt(v) for k, v in metrics.items()}
        row["step"] = str(step)
        self._csv.writerow(row)
        self._file.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({"global_step": step, **metrics})

    def replay_to_wandb(self, after_step: int) -> int:
        """Send the CSV rows after ``after_step`` to W&B again; returns how many."""
        if self.wandb_run is None:
            return 0
        self._file.flush()
        with open(self._file.name, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) > after_step]
        for row in rows:
            metrics = {k: float(v) for k, v in row.items() if k != "step" and v}
            self.wandb_run.log({"global_step": int(row["step"]), **metrics})
        return len(rows)

    def close(self) -> None:
        """Close the CSV file (the W&B run is finished by its owner)."""
        self._file.close()


def _fmt(value: float) -> str:
    value = float(value)
    return "" if math.isnan(value) else repr(value)


class LogWriter(KVWriter):
    """Forwards stable-baselines3's logger dumps to a `MetricsLog` under grouped names."""

    def __init__(self, log: MetricsLog) -> None:
        self.log = log

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any],
              step: int = 0) -> None:
        metrics = {}
        for key, value in key_values.items():
            name = _SB3_NAMES.get(key, key if key.startswith(("charts/", "losses/")) else None)
            if name is None or isinstance(value, str):
                continue
            try:  # sb3 records Python, NumPy scalar and 0-d array values
                metrics[name] = float(value)
            except (TypeError, ValueError):
                continue
        self.log.log(int(key_values.get("time/total_timesteps", step)), metrics)

    def close(self) -> None:
        """Nothing to close; the `MetricsLog` belongs to the trainer."""


class _RolloutStats:
    """Pools ``info["stats"]`` of the training envs over one rollout."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = self.arrived = self.violations = self.p99_n = 0
        self.seconds = self.energy_j = self.accuracy = self.cores = self.p99 = 0.0
        self.estimated = False

    def add(self, info: Mapping[str, Any]) -> None:
        stats = info["stats"]
        self.n += 1
        self.arrived += stats.arrived
        self.violations += stats.sla_violations
        self.seconds += stats.seconds
        self.energy_j += stats.energy_j
        self.accuracy += info["reward_terms"]["accuracy"]
        self.cores += stats.cores
        self.estimated |= bool(stats.energy_estimated)
        if not math.isnan(stats.p99_ms):
            self.p99 += stats.p99_ms
            self.p99_n += 1

    def metrics(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {
            "charts/sla_violation_rate": self.violations / self.arrived if self.arrived else 0.0,
            "charts/energy_j": self.energy_j / n,
            "charts/power_w": self.energy_j / self.seconds if self.seconds else 0.0,
            "charts/accuracy": self.accuracy / n,
            "charts/cores": self.cores / n,
            "charts/p99_ms": self.p99 / self.p99_n if self.p99_n else math.nan,
            "charts/energy_estimated": float(self.estimated),
        }


class TrainingCallback(BaseCallback):
    """Evaluation on validation windows, checkpoints, best model, domain metrics, progress.

    Args:
        run_dir: The run folder (``checkpoints/`` and ``best/`` go inside).
        log: Where metric rows go.
        progress: The progress bar.
        make_eval_env: Builds the validation `PipelineEnv` (called once).
        eval_starts: Window starts of the validation episodes.
        eval_seed: Seed of the first validation episode.
        eval_freq: Env steps between evaluations.
        checkpoint_freq: Env steps between checkpoints.
        keep_checkpoints: How many checkpoints to keep.
        deterministic: Evaluate greedily.
        masked: The model is MaskablePPO (pass action masks).
        state: Bookkeeping restored from a checkpoint (``best_reward``, ``last_eval_step``,
            ``last_checkpoint_step``).
    """

    def __init__(self, run_dir: Path, log: MetricsLog, progress: Progress,
                 make_eval_env: Callable[[], Any], eval_starts: list[int], eval_seed: int,
                 eval_freq: int, checkpoint_freq: int, keep_checkpoints: int,
                 deterministic: bool = True, masked: bool = False,
                 state: Mapping[str, Any] | None = None) -> None:
        super().__init__(verbose=0)
        self.run_dir, self.log, self.progress = run_dir, log, progress
        self.eval_env = make_eval_env()
        self.eval_starts, self.eval_seed = eval_starts, eval_seed
        self.eval_freq, self.checkpoint_freq = eval_freq, checkpoint_freq
        self.keep_checkpoints = keep_checkpoints
        self.deterministic, self.masked = deterministic, masked
        state = dict(state or {})
        self.best_reward = state.get("best_reward", -math.inf)
        self.last_eval_step = state.get("last_eval_step", 0)
        self.last_checkpoint_step = state.get("last_checkpoint_step", 0)
        self.rollout_start_step = 0  # num_timesteps when the current rollout began
        self.collecting = False  # between rollout start and end (no update yet)
        self.last_eval: EvalResult | None = None
        self._rollout = _RolloutStats()

    # -- sb3 hooks -------------------------------------------------------------------------
    def _on_rollout_start(self) -> None:
        step = self.model.num_timesteps
        self.rollout_start_step, self.collecting = step, True
        if step // self.eval_freq > self.last_eval_step // self.eval_freq:
            self.evaluate()
        if step // self.checkpoint_freq > self.last_checkpoint_step // self.checkpoint_freq:
            self.save_checkpoint()
        self._rollout.reset()

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            self._rollout.add(info)
        self.progress.update(self.model.num_timesteps)
        return True

    def _on_rollout_end(self) -> None:
        self.collecting = False
        for key, value in self._rollout.metrics().items():
            self.logger.record(key, value)

    def _on_training_end(self) -> None:
        self.progress.update(self.model.num_timesteps, force=True)
        if self.last_eval_step != self.model.num_timesteps:
            self.evaluate()

    # -- work ------------------------------------------------------------------------------
    def evaluate(self) -> EvalResult:
        """Play the current policy on the validation windows; log and keep the best."""
        policy = NormalizedPolicy(self.model, self.model.get_vec_normalize_env(), self.masked)
        result = evaluate_windows(policy, self.eval_env, self.eval_starts, self.eval_seed,
                                  self.deterministic, use_masks=self.masked)
        step = self.model.num_timesteps
        self.last_eval_step, self.last_eval = step, result
        self.log.log(step, result.metrics())
        self.progress.show_eval(
            f"eval R={result.mean_reward:.2f} SLA={100 * result.sla_violation_rate:.1f}% "
            f"P={result.power_w:.0f}W")
        if result.mean_reward > self.best_reward:
            self.best_reward = result.mean_reward
            save_model_files(self.model, self.run_dir / "best",
                             {"num_timesteps": step, **result.metrics()}, "eval.json")
        return result

    def state(self) -> dict[str, Any]:
        """What a resumed run needs besides the model and VecNormalize."""
        return {"num_timesteps": self.model.num_timesteps, "best_reward": self.best_reward,
                "last_eval_step": self.last_eval_step,
                "last_checkpoint_step": self.model.num_timesteps}

    def save_checkpoint(self) -> Path:
        """Save model, VecNormalize and step counter under ``checkpoints/``; prune old ones."""
        step = self.model.num_timesteps
        folder = self.run_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{step:010d}"
        save_model_files(self.model, folder, self.state())
        self.last_checkpoint_step = step
        done = sorted(p for p in folder.parent.glob(f"{CHECKPOINT_PREFIX}*")
                      if (p / "state.json").is_file())
        for old in done[: -self.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return folder
