"""`PipelineEnv`'s observation of N envs in array form, and their reactive forecasts."""

from __future__ import annotations

import numpy as np

from envs.batched.batch_stats import BatchStats
from envs.batched.tables import Tables
from envs.observation import OBS_CLIP, STAGE_FIELDS, history_bounds
from envs.pipeline_env import PipelineEnv


class BatchedObservation:
    """The observation of every env, from per-interval rate tables built once.

    Args:
        env: The template env (its layout, scales, trace with warm-up, config).
        tables: The pipeline's per-configuration tables.
    """

    def __init__(self, env: PipelineEnv, tables: Tables) -> None:
        self.env, self.layout, self.tables = env, env.layout, tables
        self.interval = interval = env.config.interval_s
        # The observation's chunks end at "now" (warm-up + window start + played, a
        # multiple of interval_s past the warm-up's end): cut the series into intervals
        # aligned so, dropping the warm-up's first ``warmup % interval`` seconds (never a
        # full chunk of any history). A history shorter than one interval but not empty
        # cannot occur: PipelineEnv requires warmup_s = 0 or >= the reactive window.
        self.warmup_s = len(env.warmup)
        self.offset = self.warmup_s % interval
        series = env.series[self.offset:]
        chunks = len(series) // interval
        blocks = series[: chunks * interval].reshape(chunks, interval)
        self.history, self.last_max = self._history_table(
            blocks.mean(axis=1), blocks.max(axis=1))

    def _history_table(self, chunk_mean: np.ndarray, chunk_max: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The observation's rate part and the reactive forecast for every (intervals
        seen up to now, full intervals shown): `PipelineEnv._observation`'s first
        ``history_intervals + 2`` values, from per-interval means and maxima."""
        h, scale = self.layout.history_intervals, self.layout.rate_scale
        end = np.arange(len(chunk_mean) + 1)[:, None, None]
        shown = np.arange(h + 1)[None, :, None]
        chunk = end - h + np.arange(h)
        valid = (np.arange(h) >= h - shown) & (chunk >= 0)
        means = np.where(valid, chunk_mean[np.clip(chunk, 0, None)], 0.0)
        last = np.where(shown[..., 0] > 0, chunk_max[np.maximum(end[..., 0] - 1, 0)], 0.0)
        table = np.zeros((*last.shape, h + 2), dtype=np.float32)
        table[..., :h] = means / scale
        table[..., h] = table[..., h + 1] = last / scale
        return table, last

    def table_index(self, start: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `history` for envs now: intervals up to now (in the aligned series) and
        full intervals the history shows (at most ``history_intervals``).

        Args:
            start: Each env's window start (seconds into the trace).
            t: Seconds each has played.

        Returns:
            ``(row, shown)`` indices into `history` and `last_max`.
        """
        begin, end = history_bounds(self.warmup_s, start, t)
        interval = self.interval
        shown = np.minimum(self.layout.history_intervals, (end - begin) // interval)
        return (end - self.offset) // interval, shown

    def observe(self, v: np.ndarray, bi: np.ndarray, r: np.ndarray, start: np.ndarray,
                t_s: np.ndarray, st: BatchStats | None, has_stats: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """`PipelineEnv._observation` of every env, and its reactive forecast.

        Args:
            v: ``(envs, stages)`` variant indices in force.
            bi: ``(envs, stages)`` batch-size indices.
            r: ``(envs, stages)`` replicas.
            start: Each env's window start.
            t_s: Seconds each has played.
            st: The last interval's stats (None before the first step).
            has_stats: Which envs have played an interval since their reset.

        Returns:
            ``(observations, forecast_rps)``.
        """
        layout, interval, env = self.layout, self.interval, self.env
        h, scale = layout.history_intervals, layout.rate_scale
        n_env, n_s = v.shape
        obs = np.zeros((n_env, layout.size), dtype=np.float32)
        row, shown = self.table_index(start, t_s)
        obs[:, : h + 2] = self.history[row, shown]
        forecast = self.last_max[row, shown]  # ReactivePredictor(window_s=interval_s)
        t, s = self.tables, np.arange(n_s)
        width = len(layout.stage_fields)
        fields = np.zeros((n_env, n_s, width))
        fields[..., 0] = v / np.maximum(t.n_variants - 1, 1)
        fields[..., 1] = bi / np.maximum(t.n_batches - 1, 1)
        fields[..., 2] = r / env.config.max_replicas
        fields[..., 3] = r * t.throughput_rps[s, v, bi] / scale
        fields[..., 7] = r * t.cores[s, v] / env.scales.max_cores
        fields[..., 8] = t.rank[s, v]
        pos = h + 2 + width * n_s
        if st is not None:
            has = has_stats[:, None]
            sla = env.pipeline.sla_ms
            fields[..., 4] = np.where(has, st.stage_utilisation, 0.0)
            fields[..., 5] = np.where(has, st.stage_queue / (scale * interval), 0.0)
            fields[..., 6] = np.where(has, st.stage_dropped
                                      / np.maximum(st.arrived, 1)[:, None], 0.0)
            p99 = np.nan_to_num(st.stage_p99_ms, nan=0.0)
            fields[..., 9] = np.where(has, p99 / sla, 0.0)
            tail = np.stack([np.nan_to_num(st.p99_ms, nan=0.0) / sla, st.sla_violation_rate,
                             st.power_w / env.scales.max_power_w,
                             st.accuracy_rank_sum / n_s], axis=1)
            obs[:, pos: pos + 4] = np.where(has_stats[:, None], tail, 0.0)
            if layout.version >= 2:
                v1 = len(STAGE_FIELDS)
                fields[..., v1] = np.where(has, st.stage_loading / env.config.max_replicas, 0.0)
                fields[..., v1 + 1] = np.where(has, st.stage_oldest_wait_s * 1e3 / sla, 0.0)
                nodes = np.array([pool.nodes for pool in env.pipeline.fleet.pools])
                pools = np.stack([st.pool_booting / nodes, st.pool_powered / nodes], axis=-1)
                obs[:, pos + 4:] = np.where(has_stats[:, None], pools.reshape(n_env, -1), 0.0)
        obs[:, h + 2: pos] = fields.reshape(n_env, -1)
        np.clip(obs, 0.0, OBS_CLIP, out=obs)
        return obs, forecast
