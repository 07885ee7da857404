"""`PipelineEnv`: a Gymnasium environment over a profiled inference pipeline."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.actions import ActionCodec, check_core_budget
from envs.backend_factory import build_backend
from envs.backends.base import IntervalStats, ServingSettings
from envs.config.errors import ConfigError
from envs.env_config import EnvConfig
from envs.env_kwargs import config_from_kwargs
from envs.env_pipeline import env_pipeline
from envs.model.spec import Decision
from envs.observation import OBS_CLIP, ObsLayout, history_bounds, observation
from envs.reward import RewardScales, reward_terms, weighted_reward
from envs.suspicious import warn_suspicious_settings
from envs.workload.predictor_base import Predictor
from envs.workload.predictors import make_predictor
from envs.workload.traces import load_env_workload


class PipelineEnv(gym.Env):
    """Adapt a multi-stage inference pipeline every interval.

    Every ``interval_s`` seconds (one step) the agent sets, per stage, the model variant,
    the batch size and the replicas; the backend (fluid or request-level simulator, or
    live servers) serves the interval's requests and reports an `IntervalStats`.

    **Action space** ``MultiDiscrete``, three entries per stage ``s``:

    ====  ==========================  =================================================
    idx   meaning                     values
    ====  ==========================  =================================================
    3s    variant                     0 .. variants - 1 (ordered by accuracy)
    3s+1  batch size                  index into the stage's ``batch_sizes``
    3s+2  replicas (``absolute``)     replicas - 1, 0 .. ``max_replicas`` - 1
    3s+2  headroom (``headroom``)     index into ``headroom_levels``: replicas = fewest
                                      that serve forecast x level (`perf.replicas_for_rate`)
    ====  ==========================  =================================================

    Cores (or GPUs) per replica are the variant's base allocation. ``action_masks()``
    masks replica counts that cannot fit ``max_cores``; what still exceeds it is repaired
    (replicas removed) and counted in ``info["repairs"]``.

    **Observation** ``Box(0, 10, (size,), float32)``, every value clipped to [0, 10] and
    rates divided by the fixed ``rate_scale_rps``; its layout (``observation_version``, 2 by
    default) is tabulated in `envs.observation`.

    **Starting state** ``reset()`` picks a window of ``workload.window_s`` seconds (a
    random interval-aligned start, or ``options={"window_start": s}``) that begins after
    ``workload.warmup_s`` seconds of history (never played, read by the predictor); the
    decision in force is the one `initial_decision` sizes for the predictor's forecast on
    that history (never for the window's own rates), warm (no cold start).

    **Reward** the weighted sum (`RewardWeights`) of ``info["reward_terms"]``, each about
    [0, 1]: ``accuracy`` (mean rank accuracy, a gain), ``sla_violation`` (violations /
    arrivals), ``cost`` (cores / max), ``energy`` (power / max power: the power model of
    `envs.model.perf`, static + idle + dynamic), ``switching`` (variant changes / stages),
    ``batch`` (mean batch / max batch); ``reward_preset: ipa`` is IPA's objective.

    **Episode end** ``truncated=True`` after the window's last interval; never
    ``terminated``.

    **Info** ``reward_terms``, ``stats`` (`IntervalStats`: counts, latencies, accuracy,
    cores, energy with its static/idle/dynamic parts, ``energy_estimated`` and
    ``energy_method``), ``decision``, ``forecast_rps``, ``repairs``, ``energy_estimated``,
    ``events`` (the backend's, e.g. a live replica that died and was restarted).

    **Arguments** an `EnvConfig`, or any of its fields as keywords (dotted for nested
    ones, e.g. ``**{"workload.damping": 8}``); the main ones: ``pipeline`` (a shipped
    profile or a path), ``workload`` (a pattern or a trace path), ``backend`` (``fluid``,
    ``requests``, ``live``), ``interval_s``, ``max_replicas``, ``max_cores``,
    ``cold_start_s``, ``model_load_scale``, ``action_mode``, ``rate_scale_rps``,
    ``history_intervals``, ``fleet``, ``idle_power_scale``, ``reward``.

    **Version history**

    * v2 (``ipa/Pipeline-v2``, ``observation_version: 2``): the observation adds, per
      stage, replicas that do not serve yet and the oldest queued request's age, and per
      device pool the nodes booting and powered (`envs.observation`); the simulators keep
      node power states (`envs.backends.nodes`). v1 stays registered with its layout.
    * v1 (``ipa/Pipeline-v1``): the observation divides rates by the configured
      ``rate_scale_rps`` (not the workload's own maximum, which leaked its peak); every
      episode starts after a warm-up history and from a decision sized on it; the power
      model has static, idle and dynamic parts; per-stage observation of 10 values and
      the ``headroom`` action mode.
    * v0 (dropped): rates divided by the episode's maximum, no warm-up, the first
      decision sized from the true first interval, energy = idle per core + dynamic.
      Agents trained on v0 must be retrained (their saved config records the scale they
      used, so they still load and play under v1's rules).
    """

    metadata = {"render_modes": []}

    def __init__(self, config: EnvConfig | None = None, **overrides: Any) -> None:
        """Build the env (see the class docstring's **Arguments**).

        Args:
            config: The config (None: `EnvConfig` defaults).
            **overrides: Config fields as keywords (`envs.env_kwargs.config_from_kwargs`).

        Raises:
            ConfigError: An impossible setting (suspicious ones warn,
                `envs.config.errors.SuspiciousSettingWarning`).
            ProfileError: A malformed or unknown profile.
        """
        self.config = config_from_kwargs(config, overrides) if overrides else (
            config or EnvConfig())
        cfg = self.config
        self.pipeline = env_pipeline(cfg)
        n_stages = len(self.pipeline.stages)
        check_core_budget(cfg.max_cores, self.pipeline)
        warn_suspicious_settings(cfg, self.pipeline)
        self.settings = ServingSettings.for_pipeline(
            self.pipeline, cfg.interval_s, cfg.cold_start_s, cfg.drop_limit_s,
            cfg.batch_timeout_ms, cfg.model_load_scale)
        self.warmup, self.trace = load_env_workload(cfg.workload)
        self._series = np.concatenate([self.warmup, self.trace])
        if len(self.trace) < cfg.workload.window_s:
            raise ConfigError(f"the workload has {len(self.trace)} s after its "
                              f"{len(self.warmup)} s of warm-up history, shorter than "
                              f"workload.window_s={cfg.workload.window_s}; shorten the window")
        self.scales = RewardScales.for_pipeline(self.pipeline, cfg.max_replicas)
        # Fixed by config (saved with an agent), never from the workload: see EnvConfig.
        self.layout = ObsLayout(cfg.history_intervals, n_stages, rate_scale=cfg.rate_scale_rps,
                                version=cfg.observation_version,
                                n_pools=len(self.pipeline.fleet.pools))
        self.predictor: Predictor = (
            make_predictor("lstm", path=cfg.predictor_path) if cfg.predictor == "lstm"
            else make_predictor("reactive", window_s=cfg.interval_s))
        if 0 < cfg.workload.warmup_s < self.predictor.history_s:
            raise ConfigError(f"workload.warmup_s={cfg.workload.warmup_s} is shorter than the "
                              f"{self.predictor.history_s} s of history the {cfg.predictor} "
                              f"predictor reads; set workload.warmup_s >= "
                              f"{self.predictor.history_s}")
        self.backend = build_backend(cfg.backend, self.pipeline, self.settings)
        self.codec = ActionCodec(self.pipeline, cfg)
        self.action_space = self.codec.space
        self._forecast_rps = 0.0
        self.observation_space = spaces.Box(0.0, OBS_CLIP, (self.layout.size,), np.float32)
        self._window = np.zeros(0)
        self._window_start = 0
        self._t = 0
        self._decision: Decision | None = None
        self._last_stats: IntervalStats | None = None

    # -- decisions (`envs.actions.ActionCodec`) -------------------------------------------
    def decode(self, action: np.ndarray) -> Decision:
        """The `Decision` an action stands for.

        Args:
            action: One ``[variant, batch index, replicas or headroom index]`` per stage.

        Returns:
            The decision.

        Raises:
            ActionError: The action is out of range.
        """
        return self.codec.decode(action, self._forecast_rps)

    def encode(self, decision: Decision) -> np.ndarray:
        """The action that stands for ``decision`` (inverse of `decode`).

        In ``headroom`` mode replicas are only approximated (the level whose replica count
        is closest); baselines that must apply exact decisions run in ``absolute`` mode.

        Args:
            decision: The decision.

        Returns:
            The action.

        Raises:
            ActionError: A stage has more than ``max_replicas`` replicas.
        """
        return self.codec.encode(decision, self._forecast_rps)

    def action_masks(self) -> np.ndarray:
        """Valid values of each action dimension, flattened (for sb3-contrib MaskablePPO).

        Returns:
            One boolean per value of every dimension.
        """
        return self.codec.masks()

    def initial_decision(self, rate_rps: float) -> Decision:
        """Cheapest variants at the smallest batch, with enough replicas for ``rate_rps``.

        Args:
            rate_rps: The rate to size replicas for.

        Returns:
            The decision, repaired to ``max_cores``.
        """
        return self.codec.initial_decision(rate_rps)

    # -- gym API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (see **Starting state**).

        Args:
            seed: Seeds the window start and the backend.
            options: ``{"window_start": s}`` picks the window.

        Returns:
            The first observation and ``{"decision", "window_start"}``.

        Raises:
            ConfigError: ``window_start`` outside the trace.
        """
        super().reset(seed=seed)
        window_s = self.config.workload.window_s
        interval = self.config.interval_s
        if options and "window_start" in options:
            start = int(options["window_start"])
            if not 0 <= start <= len(self.trace) - window_s:
                raise ConfigError(f"window_start {start} outside 0..{len(self.trace) - window_s}")
        else:
            slots = (len(self.trace) - window_s) // interval + 1
            start = int(self.np_random.integers(slots)) * interval
        self._window_start = start
        self._window = self.trace[start: start + window_s]
        self._t = 0
        self.predictor.reset()
        # The decision in force when the episode starts is the one a deployed adapter would
        # have made from the warm-up history: sized for the forecast, never for the window.
        self._decision = self.initial_decision(self.predictor.predict(self.history()))
        backend_seed = int(self.np_random.integers(2**31 - 1))
        self.backend.reset(self._decision, seed=backend_seed)
        self._last_stats = None
        return self._observation(), {"decision": self._decision, "window_start": start}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply an action for one interval (see **Reward**, **Episode end**, **Info**).

        Args:
            action: One ``[variant, batch index, replicas or headroom index]`` per stage.

        Returns:
            ``(observation, reward, terminated, truncated, info)``.

        Raises:
            ActionError: The action is out of range.
            RuntimeError: Called before `reset`.
        """
        if self._decision is None:
            raise RuntimeError("call reset() before step()")
        decision, repairs = self.codec.repair(self.decode(action))
        previous = self._decision
        if decision != previous:
            self.backend.apply(decision)
        interval = self.config.interval_s
        arrivals = self._window[self._t: self._t + interval]
        stats = self.backend.run_interval(arrivals)
        self._t += interval
        self._decision = decision
        self._last_stats = stats
        terms = reward_terms(self.pipeline, stats, decision, previous, self.scales)
        reward = weighted_reward(terms, self.config.reward)
        obs = self._observation()
        truncated = self._t >= len(self._window)
        info = {
            "reward_terms": terms,
            "stats": stats,
            "decision": decision,
            "forecast_rps": self.layout.forecast_rps(obs),
            "repairs": repairs,
            "energy_estimated": stats.energy_estimated,
            "events": list(self.backend.last_events),
        }
        return obs, float(reward), False, truncated, info

    def history(self) -> np.ndarray:
        """Per-second rates seen so far: the warm-up history and the trace before the
        window, then the window's played seconds (at most `PREDICTOR_HISTORY_S` + played)."""
        begin, end = history_bounds(len(self.warmup), self._window_start, self._t)
        return self._series[int(begin): int(end)]

    @property
    def series(self) -> np.ndarray:
        """The warm-up history followed by the playable trace (per-second rates)."""
        return self._series

    def powered_nodes(self) -> tuple[int, ...] | None:
        """Nodes powered per device pool now (booting, serving or held), for planners that
        count what a boot costs; None on a backend without node states (the live one)."""
        nodes = getattr(self.backend, "nodes", None)
        return None if nodes is None else tuple(p.powered for p in nodes.pools)

    def upcoming_rates(self) -> np.ndarray:
        """The next interval's true rates (for oracle baselines only)."""
        return self._window[self._t: self._t + self.config.interval_s]

    def _observation(self) -> np.ndarray:
        seen = self.history()
        self._forecast_rps = self.predictor.predict(seen)
        assert self._decision is not None
        return observation(self.layout, seen, self._forecast_rps, pipeline=self.pipeline,
                           decision=self._decision, stats=self._last_stats,
                           interval_s=self.config.interval_s,
                           max_replicas=self.config.max_replicas, scales=self.scales)

    @property
    def decision(self) -> Decision | None:
        """The decision in force."""
        return self._decision

    @property
    def last_stats(self) -> IntervalStats | None:
        """The last interval's statistics (None right after reset)."""
        return self._last_stats

    def close(self) -> None:
        """Stop the backend (live servers and their processes)."""
        self.backend.close()
