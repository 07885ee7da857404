"""Typed configuration of `PipelineEnv` and its reward weights (the workload's settings are
`envs.workload.settings.WorkloadConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from envs.config.checks import FieldError, check_range
from envs.config.errors import ConfigError
from envs.config.suggest import did_you_mean
from envs.workload.settings import WorkloadConfig

OBSERVATION_VERSIONS = (1, 2)
"""The observation layouts `envs.observation` builds (``env.observation_version``)."""


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms (each term is scaled to about [0, 1]).

    reward = accuracy * acc - sla_violation * viol - cost * cores - energy * power
             - switching * switches - batch * batch_size
    See `envs.reward` for each term's definition.

    Provenance of the defaults (all assumed; none is cited or tuned by a search):

    * ``accuracy=1`` and ``energy=1``: the two objectives of the energy-aware reward at
      equal weight (each term is scaled to about [0, 1]);
    * ``sla_violation=10``: assumed, so that a 10 % violation rate costs as much as the
      whole accuracy range; IPA treats the SLA as a hard constraint, which a penalty
      this much larger than the other terms approximates;
    * ``switching=0.02``: assumed, a small damping of variant switches (each costs a
      cold start), small enough not to outweigh a better configuration;
    * ``cost=0`` and ``batch=0``: terms off (the ``ipa`` presets switch them on).
    """

    accuracy: float = 1.0
    sla_violation: float = 10.0
    cost: float = 0.0
    energy: float = 1.0
    switching: float = 0.02
    batch: float = 0.0

    def __post_init__(self) -> None:
        for name in ("accuracy", "sla_violation", "cost", "energy", "switching", "batch"):
            check_range(name, getattr(self, name), low=0,
                        fix="terms carry their own sign; 0 switches a term off")


