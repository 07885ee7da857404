"""`PipelineEnv`: a Gymnasium environment over a profiled inference pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs import perf
from envs.backends.base import Backend, IntervalStats, SimSettings
from envs.config import apply_overrides, from_dict, to_dict
from envs.env_config import EnvConfig
from envs.errors import ActionError, ConfigError
from envs.predictors import Predictor, make_predictor
from envs.profiles import load_pipeline
from envs.reward import RewardScales, reward_terms, weighted_reward
from envs.spec import Decision, ModelVariant, Pipeline, StageDecision
from envs.suspicious import warn_suspicious_settings
from envs.workloads import load_trace, synthetic_trace

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
        return self.history_intervals + 2 + len(STAGE_FIELDS) * self.n_stages + 4

    def forecast_rps(self, obs: np.ndarray) -> float:
        """The predictor's forecast, in requests per second, read back from ``obs``."""
        return float(obs[self.history_intervals + 1]) * self.rate_scale

    def last_rate_rps(self, obs: np.ndarray) -> float:
        """The mean arrival rate of the last interval, in requests per second."""
        return float(obs[self.history_intervals - 1]) * self.rate_scale

    def stage(self, obs: np.ndarray, i: int) -> dict[str, float]:
        """Stage ``i``'s normalised fields (see `PipelineEnv`'s observation table)."""
        pos = self.history_intervals + 2 + len(STAGE_FIELDS) * i
        return dict(zip(STAGE_FIELDS, obs[pos: pos + len(STAGE_FIELDS)].tolist(), strict=True))


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


def build_backend(name: str, pipeline: Pipeline, settings: SimSettings) -> Backend:
    """The backend called ``name`` over ``pipeline``."""
    if name == "fluid":
        from envs.backends.fluid import FluidBackend

        return FluidBackend(pipeline, settings)
    if name == "requests":
        from envs.backends.requests import RequestBackend

        return RequestBackend(pipeline, settings)
    if name == "live":
        from envs.live.backend import LiveBackend

        return LiveBackend(pipeline, settings)
    raise ConfigError(f"unknown backend {name!r}; choose 'fluid', 'requests' or 'live'")


def _check_core_budget(max_cores: int | None, pipeline: Pipeline) -> None:
    """Reject a core budget below one replica per stage at its fewest cores, at construction
    (it would otherwise fail only at the first reset)."""
    if max_cores is None:
        return
    need = sum(min(v.base_cores for v in s.variants) for s in pipeline.stages)
    if max_cores < need:
        raise ConfigError(f"max_cores={max_cores} is below one replica per stage at its fewest "
                          f"cores ({need} for {pipeline.name}); set max_cores >= {need} or null")


