"""The observation of `envs.pipeline_env.PipelineEnv`: its layout, the history a policy
sees, and the vector built from them (the table is in `PipelineEnv`'s docstring).

The batched env (`envs.batched`) builds the same vector for many envs at once from the same
layout constants and `history_bounds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.backends.base import IntervalStats
from envs.model import perf
from envs.model.spec import Decision, Pipeline
from envs.reward import RewardScales

OBS_CLIP = 10.0
PREDICTOR_HISTORY_S = 600

STAGE_FIELDS = ("variant", "batch", "replicas", "capacity", "utilisation", "queue", "drops",
                "cores", "accuracy_rank", "p99")


@dataclass(frozen=True)
class ObsLayout:
    """Where each quantity sits in the observation vector (and its scale)."""

    history_intervals: int
    n_stages: int
    rate_scale: float

    @property
    def size(self) -> int:
        """Length of the observation vector."""
        return self.history_intervals + 2 + len(STAGE_FIELDS) * self.n_stages + 4

    def forecast_rps(self, obs: np.ndarray) -> float:
        """The predictor's forecast, read back from an observation.

        Args:
            obs: An observation of this layout.

        Returns:
            The forecast, requests per second.
        """
        return float(obs[self.history_intervals + 1]) * self.rate_scale

    def last_rate_rps(self, obs: np.ndarray) -> float:
        """The mean arrival rate of the last interval, read back from an observation.

        Args:
            obs: An observation of this layout.

        Returns:
            The rate, requests per second.
        """
        return float(obs[self.history_intervals - 1]) * self.rate_scale

    def stage(self, obs: np.ndarray, i: int) -> dict[str, float]:
        """Stage ``i``'s normalised fields (see `PipelineEnv`'s observation table).

        Args:
            obs: An observation of this layout.
            i: Stage index.

        Returns:
            `STAGE_FIELDS` name -> value.
        """
        pos = self.history_intervals + 2 + len(STAGE_FIELDS) * i
        return dict(zip(STAGE_FIELDS, obs[pos: pos + len(STAGE_FIELDS)].tolist(), strict=True))

    def queue_rps(self, obs: np.ndarray, i: int) -> float:
        """Stage ``i``'s queue at the interval's end, read back as the rate (requests/s)
        that clears it within one interval (the observation holds it divided by the rate
        scale and the interval).

        Args:
            obs: An observation of this layout.
            i: Stage index.

        Returns:
            Queued requests / interval_s.
        """
        return self.stage(obs, i)["queue"] * self.rate_scale


def history_bounds(warmup_s: int, window_start: int, played_s: Any) -> tuple[Any, Any]:
    """Where the history a policy sees lies in the warm-up + trace series.

    The one definition `PipelineEnv.history` and the batched env share: the
    `PREDICTOR_HISTORY_S` seconds before the window (warm-up history first), then the
    window's played seconds. Works elementwise on integer arrays too.

    Args:
        warmup_s: Length of the warm-up history that precedes the trace.
        window_start: The window's first second in the trace.
        played_s: Seconds of the window played so far.

    Returns:
        ``(begin, end)`` indices into the series (``end`` exclusive).
    """
    now = warmup_s + window_start
    return np.maximum(0, now - PREDICTOR_HISTORY_S), now + played_s


def observation(layout: ObsLayout, seen: np.ndarray, forecast_rps: float, *,
                pipeline: Pipeline, decision: Decision, stats: IntervalStats | None,
                interval_s: int, max_replicas: int, scales: RewardScales) -> np.ndarray:
    """The observation vector (`PipelineEnv`'s observation table), clipped to [0, OBS_CLIP].

    Args:
        layout: The vector's layout.
        seen: Per-second rates seen so far (`PipelineEnv.history`).
        forecast_rps: The predictor's forecast for the next interval.
        pipeline: The pipeline.
        decision: The decision in force.
        stats: The last interval's statistics (None before the first step: those fields
            are 0).
        interval_s: Seconds per interval.
        max_replicas: Largest replica count per stage.
        scales: Largest cores and power, for normalisation.

    Returns:
        A float32 vector of ``layout.size`` values.
    """
    h = layout.history_intervals
    obs = np.zeros(layout.size, dtype=np.float32)
    if len(seen):
        tail = seen[-h * interval_s:]
        means = np.zeros(h)
        n_full = len(tail) // interval_s
        if n_full:
            means[h - n_full:] = tail[len(tail) - n_full * interval_s:].reshape(
                n_full, interval_s).mean(axis=1)
        obs[:h] = means / layout.rate_scale
        obs[h] = seen[-interval_s:].max() / layout.rate_scale
    obs[h + 1] = forecast_rps / layout.rate_scale
    pos = h + 2
    for i, (stage, c) in enumerate(zip(pipeline.stages, decision.stages, strict=True)):
        stage_p99 = stats.stage_p99_ms[i] if stats else 0.0
        obs[pos: pos + len(STAGE_FIELDS)] = (
            c.variant / max(len(stage.variants) - 1, 1),
            stage.batch_sizes.index(c.batch) / max(len(stage.batch_sizes) - 1, 1),
            c.replicas / max_replicas,
            perf.stage_throughput_rps(stage.variants[c.variant], c.batch, c.cores,
                                      c.replicas) / layout.rate_scale,
            stats.stage_utilisation[i] if stats else 0.0,
            stats.stage_queue[i] / (layout.rate_scale * interval_s) if stats else 0.0,
            stats.stage_dropped[i] / max(stats.arrived, 1) if stats else 0.0,
            perf.stage_cores(c) / scales.max_cores,
            stage.accuracy_ranks[c.variant],
            0.0 if math.isnan(stage_p99) else stage_p99 / pipeline.sla_ms,
        )
        pos += len(STAGE_FIELDS)
    if stats is not None:
        p99 = stats.p99_ms if not math.isnan(stats.p99_ms) else 0.0
        obs[pos: pos + 4] = (p99 / pipeline.sla_ms, stats.sla_violation_rate,
                             stats.power_w / scales.max_power_w,
                             stats.accuracy_rank_sum / len(pipeline.stages))
    np.clip(obs, 0.0, OBS_CLIP, out=obs)
    return obs
