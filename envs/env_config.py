"""Typed configuration of `PipelineEnv`, its workload and its reward weights."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from envs.errors import ConfigError
from envs.suggest import did_you_mean


@dataclass(frozen=True)
class WorkloadConfig:
    """Where arrival rates come from.

    Attributes:
        source: ``synthetic`` (the embedded default, seeded) or ``trace`` (a file by path).
        pattern: Synthetic pattern: steady_low, steady_high, fluctuating or bursty.
        trace_path: Per-second rate trace (IPA's format or one value a line).
        damping: Divide (and floor) the trace's rates, as IPA did (8 for the Twitter trace).
        start_s: First second of the trace to use.
        end_s: One past the last second to use.
        window_s: Episode length in seconds (a window of the trace).
        synthetic_windows: How many windows long the synthetic trace is.
        scale: Multiply rates by this factor.
        seed: Seed of the synthetic generator (episodes sample windows with the env's RNG).
        warmup_s: Seconds of history every episode starts with, never played (assumed
            default 120 s: the 12 x 10 s input of IPA's LSTM predictor). A trace with
            ``start_s >= warmup_s`` takes them from the seconds before ``start_s`` (the
            preceding minutes); otherwise its first ``warmup_s`` seconds are history only. A
            synthetic workload generates them as a prefix of the same pattern.
    """

    source: Literal["synthetic", "trace"] = "synthetic"
    pattern: str = "bursty"
    trace_path: str | None = None
    damping: float = 1.0
    start_s: int | None = None
    end_s: int | None = None
    window_s: int = 1200
    synthetic_windows: int = 8
    scale: float = 1.0
    seed: int = 0
    warmup_s: int = 120

    def __post_init__(self) -> None:
        from envs.workloads import PATTERNS

        if self.source == "trace" and not self.trace_path:
            raise ConfigError("workload.source is 'trace' but workload.trace_path is not set; "
                              "give the trace file's path")
        if self.source == "synthetic" and self.pattern not in PATTERNS:
            raise ConfigError(f"workload.pattern {self.pattern!r} is unknown"
                              f"{did_you_mean(self.pattern, PATTERNS)}; choose one of {PATTERNS}")
        if self.window_s <= 0 or self.synthetic_windows <= 0:
            raise ConfigError("workload.window_s and workload.synthetic_windows must be > 0")
        if self.damping <= 0 or self.scale <= 0:
            raise ConfigError("workload.damping and workload.scale must be > 0")
        if self.warmup_s < 0:
            raise ConfigError(f"workload.warmup_s={self.warmup_s} must be >= 0 seconds")


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms (each term is scaled to about [0, 1]).

    reward = accuracy * acc - sla_violation * viol - cost * cores - energy * power
             - switching * switches - batch * batch_size
    See `envs.reward` for each term's definition.
    """

    accuracy: float = 1.0
    sla_violation: float = 10.0
    cost: float = 0.0
    energy: float = 1.0
    switching: float = 0.02
    batch: float = 0.0

    def __post_init__(self) -> None:
        for name in ("accuracy", "sla_violation", "cost", "energy", "switching", "batch"):
            if getattr(self, name) < 0:
                raise ConfigError(f"reward.{name} must be >= 0 (terms carry their own sign)")


REWARD_PRESETS: dict[str, RewardWeights] = {
    # IPA's objective: alpha * accuracy - beta * cores - gamma * batch, SLA as a constraint.
    "ipa": RewardWeights(accuracy=1.0, sla_violation=10.0, cost=1.0, energy=0.0,
                         switching=0.0, batch=0.05),
    # The same with energy as a first-class term.
    "ipa_energy": RewardWeights(accuracy=1.0, sla_violation=10.0, cost=1.0, energy=1.0,
                                switching=0.0, batch=0.05),
    "energy": RewardWeights(),
}


@dataclass(frozen=True)
class EnvConfig:
    """Everything `PipelineEnv` needs.

    Attributes:
        pipeline: A shipped pipeline name (``video``) or the path of a profile file.
        workload: Arrival rates.
        backend: ``fluid`` (fast, for training), ``requests`` (request level, for reports)
            or ``live`` (real model servers on this machine, `envs.live`).
        interval_s: Adaptation interval; one env step.
        sla_ms: Override of the profile's end-to-end SLA.
        batch_sizes: Override of the batch sizes policies may choose.
        max_replicas: Largest replica count per stage.
        max_cores: Budget of cores for the whole pipeline (None: no budget); decisions
            over it are repaired by removing replicas, and each repair is counted in info.
        cold_start_s: Delay before an added or switched replica serves.
        drop_limit_s: Requests older than this are dropped (None: 2 x SLA).
        batch_timeout_ms: Partial batches leave after this wait (None: SLA / (2 x stages)).
        predictor: Load forecaster for the observation: ``reactive`` or ``lstm``.
        predictor_path: A trained LSTM predictor (``LSTMPredictor.save``).
        history_intervals: How many past intervals' rates the observation shows.
        rate_scale_rps: Divides every rate in the observation. Fixed by config and saved
            with an agent (its ``config.yaml``), never taken from an episode's workload.
            Assumed default 34 req/s: the peak of IPA's damped Twitter windows, the scale the
            committed video agents trained with.
        action_mode: ``absolute``: the third action of a stage is replicas - 1;
            ``headroom``: it picks a factor from ``headroom_levels`` and the stage gets the
            fewest replicas that serve forecast x factor (`perf.replicas_for_rate`).
        headroom_levels: Over-provisioning factors of the ``headroom`` action mode.
        reward: Reward weights (ignored fields of a preset are an error).
        reward_preset: ``ipa``, ``ipa_energy`` or ``energy``; replaces ``reward``.
    """

    pipeline: str = "video"
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    backend: Literal["fluid", "requests", "live"] = "fluid"
    interval_s: int = 10
    sla_ms: float | None = None
    batch_sizes: tuple[int, ...] | None = None
    max_replicas: int = 24
    max_cores: int | None = None
    cold_start_s: float = 2.0
    drop_limit_s: float | None = None
    batch_timeout_ms: float | None = None
    predictor: Literal["reactive", "lstm"] = "reactive"
    predictor_path: str | None = None
    history_intervals: int = 6
    rate_scale_rps: float = 34.0
    action_mode: Literal["absolute", "headroom"] = "absolute"
    headroom_levels: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
    reward: RewardWeights = field(default_factory=RewardWeights)
    reward_preset: str | None = None

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ConfigError("interval_s must be > 0")
        if self.workload.window_s % self.interval_s:
            raise ConfigError(f"workload.window_s ({self.workload.window_s}) must be a multiple "
                              f"of interval_s ({self.interval_s})")
        if self.max_replicas < 1:
            raise ConfigError("max_replicas must be >= 1")
        if self.predictor == "lstm" and not self.predictor_path:
            raise ConfigError("predictor 'lstm' needs predictor_path (a model saved by "
                              "LSTMPredictor.save; train one with LSTMPredictor.fit)")
        if self.reward_preset is not None:
            if self.reward_preset not in REWARD_PRESETS:
                raise ConfigError(f"reward_preset {self.reward_preset!r} is unknown"
                                  f"{did_you_mean(self.reward_preset, REWARD_PRESETS)}; "
                                  f"choose one of {sorted(REWARD_PRESETS)}")
            if self.reward != RewardWeights() and self.reward != REWARD_PRESETS[
                    self.reward_preset]:
                raise ConfigError("set either reward_preset or reward weights, not both")
            object.__setattr__(self, "reward", REWARD_PRESETS[self.reward_preset])
        if not self.headroom_levels or min(self.headroom_levels) <= 0:
            raise ConfigError("headroom_levels must be a non-empty list of positive factors")
        if self.history_intervals < 1:
            raise ConfigError("history_intervals must be >= 1")
        if not self.rate_scale_rps > 0:
            raise ConfigError(f"rate_scale_rps={self.rate_scale_rps} must be > 0 req/s")

    def with_workload(self, **changes: object) -> EnvConfig:
        """A copy with workload fields changed."""
        return replace(self, workload=replace(self.workload, **changes))
