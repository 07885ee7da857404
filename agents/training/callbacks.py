"""`TrainingCallback`: rollout metrics, validation and checkpoints during PPO training.

Metrics go to a `agents.training.metrics_log.MetricsLog`, progress to
`agents.training.progress.Progress`.
Everything happens at rollout
boundaries: evaluation and checkpoints run when a rollout starts, i.e. after the previous
PPO update, so a checkpoint holds exactly the parameters, VecNormalize statistics and step
counter that the next rollout starts from.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from agents.policies.trained import NormalizedPolicy
from agents.runs.checkpoints import (
    CHECKPOINT_PREFIX,
    save_model_files,
)
from agents.training.lagrangian import selection_key
from agents.training.metrics_log import MetricsLog
from agents.training.progress import Progress
from agents.training.stop import STOP_REQUESTED
from agents.training.validation import EvalResult, evaluate_windows

__all__ = ["TrainingCallback"]

class _RolloutStats:
    """Pools ``info["stats"]`` of the training envs over one rollout.

    A rollout interleaves several envs without episode boundaries, so ``charts/p99_ms`` is
    a training diagnostic, the mean of the intervals' p99s; every reported and validation
    p99 is `agents.evaluation.episode.episode_p99_ms`.
    """

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
        extra_state: More entries for each checkpoint's ``state.json`` (e.g.
            `agents.training.lagrangian.LagrangianCallback.state`), called at each save.
        wrap_policy: Turns the model's policy and the validation env into the policy that
            plays the validation windows (a residual agent's `ResidualAgentPolicy`); None:
            the model's policy plays them itself.
    """

    def __init__(self, run_dir: Path, log: MetricsLog, progress: Progress,
                 make_eval_env: Callable[[], Any], eval_starts: list[int], eval_seed: int,
                 eval_freq: int, checkpoint_freq: int, keep_checkpoints: int,
                 deterministic: bool = True, masked: bool = False,
                 state: Mapping[str, Any] | None = None,
                 extra_state: Callable[[], Mapping[str, Any]] | None = None,
                 wrap_policy: Callable[[Any, Any], Any] | None = None,
                 violation_budget: float | None = None) -> None:
        super().__init__(verbose=0)
        self.violation_budget = violation_budget
        self.wrap_policy = wrap_policy
        self.extra_state = extra_state
        self.run_dir, self.log, self.progress = run_dir, log, progress
        self.eval_env = make_eval_env()
        self.eval_starts, self.eval_seed = eval_starts, eval_seed
        self.eval_freq, self.checkpoint_freq = eval_freq, checkpoint_freq
        self.keep_checkpoints = keep_checkpoints
        self.deterministic, self.masked = deterministic, masked
        state = dict(state or {})
        self.best_reward = state.get("best_reward", -math.inf)
        self.best_key = tuple(state.get("best_key", (1.0, self.best_reward)))
        self.last_eval_step = state.get("last_eval_step", 0)
        self.last_checkpoint_step = state.get("last_checkpoint_step", 0)
        self.rollout_start_step = 0  # num_timesteps when the current rollout began
        self.collecting = False  # between rollout start and end (no update yet)
        self.stopped = False  # training ended at a stop request (agents.training.stop)
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
        self.stopped = STOP_REQUESTED.is_set()
        return not self.stopped

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
        """Play the current policy on the validation windows; log and keep the best.

        Returns:
            The validation result (also kept as ``last_eval``).
        """
        policy = NormalizedPolicy(self.model, self.model.get_vec_normalize_env(), self.masked)
        if self.wrap_policy is not None:
            policy = self.wrap_policy(policy, self.eval_env)
        result = evaluate_windows(policy, self.eval_env, self.eval_starts, self.eval_seed,
                                  self.deterministic, use_masks=self.masked)
        step = self.model.num_timesteps
        self.last_eval_step, self.last_eval = step, result
        self.log.log(step, result.metrics())
        self.progress.show_eval(
            f"eval R={result.mean_reward:.2f} SLA={100 * result.sla_violation_rate:.1f}% "
            f"P={result.power_w:.0f}W")
        key = selection_key(result.mean_reward, result.sla_violation_rate,
                            self.violation_budget)
        if key > self.best_key:
            self.best_key, self.best_reward = key, result.mean_reward
            save_model_files(self.model, self.run_dir / "best",
                             {"num_timesteps": step, **result.metrics()}, "eval.json")
        return result

    def state(self) -> dict[str, Any]:
        """What a resumed run needs besides the model and VecNormalize.

        Returns:
            The step counter, best validation reward and its selection key
            (`agents.training.lagrangian.selection_key`: a constrained run prefers results
            within its violation budget), last evaluation and checkpoint steps (and
            ``extra_state``'s entries), as saved in a checkpoint's ``state.json``.
        """
        extra = self.extra_state() if self.extra_state is not None else {}
        return {"num_timesteps": self.model.num_timesteps, "best_reward": self.best_reward,
                "best_key": list(self.best_key),
                "last_eval_step": self.last_eval_step,
                "last_checkpoint_step": self.model.num_timesteps, **extra}

    def save_checkpoint(self) -> Path:
        """Save model, VecNormalize and step counter under ``checkpoints/``; prune old ones.

        Returns:
            The checkpoint folder written.
        """
        step = self.model.num_timesteps
        folder = self.run_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{step:010d}"
        save_model_files(self.model, folder, self.state())
        self.last_checkpoint_step = step
        done = sorted(p for p in folder.parent.glob(f"{CHECKPOINT_PREFIX}*")
                      if (p / "state.json").is_file())
        for old in done[: -self.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return folder
