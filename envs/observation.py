"""The observation of `envs.pipeline_env.PipelineEnv`: its layout, the history a policy
sees, and the vector built from them.

The vector (``h = history_intervals``, ``n`` stages, ``f`` fields per stage: 10 in version 1,
12 in version 2, ``P`` device pools) is ``Box(0, 10, (h + 2 + f n + 4 [+ 2 P],), float32)``;
every value is clipped to [0, 10]; rates are divided by the fixed ``rate_scale_rps``
(config, saved with an agent):

==================  ===============================================================
index               value
==================  ===============================================================
0 .. h-1            mean arrival rate of each of the last ``h`` intervals (oldest
                    first; 0 before the history starts) / rate_scale_rps
h                   maximum per-second rate of the last interval / rate_scale_rps
h+1                 the predictor's forecast for the next interval / rate_scale_rps
h+2+fs+0            variant index / (variants - 1)
h+2+fs+1            index of the batch size / (number of batch sizes - 1)
h+2+fs+2            replicas / max_replicas
h+2+fs+3            stage capacity (req/s, `perf.stage_throughput_rps`) / rate_scale
h+2+fs+4            utilisation of the serving replicas, [0, 1]
h+2+fs+5            requests queued at the stage / (rate_scale x interval_s)
h+2+fs+6            requests dropped at the stage / arrivals of the interval
h+2+fs+7            allocated cores or GPUs / the largest decision's (all stages)
h+2+fs+8            IPA's rank accuracy of the variant, [0, 1]
h+2+fs+9            the stage's p99 latency / SLA
h+2+fs+10 (v2)      replicas allocated that do not serve yet (cold start, weights
                    loading, or waiting for a node's boot) / max_replicas
h+2+fs+11 (v2)      age of the oldest request queued at the stage / SLA
                    (`envs.backends.queue_age`)
h+2+fn+0            end-to-end p99 latency / SLA
h+2+fn+1            SLA violation rate of the last interval, [0, 1]
h+2+fn+2            power (W) / the largest decision's power (`RewardScales`)
h+2+fn+3            mean rank accuracy of the decision, [0, 1]
h+2+fn+4+2p (v2)    nodes of pool ``p`` booting / the pool's nodes
h+2+fn+5+2p (v2)    nodes of pool ``p`` powered (booting, serving or held) / its nodes
==================  ===============================================================

Before the first step the per-interval fields (utilisation, queue, drops, the p99s,
violation rate, power, accuracy, and version 2's fields) are 0; so are version 2's fields
on a backend that cannot tell them (the live one).

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
"""Per-stage fields of observation version 1."""
STAGE_FIELDS_V2 = (*STAGE_FIELDS, "loading", "oldest_wait")
"""Per-stage fields of version 2: version 1's, then replicas that do not serve yet and the
oldest queued request's age."""
POOL_FIELDS = ("booting", "powered")
"""Per-pool fields of version 2: nodes booting and nodes powered."""


@dataclass(frozen=True)
class ObsLayout:
    """Where each quantity sits in the observation vector (and its scale).

    Attributes:
        history_intervals: Past intervals whose mean rate is shown.
        n_stages: Stages of the pipeline.
        rate_scale: Divides every rate.
        version: 1 (`STAGE_FIELDS`) or 2 (`STAGE_FIELDS_V2` and `POOL_FIELDS`).
        n_pools: Device pools of the fleet (read by version 2).
    """

    history_intervals: int
    n_stages: int
    rate_scale: float
    version: int = 2
    n_pools: int = 1

    @property
    def stage_fields(self) -> tuple[str, ...]:
        """The per-stage fields of this version."""
        return STAGE_FIELDS if self.version == 1 else STAGE_FIELDS_V2

    @property
    def pool_start(self) -> int:
        """Index of the first per-pool value (version 2; the vector's end for version 1)."""
        return self.history_intervals + 2 + len(self.stage_fields) * self.n_stages + 4

    @property
    def size(self) -> int:
        """Length of the observation vector."""
        pools = len(POOL_FIELDS) * self.n_pools if self.version >= 2 else 0
        return self.pool_start + pools

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
            `stage_fields` name -> value.
        """
        fields = self.stage_fields
        pos = self.history_intervals + 2 + len(fields) * i
        return dict(zip(fields, obs[pos: pos + len(fields)].tolist(), strict=True))

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
    v2 = layout.version >= 2
    width = len(layout.stage_fields)
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
        if v2 and stats is not None and stats.stage_loading:
            obs[pos + len(STAGE_FIELDS)] = stats.stage_loading[i] / max_replicas
        if v2 and stats is not None and stats.stage_oldest_wait_s:
            obs[pos + len(STAGE_FIELDS) + 1] = stats.stage_oldest_wait_s[i] * 1e3 / pipeline.sla_ms
        pos += width
    if stats is not None:
        p99 = stats.p99_ms if not math.isnan(stats.p99_ms) else 0.0
        obs[pos: pos + 4] = (p99 / pipeline.sla_ms, stats.sla_violation_rate,
                             stats.power_w / scales.max_power_w,
                             stats.accuracy_rank_sum / len(pipeline.stages))
        if v2 and stats.pool_powered:
            nodes = [pool.nodes for pool in pipeline.fleet.pools]
            obs[pos + 4: pos + 4 + 2 * len(nodes)] = [
                x / n for b, p, n in zip(stats.pool_booting, stats.pool_powered, nodes,
                                         strict=True) for x in (b, p)]
    np.clip(obs, 0.0, OBS_CLIP, out=obs)
    return obs
