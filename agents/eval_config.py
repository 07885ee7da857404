"""Typed configuration of `evaluate.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agents.train_config import TrackingConfig
from envs.env_config import EnvConfig
from envs.errors import ConfigError
from envs.suggest import did_you_mean

POLICIES: tuple[str, ...] = (
    "ppo", "ipa", "ipa_energy", "fa2_low", "fa2_high", "rim", "hpa", "ray_serve",
    "static_low", "static_high", "random", "ipa_oracle",
)


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
        scale: Multiplies a synthetic window's rates (e.g. 0.25 for slow LLM stages).
    """

    name: str
    pattern: str = "bursty"
    seed: int = 1000
    segments: tuple[tuple[int, int], ...] = ()
    window_s: int = 1200
    scale: float = 1.0


@dataclass(frozen=True)
class IpaWeights:
    """IPA's objective weights: alpha x accuracy - beta x cores - gamma x batch
    (- delta x energy in joules for IPA + energy)."""

    alpha: float = 2.0
    beta: float = 1.0
    gamma: float = 1e-6
    delta: float = 0.05
    mode: Literal["sum", "product"] = "sum"


@dataclass(frozen=True)
class EvalConfig:
    """Everything `evaluate.py` needs.

    Attributes:
        name: Report folder name under ``output_dir``.
        env: The env every policy runs on (``backend: requests`` for reports).
        windows: The workloads.
        trace_damping: Damping applied to the ``--trace`` file (IPA: 8).
        policies: Policy names to run (``ppo`` needs ``--agent``).
        seeds: Simulator seeds; every policy runs on the same ones.
        ipa: Weights of the IPA objective.
        hpa_targets: Utilisation targets tried when tuning HPA on training windows.
        ray_targets: Ongoing-request targets tried when tuning Ray Serve.
        tuning_seed: Seed of the synthetic training windows used for tuning.
        baseline_variants: Variant choice of the scale-only baselines (HPA, Ray Serve).
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
    policies: tuple[str, ...] = tuple(p for p in POLICIES if p != "ppo")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ipa: IpaWeights = field(default_factory=IpaWeights)
    hpa_targets: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    ray_targets: tuple[float, ...] = (1.0, 2.0, 4.0)
    tuning_seed: int = 7
    baseline_variants: Literal["lowest", "highest"] = "lowest"
    output_dir: str = "reports"
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        for name in self.policies:
            if name not in POLICIES:
                raise ConfigError(f"unknown policy {name!r}{did_you_mean(name, POLICIES)}; "
                                  f"choose from {list(POLICIES)}")
        if not self.seeds:
            raise ConfigError("seeds must not be empty")
        if not self.windows:
            raise ConfigError("windows must not be empty")
        names = [w.name for w in self.windows]
        if len(set(names)) != len(names):
            raise ConfigError(f"window names must be unique, got {names}")
        for w in self.windows:
            if w.window_s % self.env.interval_s:
                raise ConfigError(f"windows.{w.name}.window_s must be a multiple of "
                                  f"env.interval_s ({self.env.interval_s})")
