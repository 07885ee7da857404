"""Typed configuration of `evaluate.py`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agents.runs.train_config import TrackingConfig, TrainConfig
from envs.config.checks import check_range
from envs.config.errors import ConfigError
from envs.config.suggest import did_you_mean
from envs.env_config import EnvConfig

POLICIES: tuple[str, ...] = (
    "ppo", "ipa", "ipa_tuned", "ipa_energy", "ilp_reward", "fa2_low", "fa2_high", "rim", "hpa",
    "ray_serve", "static_low", "static_high", "random", "ipa_oracle", "mpc", "residual",
    "ipa_energy_matched",
)
LEARNED: tuple[str, ...] = ("ppo", "residual")
"""Policies played by ``--agent`` folders: ``ppo`` (an agent that chooses the configuration)
and ``residual`` (one trained with ``agent.residual``: it adjusts IPA's ILP,
`agents.policies.residual_agent`). A folder plays as the one its saved config says."""
OPT_IN: tuple[str, ...] = ("ppo", "mpc", "residual", "ipa_energy_matched")
"""Policies a config must name: ``ppo`` and ``residual`` (need ``--agent``), ``mpc`` (the
receding-horizon planner, `agents.policies.mpc`) and ``ipa_energy_matched`` (the energy-aware
ILP at IPA's accuracy, `agents.policies.matched`); left out of the default list so committed
reports keep their policy set."""
ORACLES: tuple[str, ...] = ("ipa_oracle",)
"""Policies that read the next interval's true rates by design (labelled in reports)."""


@dataclass(frozen=True)
class WindowSpec:
    """One evaluation workload.

    Attributes:
        name: Workload name in the report (IPA's: bursty, steady_low, steady_high,
            fluctuating).
        pattern: Synthetic pattern (used when ``segments`` is empty).
        seed: Seed of the synthetic pattern (held out: differs from training seeds).
        segments: ``[start_s, end_s)`` pieces of the trace given with ``--trace``,
            concatenated (IPA's steady_high plays one piece twice).
        window_s: Length of a synthetic window.
        scale: Multiplies the window's rates (fractions kept: the request simulator
            carries them from second to second): synthetic or trace
            (`envs.workload.day_split.capacity_scale` states the rule for a pipeline far from
            video's capacity).
    """

    name: str
    pattern: str = "bursty"
    seed: int = 1000
    segments: tuple[tuple[int, int], ...] = ()
    window_s: int = 1200
    scale: float = 1.0


@dataclass(frozen=True)
class DaySplit:
    """Which days of the ``--trace`` tune the baselines; the rest of IPA's first 14 days
    train the agents (`train.py`); no day holding an evaluation window may be used.

    Attributes:
        train_days: Days the agents train on (checked against every ``--agent``).
        val_days: Days on which HPA, Ray Serve, ipa_tuned and ipa_energy are tuned.
        day_s: Seconds per day.
        tuning_windows: Windows sampled from the validation days for tuning: as many and as
            long as the agents' validation windows (``run.n_eval_episodes`` 6 of
            ``env.workload.window_s`` 1200 s in configs/train), so the baselines are chosen
            on as much of the validation days as the agents' checkpoints (two 600-s windows
            peaked at a third of the evaluation windows' load and chose HPA's 1.0, which
            then violated 74-82 % of the SLA on the evaluation windows).
        tuning_window_s: Their length.
    """

    train_days: tuple[int, ...] = tuple(range(12))
    val_days: tuple[int, ...] = (12, 13)
    day_s: int = 86_400
    tuning_windows: int = 6
    tuning_window_s: int = 1200


@dataclass(frozen=True)
class HeldOut:
    """The second evaluation set: windows sampled from held-out days with a fixed seed.

    Attributes:
        windows: How many (0: none).
        days: Days to sample from (default: the trace's days after IPA's first 14).
        window_s: Length of each window.
        seed: Sampler seed.
    """

    windows: int = 0
    days: tuple[int, ...] = tuple(range(14, 22))
    window_s: int = 1200
    seed: int = 2024


@dataclass(frozen=True)
class IpaWeights:
    """IPA's objective weights: alpha x accuracy - beta x cores - gamma x batch
    (- delta x energy in joules for IPA + energy), and what the IPA family does when no
    decision is feasible: ``keep`` the current configuration (IPA's rule) or ``fallback``
    to the fastest variants at the replica cap (the package's earlier choice).

    ``alpha`` 2 and ``beta`` 1 are IPA's video-pipeline weights (cited:
    ``data/configs/final/video-1.yaml`` of IPA's code, `ipa_baseline.rules`); ``gamma``
    is a tie-breaker on batch size (assumed; small enough not to move a decision);
    ``delta`` is assumed and only a default: ``ipa_energy`` tunes it on validation days
    (``ipa_energy_deltas``)."""

    alpha: float = 2.0
    beta: float = 1.0
    gamma: float = 1e-6
    delta: float = 0.05
    mode: Literal["sum", "product"] = "sum"
    on_infeasible: Literal["keep", "fallback"] = "keep"


@dataclass(frozen=True)
class TuningConfig:
    """How the baselines' one parameter each is tuned on validation windows: on the
    evaluation's own simulator (``env.backend``), over several simulator seeds, ties going
    to the lower energy, and a grid whose best value is at its edge extended by one step
    (arithmetic, or geometric for a grid spanning 10x or more) while the value is valid.

    Attributes:
        seeds: Simulator seeds every candidate plays each validation window with (assumed
            default 2: the evaluation plays 5; more multiplies tuning time).
        max_extensions: Steps a grid may grow past each edge (assumed default 2: one step
            would stop at the edge again on a monotone score; the chosen value is reported
            as on its edge when it still is).
    """

    seeds: tuple[int, ...] = (0, 1)
    max_extensions: int = 2

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("tuning.seeds must not be empty; give the simulator seeds every "
                              "candidate plays (e.g. [0, 1])")
        check_range("max_extensions", self.max_extensions, low=0,
                    fix="0 keeps the configured grids as they are")


@dataclass(frozen=True)
class EvalConfig:
    """Everything `evaluate.py` needs.

    Attributes:
        name: Report folder name under ``output_dir``.
        env: The env every policy runs on (``backend: requests`` for reports).
        windows: The workloads.
        trace_damping: Damping applied to the ``--trace`` file (IPA: 8).
        trace_scale: Factor on the damped trace for every window cut from it (evaluation,
            held-out, tuning) and for the training peak that sizes the static baselines:
            the capacity rule `envs.workload.day_split.capacity_scale` for a pipeline far from
            video's capacity (fractions kept).
        policies: Policy names to run (default: all but `OPT_IN`; ``ppo`` and ``residual``
            need ``--agent`` folders of their kind; ``mpc`` plans 3 intervals with
            ``ipa_energy``'s tuned weight and its own tuned switching weight).
        seeds: Simulator seeds; every policy runs on the same ones.
        ipa: Weights of the IPA objective.
        hpa_targets: Utilisation targets tried when tuning HPA on validation windows.
        ray_targets: Ongoing-request targets tried when tuning Ray Serve.
        ipa_headrooms: Headroom factors tried when tuning ipa_tuned.
        ipa_energy_deltas: Energy weights (per joule) tried when tuning ipa_energy; the
            scale depends on the pipeline's joules per interval (GPU pipelines need ~1e-4).
        mpc_switch_weights: The MPC's objective cost per added replica
            (`agents.policies.mpc.MPCPolicy`'s ``switch_weight``, in the objective's units:
            IPA's cost weight x dollars per hour), tuned after ``ipa_energy``; one value
            is used as it is (default 0: loading energy only).
        tuning_seed: Seed of the synthetic validation windows (synthetic evaluations) and
            of the training trace that sizes the static baselines and RIM.
        tuning: How the baselines are tuned (`TuningConfig`).
        days: The day split of a ``--trace`` (tuning on validation days).
        heldout: Windows sampled from held-out days (needs ``--trace``).
        baseline_variants: Variant choice of the scale-only baselines (HPA, Ray Serve).
        agent_model: Which model of each ``--agent`` folder plays: ``final`` (end of
            training) or ``best`` (the checkpoint with the best reward on the agent's
            validation days, chosen during training; never on evaluation windows).
        output_dir: Where report folders go.
        tracking: wandb settings (offline by default).
    """

    name: str = "default"
    env: EnvConfig = field(default_factory=lambda: EnvConfig(backend="requests"))
    windows: tuple[WindowSpec, ...] = (
        WindowSpec("bursty", "bursty"), WindowSpec("steady_low", "steady_low"),
        WindowSpec("steady_high", "steady_high"), WindowSpec("fluctuating", "fluctuating"),
    )
    trace_damping: float = 8.0
    trace_scale: float = 1.0
    policies: tuple[str, ...] = tuple(p for p in POLICIES if p not in OPT_IN)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ipa: IpaWeights = field(default_factory=IpaWeights)
    hpa_targets: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    ray_targets: tuple[float, ...] = (1.0, 2.0, 4.0)
    ipa_headrooms: tuple[float, ...] = (1.0, 1.1, 1.25, 1.5)
    ipa_energy_deltas: tuple[float, ...] = (0.01, 0.05, 0.2)
    mpc_switch_weights: tuple[float, ...] = (0.0,)
    tuning_seed: int = 7
    tuning: TuningConfig = field(default_factory=TuningConfig)
    days: DaySplit = field(default_factory=DaySplit)
    heldout: HeldOut = field(default_factory=HeldOut)
    baseline_variants: Literal["lowest", "highest"] = "lowest"
    agent_model: Literal["final", "best"] = "final"
    output_dir: str = "reports"
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        for name in self.policies:
            if name not in POLICIES:
                raise ConfigError(f"unknown policy {name!r}{did_you_mean(name, POLICIES)}; "
                                  f"choose from {list(POLICIES)}")
        if not self.seeds:
            raise ConfigError("seeds must not be empty")
        for key in ("hpa_targets", "ray_targets", "ipa_headrooms", "ipa_energy_deltas",
                    "mpc_switch_weights"):
            if not getattr(self, key):  # the loader has checked each value is a finite number
                raise ConfigError(f"{key} must list one or more values to tune over, got []")
        if not (math.isfinite(self.trace_scale) and self.trace_scale > 0):
            raise ConfigError(f"trace_scale must be a positive factor, got {self.trace_scale}")
        if not self.windows and not self.heldout.windows:
            raise ConfigError("windows must not be empty (or set heldout.windows)")
        names = [w.name for w in self.windows]
        if len(set(names)) != len(names):
            raise ConfigError(f"window names must be unique, got {names}")
        for w in self.windows:
            if w.window_s % self.env.interval_s:
                raise ConfigError(f"windows.{w.name}.window_s must be a multiple of "
                                  f"env.interval_s ({self.env.interval_s})")
            if w.segments and w.segments[0][0] < self.env.workload.warmup_s:
                raise ConfigError(f"windows.{w.name} starts at second {w.segments[0][0]}, "
                                  f"before {self.env.workload.warmup_s} s of warm-up history; "
                                  "start it later or lower env.workload.warmup_s")
        from envs.workload.day_split import refuse_overlap

        d = self.days
        refuse_overlap({"validation (days.val_days)": [(x * d.day_s, (x + 1) * d.day_s)
                                                       for x in d.val_days],
                        "training (days.train_days)": [(x * d.day_s, (x + 1) * d.day_s)
                                                       for x in d.train_days]},
                       self.trace_windows(), d.day_s)
        if set(self.heldout.days) & (set(d.val_days) | set(d.train_days)):
            raise ConfigError("heldout.days overlap days.train_days or days.val_days; hold "
                              "out other days")

    def trace_windows(self) -> dict[str, tuple[tuple[int, int], ...]]:
        """Window name -> its trace segments, for the windows cut from ``--trace``.

        Returns:
            ``{window name: ((start_s, end_s), ...)}`` for the trace windows only.
        """
        return {w.name: w.segments for w in self.windows if w.segments}

    @property
    def uses_trace(self) -> bool:
        """Whether any window (or the held-out set) is cut from ``--trace``."""
        return bool(self.trace_windows()) or self.heldout.windows > 0


def refuse_training_overlap(trained: TrainConfig, config: EvalConfig,
                            trace_name: str | None) -> None:
    """Refuse an agent whose training or validation seconds share a day with an
    evaluation window of the same trace file.

    Args:
        trained: The agent's saved training config.
        config: The evaluation config.
        trace_name: File name of ``--trace`` (None: no trace windows, nothing to check).

    Raises:
        ConfigError: The agent trained or validated on a day holding an evaluation window.
    """
    from agents.runs.validation_split import split_env_configs
    from envs.workload.day_split import refuse_overlap

    w = trained.env.workload
    if (trace_name is None or w.source != "trace" or w.trace_path is None
            or Path(w.trace_path).name != trace_name):
        return
    train_env, val_env = split_env_configs(trained.env, trained.eval)
    used = {}
    for part, env in (("training", train_env), ("validation", val_env)):
        start, end = env.workload.start_s or 0, env.workload.end_s
        used[f"the agent's {part}"] = [(start, end if end is not None else _TRACE_END_S)]
    refuse_overlap(used, config.trace_windows(), config.days.day_s)


_TRACE_END_S = 10**8
"""Stands for "to the end of the trace" in an unbounded training range (about 3 years)."""
