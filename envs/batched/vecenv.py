"""`BatchedPipelineVecEnv`: N `PipelineEnv`s on the fluid backend as one SB3 `VecEnv`.

Observations, actions, rewards, episode ends and ``info`` are those of N `PipelineEnv`s
with the same config seeded ``seed + i`` (as `make_vec_env` seeds them), and
``tests/test_batched_vecenv.py`` checks it step by step. Decoding, repair, the
observation and the reward terms are computed for all envs at once in array form; the
simulation is `envs.batched.fluid.BatchedFluid`. The per-env Python work left is packing
each env's ``info`` dict and the rare episode resets.

What it supports (`unsupported_reason` says what is not): the ``fluid`` backend, the
``reactive`` predictor, ``cold_start_s <= interval_s <= 600``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from envs.backends.base import IntervalStats
from envs.backends.replicas import simulated_energy_method
from envs.batched import array_perf as ap
from envs.batched.fluid import BatchedFluid, BatchStats
from envs.env_config import EnvConfig
from envs.errors import ActionError, ConfigError
from envs.observation import OBS_CLIP, PREDICTOR_HISTORY_S, STAGE_FIELDS, history_bounds
from envs.pipeline_env import PipelineEnv
from envs.spec import Decision, StageDecision

_STATIC_ATTRS = frozenset({"render_mode", "config", "pipeline", "settings", "layout", "scales",
                           "trace", "action_space", "observation_space", "metadata",
                           "action_masks"})


def unsupported_reason(config: EnvConfig) -> str | None:
    """Why `BatchedPipelineVecEnv` cannot run ``config`` exactly (None: it can)."""
    if config.backend != "fluid":
        return f"env.backend is {config.backend!r}, and the batched env simulates 'fluid' only"
    if config.predictor != "reactive":
        return f"env.predictor is {config.predictor!r}, and the batched env has 'reactive' only"
    if not 0.0 <= config.cold_start_s <= config.interval_s:
        return (f"env.cold_start_s={config.cold_start_s} exceeds env.interval_s="
                f"{config.interval_s} (the batched env's replica groups assume it does not)")
    if config.interval_s > PREDICTOR_HISTORY_S:
        return f"env.interval_s={config.interval_s} exceeds {PREDICTOR_HISTORY_S} s"
    if config.model_load_scale > 0 and _loads_weights(config):
        return ("the profile's variants load their weights for a size-dependent time "
                "(envs.perf.model_load_s), and the batched env has one cold start for all; "
                "env.model_load_scale=0 turns loading off")
    return None


def _loads_weights(config: EnvConfig) -> bool:
    from envs import perf
    from envs.profiles import load_pipeline

    pipeline = load_pipeline(config.pipeline, config.sla_ms, config.batch_sizes, config.fleet,
                             config.idle_power_scale)
    return any(perf.model_load_s(pipeline.hardware, v) > 0
               for stage in pipeline.stages for v in stage.variants)


class BatchedPipelineVecEnv(VecEnv):
    """``n_envs`` fluid-backend `PipelineEnv`s stepped together (see the module docstring).

    Args:
        config: The env config every env uses.
        n_envs: How many envs.

    Raises:
        ConfigError: ``config`` is one the batched env cannot run (`unsupported_reason`),
            or anything `PipelineEnv` rejects.
    """

    def __init__(self, config: EnvConfig, n_envs: int) -> None:
        reason = unsupported_reason(config)
        if reason is not None:
            raise ConfigError(f"{reason}; use run.vec_env=dummy (N PipelineEnvs) for it")
        if n_envs < 1:
            raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
        self.template = env = PipelineEnv(config)
        self.config, self.pipeline, self.layout = env.config, env.pipeline, env.layout
        self.fluid = BatchedFluid(env.pipeline, env.settings, n_envs, config.max_replicas)
        super().__init__(n_envs, env.observation_space, env.action_space)
        self._interval = interval = config.interval_s
        # The observation's chunks end at "now" (warm-up + window start + played, a
        # multiple of interval_s past the warm-up's end): cut the series into intervals
        # aligned so, dropping the warm-up's first ``warmup % interval`` seconds (never a
        # full chunk of any history). A history shorter than one interval but not empty
        # cannot occur: PipelineEnv requires warmup_s = 0 or >= the reactive window.
        self._warmup_s = len(env.warmup)
        self._offset = self._warmup_s % interval
        series = env.series[self._offset:]
        chunks = len(series) // interval
        blocks = series[: chunks * interval].reshape(chunks, interval)
        self._history, self._last_max = self._history_table(
            blocks.mean(axis=1), blocks.max(axis=1))
        self._stage_cache: list[dict[tuple[int, int, int], StageDecision]] = [
            {} for _ in env.pipeline.stages]
        self._headroom = np.asarray(config.headroom_levels)
        self._estimated = env.pipeline.energy_estimated
        self._method = simulated_energy_method(env.pipeline)
        shape = (n_envs, len(env.pipeline.stages))
        self._v, self._bi, self._r = (np.zeros(shape, dtype=np.int64) for _ in range(3))
        self._start = np.zeros(n_envs, dtype=np.int64)
        self._t = np.zeros(n_envs, dtype=np.int64)
        self._forecast = np.zeros(n_envs)
        self._stats: BatchStats | None = None
        self._has_stats = np.zeros(n_envs, dtype=bool)
        self._rngs: list[np.random.Generator | None] = [None] * n_envs
        self._actions = np.zeros((n_envs, len(env.action_space.nvec)), dtype=np.int64)

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

    # -- episodes --------------------------------------------------------------------------
    def _reset_env(self, i: int) -> dict[str, Any]:
        """`PipelineEnv.reset` of env ``i`` (same random draws, in the same order)."""
        seed = self._seeds[i]
        if seed is not None or self._rngs[i] is None:
            self._rngs[i] = seeding.np_random(seed)[0]
        rng = self._rngs[i]
        assert rng is not None
        env, interval = self.template, self._interval
        window_s = self.config.workload.window_s
        start = int(rng.integers((len(env.trace) - window_s) // interval + 1)) * interval
        self._start[i], self._t[i] = start, 0
        # Sized for the reactive forecast on the warm-up history (PipelineEnv.reset).
        row, shown = self._table_index(np.array([i]))
        decision = env.initial_decision(float(self._last_max[row[0], shown[0]]))
        rng.integers(2**31 - 1)  # PipelineEnv's backend seed (the fluid backend ignores it)
        self._v[i] = [c.variant for c in decision.stages]
        self._bi[i] = [self.pipeline.batch_sizes.index(c.batch) for c in decision.stages]
        self._r[i] = [c.replicas for c in decision.stages]
        self._has_stats[i] = False
        self.fluid.reset(np.array([i]), self._v[i], self._bi[i], self._r[i])
        return {"decision": decision, "window_start": start}

    def reset(self) -> VecEnvObs:
        for i in range(self.num_envs):
            self.reset_infos[i] = self._reset_env(i)
        self._reset_seeds()
        self._reset_options()
        return self._observe()

    # -- decisions -------------------------------------------------------------------------
    def _decode(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`PipelineEnv.decode` of every env's action: variant, batch index, replicas."""
        actions = np.asarray(actions)
        nvec = self.action_space.nvec
        if actions.shape != (self.num_envs, len(nvec)) or not (
                np.issubdtype(actions.dtype, np.integer) or np.all(actions == np.round(actions))
        ) or not np.all((actions >= 0) & (actions < nvec)):
            raise ActionError(
                f"actions of shape {actions.shape} do not fit {self.num_envs} envs of "
                f"{self.action_space}; give one [variant, batch index, replicas - 1] triple "
                "per stage per env")
        actions = actions.astype(np.int64)
        v, bi, third = actions[:, 0::3], actions[:, 1::3], actions[:, 2::3]
        if self.config.action_mode == "absolute":
            return v, bi, third + 1
        tables = self.fluid.tables
        tp = tables.throughput_rps[np.arange(v.shape[1]), v, bi]
        rate = self._forecast[:, None] * self._headroom[third]
        return v, bi, np.minimum(ap.replicas_for_rate(tp, rate), self.config.max_replicas)

    def _repair(self, v: np.ndarray, r: np.ndarray) -> np.ndarray:
        """`envs.actions.ActionCodec.repair` for every env: replicas removed, and how many."""
        repairs = np.zeros(self.num_envs, dtype=np.int64)
        budget = self.config.max_cores
        if budget is None:
            return repairs
        cores = self.fluid.tables.cores[np.arange(v.shape[1]), v]
        rows = np.arange(self.num_envs)
        while np.any(over := (r * cores).sum(axis=1) > budget):
            widest = np.argmax(r * cores, axis=1)
            if np.any(r[rows, widest][over] == 1):
                raise ActionError(f"even one replica per stage exceeds max_cores={budget}; "
                                  "raise max_cores")
            r[rows[over], widest[over]] -= 1
            repairs += over
        return repairs

    # -- the VecEnv API --------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        v, bi, r = self._decode(self._actions)
        repairs = self._repair(v, r)
        prev_v = self._v
        self.fluid.apply(v, bi, r)
        self._v, self._bi, self._r = v, bi, r
        interval = self._interval
        idx = (self._start + self._t)[:, None] + np.arange(interval)
        stats = self.fluid.run_interval(self.template.trace[idx])
        self._stats, self._t = stats, self._t + interval
        self._has_stats[:] = True
        terms = self._reward_terms(stats, prev_v)
        w = self.config.reward
        rewards = (w.accuracy * terms["accuracy"] - w.sla_violation * terms["sla_violation"]
                   - w.cost * terms["cost"] - w.energy * terms["energy"]
                   - w.switching * terms["switching"] - w.batch * terms["batch"])
        obs = self._observe()
        dones = self._t >= self.config.workload.window_s
        infos = self._infos(stats, terms, obs, repairs, dones)
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = obs[i].copy()
            self.reset_infos[i] = self._reset_env(int(i))
        if dones.any():
            obs = self._observe()
        return obs, rewards.astype(np.float32), dones, infos

    def _reward_terms(self, stats: BatchStats, prev_v: np.ndarray) -> dict[str, np.ndarray]:
        """`envs.reward.reward_terms` for every env."""
        n = len(self.pipeline.stages)
        scales = self.template.scales
        arrived = stats.arrived
        rate = np.where(arrived > 0, stats.sla_violations / np.maximum(arrived, 1), 0.0)
        power = stats.energy_j / stats.seconds if stats.seconds else np.zeros(self.num_envs)
        sizes = self.fluid.tables.batch_sizes[self._bi]
        return {
            "accuracy": stats.accuracy_sum / n,
            "sla_violation": rate,
            "cost": stats.cores / scales.max_cores,
            "energy": power / scales.max_power_w,
            "switching": (self._v != prev_v).sum(axis=1) / n,
            "batch": sizes.sum(axis=1) / (n * scales.max_batch),
        }

    def _table_index(self, envs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `_history` for ``envs`` now: intervals up to now (in the aligned
        series) and full intervals the history shows (at most ``history_intervals``)."""
        begin, end = history_bounds(self._warmup_s, self._start[envs], self._t[envs])
        interval = self._interval
        shown = np.minimum(self.layout.history_intervals, (end - begin) // interval)
        return (end - self._offset) // interval, shown

    def _observe(self) -> np.ndarray:
        """`PipelineEnv._observation` of every env (and its reactive forecast)."""
        layout, interval = self.layout, self._interval
        h, scale = layout.history_intervals, layout.rate_scale
        n_env, n_s = self._v.shape
        obs = np.zeros((n_env, layout.size), dtype=np.float32)
        row, shown = self._table_index(np.arange(n_env))
        obs[:, : h + 2] = self._history[row, shown]
        self._forecast = self._last_max[row, shown]  # ReactivePredictor(window_s=interval_s)
        t, s = self.fluid.tables, np.arange(n_s)
        v, bi, r = self._v, self._bi, self._r
        fields = np.zeros((n_env, n_s, len(STAGE_FIELDS)))
        fields[..., 0] = v / np.maximum(t.n_variants - 1, 1)
        fields[..., 1] = bi / max(len(t.batch_sizes) - 1, 1)
        fields[..., 2] = r / self.config.max_replicas
        fields[..., 3] = r * t.throughput_rps[s, v, bi] / scale
        fields[..., 7] = r * t.cores[s, v] / self.template.scales.max_cores
        fields[..., 8] = t.rank[s, v]
        st = self._stats
        pos = h + 2 + len(STAGE_FIELDS) * n_s
        if st is not None:
            has = self._has_stats[:, None]
            sla = self.pipeline.sla_ms
            fields[..., 4] = np.where(has, st.stage_utilisation, 0.0)
            fields[..., 5] = np.where(has, st.stage_queue / (scale * interval), 0.0)
            fields[..., 6] = np.where(has, st.stage_dropped
                                      / np.maximum(st.arrived, 1)[:, None], 0.0)
            p99 = np.nan_to_num(st.stage_p99_ms, nan=0.0)
            fields[..., 9] = np.where(has, p99 / sla, 0.0)
            rate = np.where(st.arrived > 0, st.sla_violations / np.maximum(st.arrived, 1), 0.0)
            power = st.energy_j / st.seconds if st.seconds else np.zeros(n_env)
            tail = np.stack([np.nan_to_num(st.p99_ms, nan=0.0) / sla, rate,
                             power / self.template.scales.max_power_w,
                             st.accuracy_sum / n_s], axis=1)
            obs[:, pos: pos + 4] = np.where(self._has_stats[:, None], tail, 0.0)
        obs[:, h + 2: pos] = fields.reshape(n_env, -1)
        np.clip(obs, 0.0, OBS_CLIP, out=obs)
        return obs

    def _decision(self, v: Sequence[int], bi: Sequence[int], r: Sequence[int]) -> Decision:
        stages = []
        sizes, cores = self.pipeline.batch_sizes, self.fluid.tables.cores
        for k, key in enumerate(zip(v, bi, r, strict=True)):
            cache = self._stage_cache[k]
            choice = cache.get(key)
            if choice is None:
                choice = cache[key] = StageDecision(key[0], sizes[key[1]], key[2],
                                                    int(cores[k, key[0]]))
            stages.append(choice)
        return Decision(tuple(stages))

    def _infos(self, st: BatchStats, terms: dict[str, np.ndarray], obs: np.ndarray,
               repairs: np.ndarray, dones: np.ndarray) -> list[dict[str, Any]]:
        """Every env's ``info``, as `PipelineEnv.step` builds it."""
        names = list(terms)
        term_rows = np.stack([terms[k] for k in names], axis=1).tolist()
        h = self.layout.history_intervals
        forecast = (obs[:, h + 1].astype(np.float64) * self.layout.rate_scale).tolist()
        estimated = self._estimated
        columns = zip(
            st.arrived.tolist(), st.served.tolist(), st.dropped.tolist(),
            st.sla_violations.tolist(), st.p50_ms.tolist(), st.p99_ms.tolist(),
            st.accuracy_sum.tolist(), st.accuracy_product.tolist(), st.cores.tolist(),
            st.cost_core_s.tolist(), st.energy_j.tolist(), st.stage_utilisation.tolist(),
            st.stage_queue.tolist(), st.stage_dropped.tolist(), st.stage_p99_ms.tolist(),
            st.static_j.tolist(), st.idle_j.tolist(), st.dynamic_j.tolist(),
            self._v.tolist(), self._bi.tolist(), self._r.tolist(), term_rows, forecast,
            repairs.tolist(), dones.tolist(), strict=True)
        infos = []
        for (arr, srv, drp, vio, p50, p99, acc_s, acc_p, cores, core_s, e_j, util, queue,
             s_drop, s_p99, static_j, idle_j, dyn_j, v, bi, r, row, fc, rep, done) in columns:
            stats = IntervalStats(
                st.seconds, arr, srv, drp, vio, p50, p99, acc_s, acc_p, cores, core_s, e_j,
                estimated, tuple(util), tuple(queue), tuple(s_drop), tuple(s_p99),
                static_j, idle_j, dyn_j, energy_method=self._method)
            infos.append({
                "reward_terms": dict(zip(names, row, strict=True)),
                "stats": stats,
                "decision": self._decision(v, bi, r),
                "forecast_rps": fc,
                "repairs": rep,
                "energy_estimated": estimated,
                "events": [],
                "TimeLimit.truncated": done,
            })
        return infos

    def close(self) -> None:
        self.template.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attributes every env shares (its config, pipeline, spaces...)."""
        if attr_name not in _STATIC_ATTRS:
            raise AttributeError(f"the batched env shares only {sorted(_STATIC_ATTRS)}; "
                                 f"{attr_name!r} is per env (use run.vec_env=dummy)")
        return [getattr(self.template, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"the batched env cannot set {attr_name!r} per env")

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """``action_masks`` only (the same for every env: it depends on the config)."""
        if method_name != "action_masks":
            raise AttributeError(f"the batched env offers env_method('action_masks') only, "
                                 f"not {method_name!r}")
        masks = self.template.action_masks()
        return [masks.copy() for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