REWARD_PRESETS: dict[str, RewardWeights] = {
    # IPA's objective: alpha * accuracy - beta * cores - gamma * batch, SLA as a constraint
    # (cited: arXiv 2308.12871, section 4). The weights are assumed, not IPA's: batch=0.05
    # on the normalised batch term keeps batching a tie-breaker (at most 0.05 of the
    # accuracy range), the role IPA's small gamma (agents/evaluation/config.py: 1e-6 on raw
    # batch sizes) plays in its ILP.
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
        cold_start_s: Delay before an added or switched replica serves (its base part;
            models with ``weights_gb`` in a profile with a load bandwidth add their load
            time, `envs.model.perf.model_load_s`).
        model_load_scale: Factor on that load time (0: loading takes no time; the
            comparison of issue 14 runs both).
        drop_limit_s: Requests older than this are dropped (None: 2 x SLA).
        batch_timeout_ms: Partial batches leave after this wait (None: SLA / (2 x stages)).
        predictor: Load forecaster for the observation: ``reactive`` or ``lstm``.
        predictor_path: A trained LSTM predictor (``LSTMPredictor.save``).
        history_intervals: How many past intervals' rates the observation shows.
        rate_scale_rps: Divides every rate in the observation. Fixed by config and saved
            with an agent (its ``config.yaml``), never taken from an episode's workload.
            Assumed default 34 req/s: the peak of IPA's damped Twitter windows, the scale the
            committed video agents trained with.
        observation_version: The observation's layout (`envs.observation`): 2 (default;
            ``ipa/Pipeline-v2``) adds replicas loading, the oldest queued request's age and
            nodes booting and powered per pool to version 1's (``ipa/Pipeline-v1``, what
            the committed agents were trained on; their saved configs say so).
        action_mode: ``absolute``: the third action of a stage is replicas - 1;
            ``headroom``: it picks a factor from ``headroom_levels`` and the stage gets the
            fewest replicas that serve forecast x factor (`perf.replicas_for_rate`).
        headroom_levels: Over-provisioning factors of the ``headroom`` action mode.
        reward: Reward weights (ignored fields of a preset are an error).
        reward_preset: ``ipa``, ``ipa_energy`` or ``energy``; replaces ``reward``.
        fleet: Override of the profile's fleet mode: ``elastic`` (nodes without allocated
            devices power off) or ``fixed`` (all stay on). None keeps the profile's.
        idle_power_scale: Factor on the profile's node static and device idle power
            (sensitivity runs of an assumed idle power use 0.5 and 2).
        node_boot_s: Override of every pool's node boot time (sensitivity runs of an
            assumed boot time); None keeps the profile's.
        node_hold_s: Override of every pool's hold time before an unneeded node powers off;
            None keeps the profile's.
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
    model_load_scale: float = 1.0
    drop_limit_s: float | None = None
    batch_timeout_ms: float | None = None
    predictor: Literal["reactive", "lstm"] = "reactive"
    predictor_path: str | None = None
    history_intervals: int = 6
    rate_scale_rps: float = 34.0
    observation_version: int = 2
    action_mode: Literal["absolute", "headroom"] = "absolute"
    headroom_levels: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
    reward: RewardWeights = field(default_factory=RewardWeights)
    reward_preset: str | None = None
    fleet: Literal["elastic", "fixed"] | None = None
    idle_power_scale: float = 1.0
    node_boot_s: float | None = None
    node_hold_s: float | None = None

    def __post_init__(self) -> None:
        self._check_ranges()
        if self.workload.window_s % self.interval_s:
            raise ConfigError(f"workload.window_s ({self.workload.window_s}) must be a multiple "
                              f"of interval_s ({self.interval_s})")
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
            raise FieldError("headroom_levels", f"must be a non-empty list of positive factors, "
                                                f"got {list(self.headroom_levels)}")

    def _check_ranges(self) -> None:
        """Each field's own range and unit (cross-field rules are in ``__post_init__``)."""
        check_range("interval_s", self.interval_s, low=1, unit="s")
        check_range("sla_ms", self.sla_ms, low=0, low_open=True, unit="ms",
                    fix="leave it out (null) to use the profile's SLA")
        if self.batch_sizes is not None and (not self.batch_sizes or min(self.batch_sizes) < 1
                                             or len(set(self.batch_sizes)) != len(
                                                 self.batch_sizes)):
            raise FieldError("batch_sizes", f"must be a non-empty list of distinct sizes >= 1, "
                                            f"got {list(self.batch_sizes)}; or null for the "
                                            "profile's")
        check_range("max_replicas", self.max_replicas, low=1)
        check_range("max_cores", self.max_cores, low=1, unit="cores",
                    fix="null means no budget")
        check_range("idle_power_scale", self.idle_power_scale, low=0, low_open=True,
                    fix="a factor on the profile's static and idle power (1 keeps them)")
        check_range("model_load_scale", self.model_load_scale, low=0,
                    fix="1 loads weights at the profile's bandwidth, 0 instantly")
        check_range("cold_start_s", self.cold_start_s, low=0, unit="s",
                    fix="0 means a new replica serves at once")
        check_range("node_boot_s", self.node_boot_s, low=0, unit="s",
                    fix="0 means a node serves as soon as it is powered; null keeps the "
                        "profile's")
        check_range("node_hold_s", self.node_hold_s, low=0, unit="s",
                    fix="0 powers an unneeded node off at once; null keeps the profile's")
        check_range("drop_limit_s", self.drop_limit_s, low=0, low_open=True, unit="s",
                    fix="null drops after 2 x SLA")
        check_range("batch_timeout_ms", self.batch_timeout_ms, low=0, low_open=True, unit="ms",
                    fix="null waits SLA / (2 x stages)")
        check_range("history_intervals", self.history_intervals, low=1)
        check_range("rate_scale_rps", self.rate_scale_rps, low=0, low_open=True, unit="req/s",
                    fix="a fixed scale of the observation's rates, saved with the agent")
        if self.observation_version not in OBSERVATION_VERSIONS:
            raise ConfigError(f"env.observation_version={self.observation_version!r} is not one "
                              f"of {list(OBSERVATION_VERSIONS)}; use 2 (1: the committed "
                              "agents' layout)")

    def with_workload(self, **changes: object) -> EnvConfig:
        """A copy with workload fields changed.

        Args:
            **changes: `WorkloadConfig` field -> new value.

        Returns:
            The new config (checked again by the dataclasses' own checks).
        """
        return replace(self, workload=replace(self.workload, **changes))
