"""`BatchedPipelineVecEnv`: N `PipelineEnv`s on the fluid backend as one SB3 `VecEnv`.

Observations, actions, rewards, episode ends and ``info`` are those of N `PipelineEnv`s
with the same config seeded ``seed + i`` (as `make_vec_env` seeds them), and
``tests/test_batched_vecenv.py`` checks it step by step. Decoding, repair, the
observation and the reward terms are computed for all envs at once in array form; the
simulation is `envs.batched.fluid.BatchedFluid`. The per-env Python work left is packing
each env's ``info`` dict and the rare episode resets.

What it supports (`envs.batched.support.unsupported_reason` says what is not): the
``fluid`` backend, the ``reactive`` predictor, ``interval_s <= 600``. Cold starts longer than
an interval, size-dependent model loads and node power states run on per-env replica groups
(`envs.batched.groups.BatchedGroupFluid`), the others on three groups per stage
(`envs.batched.fluid.BatchedFluid`, faster).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from envs.backends.replicas import simulated_energy_method
from envs.batched.actions import Decisions, decode_actions, repair_replicas
from envs.batched.batch_stats import BatchStats
from envs.batched.fluid import BatchedFluid
from envs.batched.groups import BatchedGroupFluid
from envs.batched.observation import BatchedObservation
from envs.batched.support import needs_replica_groups, unsupported_reason
from envs.config.errors import ConfigError
from envs.env_config import EnvConfig
from envs.pipeline_env import PipelineEnv
from envs.reward import weighted_reward

_STATIC_ATTRS = frozenset({"render_mode", "config", "pipeline", "settings", "layout", "scales",
                           "trace", "action_space", "observation_space", "metadata",
                           "action_masks"})


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
        form = (BatchedGroupFluid if needs_replica_groups(env.config, env.pipeline)
                else BatchedFluid)
        self.fluid = form(env.pipeline, env.settings, n_envs, config.max_replicas)
        super().__init__(n_envs, env.observation_space, env.action_space)
        self._interval = config.interval_s
        self._obs = BatchedObservation(env, self.fluid.tables)
        self._decisions = Decisions([s.batch_sizes for s in env.pipeline.stages],
                                    self.fluid.tables.cores)
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
        row, shown = self._obs.table_index(self._start[[i]], self._t[[i]])
        decision = env.initial_decision(float(self._obs.last_max[row[0], shown[0]]))
        rng.integers(2**31 - 1)  # PipelineEnv's backend seed (the fluid backend ignores it)
        self._v[i] = [c.variant for c in decision.stages]
        self._bi[i] = [s.batch_sizes.index(c.batch)
                       for s, c in zip(self.pipeline.stages, decision.stages, strict=True)]
        self._r[i] = [c.replicas for c in decision.stages]
        self._has_stats[i] = False
        self.fluid.reset(np.array([i]), self._v[i], self._bi[i], self._r[i])
        return {"decision": decision, "window_start": start}

    def reset(self) -> VecEnvObs:
        """Reset every env (`PipelineEnv.reset` with the seeds given to `seed`).

        Returns:
            The observations, ``(envs, observation size)``.
        """
        for i in range(self.num_envs):
            self.reset_infos[i] = self._reset_env(i)
        self._reset_seeds()
        self._reset_options()
        return self._observe()

    # -- the VecEnv API --------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for `step_wait`.

        Args:
            actions: ``(envs, 3 x stages)`` actions.
        """
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env one interval; an env whose episode ended is reset.

        Returns:
            ``(observations, rewards, dones, infos)`` as SB3's `VecEnv` gives them.
        """
        v, bi, r = decode_actions(self._actions, self.action_space, self.config,
                                  self.fluid.tables, self._forecast)
        repairs = repair_replicas(v, r, self.fluid.tables, self.config.max_cores)
        prev_v = self._v
        self.fluid.apply(v, bi, r)
        self._v, self._bi, self._r = v, bi, r
        interval = self._interval
        idx = (self._start + self._t)[:, None] + np.arange(interval)
        stats = self.fluid.run_interval(self.template.trace[idx])
        self._stats, self._t = stats, self._t + interval
        self._has_stats[:] = True
        terms = self._reward_terms(stats, prev_v)
        rewards = weighted_reward(terms, self.config.reward)
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
        sizes = self.fluid.tables.batch_sizes[np.arange(n), self._bi]
        return {
            "accuracy": stats.accuracy_rank_sum / n,
            "sla_violation": stats.sla_violation_rate,
            "cost": stats.cores / scales.max_cores,
            "energy": stats.power_w / scales.max_power_w,
            "switching": (self._v != prev_v).sum(axis=1) / n,
            "batch": sizes.sum(axis=1) / (n * scales.max_batch),
        }

    def _observe(self) -> np.ndarray:
        """`PipelineEnv._observation` of every env; keeps their reactive forecasts."""
        obs, self._forecast = self._obs.observe(self._v, self._bi, self._r, self._start,
                                                self._t, self._stats, self._has_stats)
        return obs

    def _infos(self, st: BatchStats, terms: dict[str, np.ndarray], obs: np.ndarray,
               repairs: np.ndarray, dones: np.ndarray) -> list[dict[str, Any]]:
        """Every env's ``info``, as `PipelineEnv.step` builds it."""
        names = list(terms)
        term_rows = np.stack([terms[k] for k in names], axis=1).tolist()
        h = self.layout.history_intervals
        forecast = (obs[:, h + 1].astype(np.float64) * self.layout.rate_scale).tolist()
        estimated = self._estimated
        columns = zip(st.per_env(estimated, self._method), self._v.tolist(), self._bi.tolist(),
                      self._r.tolist(), term_rows, forecast, repairs.tolist(), dones.tolist(),
                      strict=True)
        infos = []
        for stats, v, bi, r, row, fc, rep, done in columns:
            infos.append({
                "reward_terms": dict(zip(names, row, strict=True)),
                "stats": stats,
                "decision": self._decisions.decision(v, bi, r),
                "forecast_rps": fc,
                "repairs": rep,
                "energy_estimated": estimated,
                "events": [],
                "TimeLimit.truncated": done,
            })
        return infos

    def close(self) -> None:
        """Close the template env."""
        self.template.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attributes every env shares (its config, pipeline, spaces...).

        Args:
            attr_name: The attribute.
            indices: Which envs (None: all).

        Returns:
            The attribute, once per env.

        Raises:
            AttributeError: If the attribute is per env.
        """
        if attr_name not in _STATIC_ATTRS:
            raise AttributeError(f"the batched env shares only {sorted(_STATIC_ATTRS)}; "
                                 f"{attr_name!r} is per env (use run.vec_env=dummy)")
        return [getattr(self.template, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Not supported: the envs share their attributes.

        Args:
            attr_name: The attribute.
            value: Its value.
            indices: Which envs.

        Raises:
            AttributeError: Always.
        """
        raise AttributeError(f"the batched env cannot set {attr_name!r} per env")

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """``action_masks`` only (the same for every env: it depends on the config).

        Args:
            method_name: Must be ``action_masks``.
            *method_args: Not used.
            indices: Which envs (None: all).
            **method_kwargs: Not used.

        Returns:
            One mask per env.

        Raises:
            AttributeError: For any other method.
        """
        if method_name != "action_masks":
            raise AttributeError(f"the batched env offers env_method('action_masks') only, "
                                 f"not {method_name!r}")
        masks = self.template.action_masks()
        return [masks.copy() for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """No env is wrapped.

        Args:
            wrapper_class: The wrapper asked about.
            indices: Which envs (None: all).

        Returns:
            False per env.
        """
        return [False] * len(self._get_indices(indices))