def config_from_kwargs(config: EnvConfig | None, overrides: dict[str, Any]) -> EnvConfig:
    """Merge ``gymnasium.make`` keyword arguments into a config, strictly.

    ``workload="bursty"`` is short for a synthetic pattern and ``workload="path.txt"``
    for a trace file; other keys are config fields (dotted keys reach nested ones).
    """
    base = to_dict(config or EnvConfig())
    items = []
    for key, value in overrides.items():
        if key == "workload" and isinstance(value, str):
            if value.endswith((".txt", ".csv")) or "/" in value:
                items += ["workload.source=trace", f"workload.trace_path={value}"]
            else:
                items += ["workload.source=synthetic", f"workload.pattern={value}"]
        elif key == "reward_preset" and value is not None:
            base.pop("reward", None)
            items.append(f"reward_preset={value}")
        else:
            items.append(f"{key}={value}")
    return from_dict(EnvConfig, apply_overrides(base, items))


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
    3s+1  batch size                  index into ``batch_sizes``
    3s+2  replicas (``absolute``)     replicas - 1, 0 .. ``max_replicas`` - 1
    3s+2  headroom (``headroom``)     index into ``headroom_levels``: replicas = fewest
                                      that serve forecast x level (`perf.replicas_for_rate`)
    ====  ==========================  =================================================

    Cores (or GPUs) per replica are the variant's base allocation. ``action_masks()``
    masks replica counts that cannot fit ``max_cores``; what still exceeds it is repaired
    (replicas removed) and counted in ``info["repairs"]``.

    **Observation** ``Box(0, 10, (h + 2 + 10 n + 4,), float32)`` with ``h =
    history_intervals`` and ``n`` stages; every value is clipped to [0, 10]; rates are
    divided by the fixed ``rate_scale_rps`` (config, saved with an agent):

    ==================  ===============================================================
    index               value
    ==================  ===============================================================
    0 .. h-1            mean arrival rate of each of the last ``h`` intervals (oldest
                        first; 0 before the history starts) / rate_scale_rps
    h                   maximum per-second rate of the last interval / rate_scale_rps
    h+1                 the predictor's forecast for the next interval / rate_scale_rps
    h+2+10s+0           variant index / (variants - 1)
    h+2+10s+1           index of the batch size / (number of batch sizes - 1)
    h+2+10s+2           replicas / max_replicas
    h+2+10s+3           stage capacity (req/s, `perf.stage_throughput_rps`) / rate_scale
    h+2+10s+4           utilisation of the serving replicas, [0, 1]
    h+2+10s+5           requests queued at the stage / (rate_scale x interval_s)
    h+2+10s+6           requests dropped at the stage / arrivals of the interval
    h+2+10s+7           allocated cores or GPUs / the largest decision's (all stages)
    h+2+10s+8           IPA's rank accuracy of the variant, [0, 1]
    h+2+10s+9           the stage's p99 latency / SLA
    h+2+10n+0           end-to-end p99 latency / SLA
    h+2+10n+1           SLA violation rate of the last interval, [0, 1]
    h+2+10n+2           power (W) / the largest decision's power (`RewardScales`)
    h+2+10n+3           mean rank accuracy of the decision, [0, 1]
    ==================  ===============================================================

    Before the first step the per-interval fields (utilisation, queue, drops, the p99s,
    violation rate, power, accuracy) are 0.

    **Starting state** ``reset()`` picks a window of ``workload.window_s`` seconds (a
    random interval-aligned start, or ``options={"window_start": s}``) that begins after
    ``workload.warmup_s`` seconds of history (never played, read by the predictor); the
    decision in force is the one `initial_decision` sizes for the predictor's forecast on
    that history (never for the window's own rates), warm (no cold start).

    **Reward** the weighted sum (`RewardWeights`) of ``info["reward_terms"]``, each about
    [0, 1]: ``accuracy`` (mean rank accuracy, a gain), ``sla_violation`` (violations /
    arrivals), ``cost`` (cores / max), ``energy`` (power / max power: the power model of
    `envs.perf`, static + idle + dynamic), ``switching`` (variant changes / stages),
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
        self.config = config_from_kwargs(config, overrides) if overrides else (
            config or EnvConfig())
        cfg = self.config
        self.pipeline = load_pipeline(cfg.pipeline, cfg.sla_ms, cfg.batch_sizes, cfg.fleet,
                                      cfg.idle_power_scale)
        n_stages = len(self.pipeline.stages)
        _check_core_budget(cfg.max_cores, self.pipeline)
        warn_suspicious_settings(cfg, self.pipeline)
        self.settings = SimSettings.for_pipeline(
            self.pipeline, cfg.interval_s, cfg.cold_start_s, cfg.drop_limit_s,
            cfg.batch_timeout_ms, cfg.model_load_scale)
        self.warmup, self.trace = self._load_workload()
        self._series = np.concatenate([self.warmup, self.trace])
        if len(self.trace) < cfg.workload.window_s:
            raise ConfigError(f"the workload has {len(self.trace)} s after its "
                              f"{len(self.warmup)} s of warm-up history, shorter than "
                              f"workload.window_s={cfg.workload.window_s}; shorten the window")
        self.scales = RewardScales.for_pipeline(self.pipeline, cfg.max_replicas)
        # Fixed by config (saved with an agent), never from the workload: see EnvConfig.
        self.layout = ObsLayout(cfg.history_intervals, n_stages, rate_scale=cfg.rate_scale_rps)
        self.predictor: Predictor = (
            make_predictor("lstm", path=cfg.predictor_path) if cfg.predictor == "lstm"
            else make_predictor("reactive", window_s=cfg.interval_s))
        if 0 < cfg.workload.warmup_s < self.predictor.history_s:
            raise ConfigError(f"workload.warmup_s={cfg.workload.warmup_s} is shorter than the "
                              f"{self.predictor.history_s} s of history the {cfg.predictor} "
                              f"predictor reads; set workload.warmup_s >= "
                              f"{self.predictor.history_s}")
        self.backend = build_backend(cfg.backend, self.pipeline, self.settings)
        third = cfg.max_replicas if cfg.action_mode == "absolute" else len(cfg.headroom_levels)
        self.action_space = spaces.MultiDiscrete(
            [n for s in self.pipeline.stages
             for n in (len(s.variants), len(self.pipeline.batch_sizes), third)])
        self._forecast_rps = 0.0
        self.observation_space = spaces.Box(0.0, OBS_CLIP, (self.layout.size,), np.float32)
        self._window = np.zeros(0)
        self._window_start = 0
        self._t = 0
        self._decision: Decision | None = None
        self._last_stats: IntervalStats | None = None

    def _load_workload(self) -> tuple[np.ndarray, np.ndarray]:
        """The warm-up history and the playable trace (see `WorkloadConfig.warmup_s`)."""
        w = self.config.workload
        if w.source == "trace":
            assert w.trace_path is not None
            before = w.warmup_s if (w.start_s or 0) >= w.warmup_s else 0
            begin = (w.start_s or 0) - before
            trace = load_trace(w.trace_path, w.damping, begin or None, w.end_s)
            if w.scale != 1.0:
                trace = trace * w.scale  # fractions kept (the request simulator carries them)
            split = w.warmup_s if before == 0 else before
            if len(trace) <= split:
                raise ConfigError(f"trace {w.trace_path} has {len(trace)} s, not more than "
                                  f"its {w.warmup_s} s of warm-up history; use a longer trace "
                                  "or lower workload.warmup_s")
        else:
            split = w.warmup_s
            trace = synthetic_trace(w.pattern, w.warmup_s + w.window_s * w.synthetic_windows,
                                    w.seed, w.scale)
        return trace[:split].copy(), trace[split:].copy()

    # -- decisions -------------------------------------------------------------------------
    def decode(self, action: np.ndarray) -> Decision:
        """The `Decision` an action stands for; ActionError when it is out of range."""
        action = np.asarray(action).reshape(-1)
        nvec = self.action_space.nvec
        if action.shape != nvec.shape or not (
                np.issubdtype(action.dtype, np.integer) or np.all(action == np.round(action))
        ) or not np.all((action >= 0) & (action < nvec)):
            raise ActionError(
                f"action {action.tolist()} is outside {self.action_space}; give one "
                "[variant, batch index, replicas - 1] triple per stage")
        choices = []
        for i, stage in enumerate(self.pipeline.stages):
            v, b, r = (int(x) for x in action[3 * i: 3 * i + 3])
            variant = stage.variants[v]
            batch = self.pipeline.batch_sizes[b]
            replicas = r + 1 if self.config.action_mode == "absolute" else self._headroom_replicas(
                variant, batch, self.config.headroom_levels[r])
            choices.append(StageDecision(v, batch, replicas, variant.base_cores))
        return Decision(tuple(choices))

    def _headroom_replicas(self, variant: ModelVariant, batch: int, level: float) -> int:
        need = perf.replicas_for_rate(variant, batch, variant.base_cores,
                                      self._forecast_rps * level)
        return min(need, self.config.max_replicas)

    def encode(self, decision: Decision) -> np.ndarray:
        """The action that stands for ``decision`` (inverse of `decode`).

        In ``headroom`` mode replicas are only approximated (the level whose replica count
        is closest); baselines that must apply exact decisions run in ``absolute`` mode.
        """
        out = []
        for stage, c in zip(self.pipeline.stages, decision.stages, strict=True):
            if c.replicas > self.config.max_replicas:
                raise ActionError(f"{c.replicas} replicas exceed max_replicas="
                                  f"{self.config.max_replicas}")
            third = c.replicas - 1
            if self.config.action_mode == "headroom":
                variant = stage.variants[c.variant]
                third = min(range(len(self.config.headroom_levels)), key=lambda k: abs(
                    self._headroom_replicas(variant, c.batch, self.config.headroom_levels[k])
                    - c.replicas))
            out += [c.variant, self.pipeline.batch_sizes.index(c.batch), third]
        return np.array(out, dtype=self.action_space.dtype)

    def action_masks(self) -> np.ndarray:
        """Valid values of each action dimension, flattened (for sb3-contrib MaskablePPO)."""
        masks = [np.ones(n, dtype=bool) for n in self.action_space.nvec]
        budget = self.config.max_cores
        if budget is not None and self.config.action_mode == "absolute":
            min_cores = [min(v.base_cores for v in s.variants) for s in self.pipeline.stages]
            for i, stage_min in enumerate(min_cores):
                others = sum(min_cores) - stage_min
                r = np.arange(1, self.config.max_replicas + 1)
                masks[3 * i + 2] = r * stage_min <= budget - others
        return np.concatenate(masks)

    def _repair(self, decision: Decision) -> tuple[Decision, int]:
        budget = self.config.max_cores
        if budget is None:
            return decision, 0
        stages = list(decision.stages)
        repairs = 0
        while sum(perf.stage_cores(c) for c in stages) > budget:
            i = max(range(len(stages)), key=lambda k: perf.stage_cores(stages[k]))
            if stages[i].replicas == 1:
                raise ActionError(f"even one replica per stage exceeds max_cores={budget}; "
                                  "raise max_cores")
            c = stages[i]
            stages[i] = StageDecision(c.variant, c.batch, c.replicas - 1, c.cores)
            repairs += 1
        return Decision(tuple(stages)), repairs

    def initial_decision(self, rate_rps: float) -> Decision:
        """Cheapest variants at the smallest batch, with enough replicas for ``rate_rps``."""
        b = self.pipeline.batch_sizes[0]
        choices = []
        for stage in self.pipeline.stages:
            v = stage.variants[0]
            replicas = min(perf.replicas_for_rate(v, b, v.base_cores, rate_rps),
                           self.config.max_replicas)
            choices.append(StageDecision(0, b, replicas, v.base_cores))
        return self._repair(Decision(tuple(choices)))[0]

    # -- gym API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
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
        if self._decision is None:
            raise RuntimeError("call reset() before step()")
        decision, repairs = self._repair(self.decode(action))
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

    def upcoming_rates(self) -> np.ndarray:
        """The next interval's true rates (for oracle baselines only)."""
        return self._window[self._t: self._t + self.config.interval_s]

    def _observation(self) -> np.ndarray:
        layout = self.layout
        interval = self.config.interval_s
        h = layout.history_intervals
        obs = np.zeros(layout.size, dtype=np.float32)
        seen = self.history()
        if len(seen):
            tail = seen[-h * interval:]
            means = np.zeros(h)
            n_full = len(tail) // interval
            if n_full:
                means[h - n_full:] = tail[len(tail) - n_full * interval:].reshape(
                    n_full, interval).mean(axis=1)
            obs[:h] = means / layout.rate_scale
            obs[h] = seen[-interval:].max() / layout.rate_scale
        self._forecast_rps = self.predictor.predict(seen)
        obs[h + 1] = self._forecast_rps / layout.rate_scale
        stats = self._last_stats
        assert self._decision is not None
        pos = h + 2
        n_batches = max(len(self.pipeline.batch_sizes) - 1, 1)
        for i, (stage, c) in enumerate(zip(self.pipeline.stages, self._decision.stages,
                                           strict=True)):
            stage_p99 = stats.stage_p99_ms[i] if stats else 0.0
            obs[pos: pos + len(STAGE_FIELDS)] = (
                c.variant / max(len(stage.variants) - 1, 1),
                self.pipeline.batch_sizes.index(c.batch) / n_batches,
                c.replicas / self.config.max_replicas,
                perf.stage_throughput_rps(stage.variants[c.variant], c.batch, c.cores,
                                          c.replicas) / layout.rate_scale,
                stats.stage_utilisation[i] if stats else 0.0,
                stats.stage_queue[i] / (layout.rate_scale * interval) if stats else 0.0,
                stats.stage_dropped[i] / max(stats.arrived, 1) if stats else 0.0,
                perf.stage_cores(c) / self.scales.max_cores,
                stage.accuracy_ranks[c.variant],
                0.0 if math.isnan(stage_p99) else stage_p99 / self.pipeline.sla_ms,
            )
            pos += len(STAGE_FIELDS)
        if stats is not None:
            p99 = stats.p99_ms if not math.isnan(stats.p99_ms) else 0.0
            obs[pos: pos + 4] = (p99 / self.pipeline.sla_ms, stats.sla_violation_rate,
                                 stats.power_w / self.scales.max_power_w,
                                 stats.accuracy_sum / len(self.pipeline.stages))
        np.clip(obs, 0.0, OBS_CLIP, out=obs)
        return obs

    @property
    def decision(self) -> Decision | None:
        """The decision in force."""
        return self._decision

    @property
    def last_stats(self) -> IntervalStats | None:
        """The last interval's statistics (None right after reset)."""
        return self._last_stats

    def close(self) -> None:
        self.backend.close()
