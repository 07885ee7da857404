"""A run's metrics: ``metrics.csv`` and the W&B run, fed by stable-baselines3's logger.

Metric names are grouped: ``charts/`` (training episodes and domain metrics of the rollout),
``losses/`` (PPO update), ``heads/`` (the rollout policy's entropy per action head,
`agents.training.head_stats`), ``eval/`` (validation windows).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import KVWriter

__all__ = ["CSV_COLUMNS", "LogWriter", "MetricsLog"]

CSV_COLUMNS: tuple[str, ...] = (
    "step",
    "charts/episode_reward", "charts/episode_length", "charts/sla_violation_rate",
    "charts/energy_j", "charts/power_w", "charts/accuracy", "charts/cores", "charts/p99_ms",
    "charts/energy_estimated", "charts/steps_per_s", "charts/learning_rate",
    "charts/lagrange_multiplier", "charts/constraint_violation_rate",
    "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl",
    "losses/clip_fraction", "losses/explained_variance", "losses/loss",
    "eval/mean_reward", "eval/std_reward", "eval/sla_violation_rate", "eval/energy_j",
    "eval/power_w", "eval/accuracy", "eval/cores", "eval/p99_ms", "eval/energy_estimated",
)
"""Columns of ``metrics.csv``; every W&B metric with these names, keyed by env step.
``charts/p99_ms`` is the mean of a rollout's interval p99s (a diagnostic); ``eval/p99_ms``
is `agents.evaluation.episode.episode_p99_ms` averaged over the validation windows.
``charts/lagrange_multiplier`` and ``charts/constraint_violation_rate`` are written by
constrained runs only (`agents.training.lagrangian`); empty otherwise. The losses of the
update after rollout k (``losses/explained_variance`` included) are dumped in rollout k+1's
row, as sb3 dumps before it trains; the last update's are not written. A run adds its
``heads/`` columns (`agents.training.head_stats.head_columns`) after these."""

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

_OWN_GROUPS = ("charts/", "losses/", "heads/")  # recorded under their final names


class MetricsLog:
    """Writes metric rows to ``metrics.csv`` (flushed per row) and to a W&B run.

    Args:
        csv_path: The CSV file; on resume, rows after ``resume_step`` are dropped first
            (they belong to the part of the killed run that the checkpoint lost).
        wandb_run: A ``wandb`` run, or None when tracking is disabled.
        resume_step: The checkpoint step a resumed run starts from (None: a fresh run).
        extra_columns: Columns after `CSV_COLUMNS` (the run's ``heads/`` columns).
    """

    def __init__(self, csv_path: Path, wandb_run: Any | None = None,
                 resume_step: int | None = None, extra_columns: Sequence[str] = ()) -> None:
        self.wandb_run = wandb_run
        columns = [*CSV_COLUMNS, *extra_columns]
        if resume_step is not None and csv_path.is_file():
            with csv_path.open(newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
            with csv_path.open("w", newline="") as f:
                writer = csv.DictWriter(f, columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)
        fresh = not csv_path.is_file()
        self._file = csv_path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, columns, extrasaction="ignore")
        if fresh:
            self._csv.writeheader()
            self._file.flush()
        if wandb_run is not None:
            wandb_run.define_metric("global_step")
            wandb_run.define_metric("*", step_metric="global_step")

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write one row at env step ``step``.

        Args:
            step: The env step the metrics belong to.
            metrics: Metric name to value (NaN written as an empty cell).
        """
        row = {k: _fmt(v) for k, v in metrics.items()}
        row["step"] = str(step)
        self._csv.writerow(row)
        self._file.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({"global_step": step, **metrics})

    def replay_to_wandb(self, after_step: int) -> int:
        """Send the CSV rows after ``after_step`` to W&B again; returns how many.

        Args:
            after_step: The last env step W&B already holds.

        Returns:
            The number of rows sent (0 without a W&B run).
        """
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
        """Forward to ``log``.

        Args:
            log: The run's `MetricsLog`.
        """
        self.log = log

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any],
              step: int = 0) -> None:
        """Log sb3's recorded values under their grouped names (others are dropped).

        Args:
            key_values: sb3's recorded name to value.
            key_excluded: sb3's per-key output exclusions (ignored).
            step: sb3's step, used when ``time/total_timesteps`` is not recorded.
        """
        metrics = {}
        for key, value in key_values.items():
            name = _SB3_NAMES.get(key, key if key.startswith(_OWN_GROUPS) else None)
            if name is None or isinstance(value, str):
                continue
            try:  # sb3 records Python, NumPy scalar and 0-d array values
                metrics[name] = float(value)
            except (TypeError, ValueError):
                continue
        self.log.log(int(key_values.get("time/total_timesteps", step)), metrics)

    def close(self) -> None:
        """Nothing to close; the `MetricsLog` belongs to the trainer."""
