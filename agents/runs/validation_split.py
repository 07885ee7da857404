"""A training run's validation data, kept apart from its training data: the split of the
workload (``eval.split``: seed, days or range) and the validation windows' starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from envs.config.checks import check_range
from envs.config.errors import ConfigError
from envs.env_config import EnvConfig

__all__ = ["ValidationConfig", "eval_window_starts", "resolved_split", "split_env_configs"]


@dataclass(frozen=True)
class ValidationConfig:
    """Which workload the validation env sees, kept apart from the training workload.

    Attributes:
        split: ``seed``: a synthetic trace generated with ``eval.seed`` (training uses
            ``env.workload.seed``); ``days``: a trace cut into training days then validation
            days (`envs.workload.day_split.split_by_day`); ``range``: validation on trace seconds
            [``eval.start_s``, ``eval.end_s``), training on ``env.workload.start_s/end_s``,
            which must not overlap; ``auto``: ``seed`` for synthetic, ``days`` for traces.
        seed: Seed of the synthetic validation trace.
        train_days: Days of the trace used for training (split ``days``).
        val_days: Days after those used for validation (split ``days``).
        day_s: Seconds per day (smaller for short test traces).
        start_s: First validation second (split ``range``).
        end_s: One past the last validation second (split ``range``).
        deterministic: Evaluate the greedy policy (no action sampling).
    """

    split: Literal["auto", "seed", "days", "range"] = "auto"
    seed: int = 10_000
    train_days: int = 1
    val_days: int = 1
    day_s: int = 86_400
    start_s: int | None = None
    end_s: int | None = None
    deterministic: bool = True

    def __post_init__(self) -> None:
        for name in ("train_days", "val_days", "day_s"):
            check_range(name, getattr(self, name), low=1)
        check_range("seed", self.seed, low=0, fix="NumPy seeds are non-negative")
        check_range("start_s", self.start_s, low=0, unit="s")


def resolved_split(env: EnvConfig, validation: ValidationConfig
                   ) -> Literal["seed", "days", "range"]:
    """The validation split in force: ``auto`` is ``seed`` for synthetic workloads and
    ``days`` for traces.

    Args:
        env: The training env's config.
        validation: The ``eval:`` section.

    Returns:
        ``seed``, ``days`` or ``range``.
    """
    if validation.split != "auto":
        return validation.split
    return "seed" if env.workload.source == "synthetic" else "days"


def split_env_configs(env: EnvConfig, validation: ValidationConfig
                      ) -> tuple[EnvConfig, EnvConfig]:
    """The training and validation env configs of the split (see `ValidationConfig`).

    Args:
        env: The training run's env config.
        validation: Its ``eval:`` section.

    Returns:
        ``(training env config, validation env config)``.

    Raises:
        ConfigError: The split does not fit the workload source, or the training and
            validation data would overlap.
    """
    w, e = env.workload, validation
    split = resolved_split(env, validation)
    synthetic = w.source == "synthetic"
    if split == "seed":
        if not synthetic:
            raise ConfigError("eval.split 'seed' needs env.workload.source=synthetic; use "
                              "'days' or 'range' for traces")
        if e.seed == w.seed:
            raise ConfigError(f"eval.seed equals env.workload.seed ({w.seed}): validation would "
                              "replay the training trace; choose another eval.seed")
        return env, env.with_workload(seed=e.seed)
    if synthetic:
        raise ConfigError(f"eval.split {split!r} needs env.workload.source=trace; use 'seed' "
                          "(or 'auto') for synthetic workloads")
    if split == "days":
        if w.start_s is not None or w.end_s is not None:
            raise ConfigError("eval.split 'days' cuts the whole trace into days; unset "
                              "env.workload.start_s/end_s or use eval.split=range")
        train_end = e.train_days * e.day_s
        val_end = train_end + e.val_days * e.day_s
        return (env.with_workload(start_s=0, end_s=train_end),
                env.with_workload(start_s=train_end, end_s=val_end))
    if e.start_s is None or e.end_s is None:
        raise ConfigError("eval.split 'range' needs eval.start_s and eval.end_s")
    if e.end_s <= e.start_s:
        raise ConfigError(f"eval.end_s ({e.end_s}) must be greater than eval.start_s "
                          f"({e.start_s})")
    train_start = w.start_s or 0
    train_end = w.end_s if w.end_s is not None else float("inf")
    if train_start < e.end_s and e.start_s < train_end:
        raise ConfigError(
            f"training seconds [{train_start}, {train_end}) overlap validation seconds "
            f"[{e.start_s}, {e.end_s}); set env.workload.start_s/end_s to a disjoint range")
    return env, env.with_workload(start_s=e.start_s, end_s=e.end_s)


def eval_window_starts(trace_len_s: int, window_s: int, interval_s: int, n: int) -> list[int]:
    """``n`` window starts spread evenly over a validation trace, on interval boundaries.

    The same starts are used at every evaluation, so evaluations are comparable.

    Args:
        trace_len_s: Seconds of the validation trace.
        window_s: Seconds per window.
        interval_s: The adaptation interval (starts fall on its boundaries).
        n: How many windows.

    Returns:
        The start seconds.

    Raises:
        ConfigError: The trace is shorter than one window.
    """
    slots = (trace_len_s - window_s) // interval_s + 1
    if slots < 1:
        raise ConfigError(f"the validation workload ({trace_len_s} s) is shorter than one "
                          f"window ({window_s} s)")
    if n == 1:
        return [0]
    return [round(i * (slots - 1) / (n - 1)) * interval_s for i in range(n)]
