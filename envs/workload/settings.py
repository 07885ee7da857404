"""`WorkloadConfig`: where an env's arrival rates come from (a synthetic pattern or a trace
file by path), the window it plays and the warm-up history before it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from envs.config.checks import FieldError, check_range
from envs.config.errors import ConfigError
from envs.config.suggest import did_you_mean
from envs.workload.synthetic import PATTERNS


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
        if self.source == "trace" and not self.trace_path:
            raise ConfigError("workload.source is 'trace' but workload.trace_path is not set; "
                              "give the trace file's path")
        if self.source == "synthetic" and self.pattern not in PATTERNS:
            raise ConfigError(f"workload.pattern {self.pattern!r} is unknown"
                              f"{did_you_mean(self.pattern, PATTERNS)}; choose one of {PATTERNS}")
        check_range("window_s", self.window_s, low=1, unit="s",
                    fix="an episode is a window of at least one interval")
        check_range("synthetic_windows", self.synthetic_windows, low=1)
        check_range("damping", self.damping, low=0, low_open=True,
                    fix="1 keeps the trace's rates (IPA used 8 for the Twitter trace)")
        check_range("scale", self.scale, low=0, low_open=True, fix="1 keeps the rates")
        check_range("seed", self.seed, low=0, fix="NumPy seeds are non-negative")
        check_range("start_s", self.start_s, low=0, unit="s")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise FieldError("end_s", f"({self.end_s}) must be greater than start_s "
                                      f"({self.start_s}); the range is [start_s, end_s)")
        check_range("end_s", self.end_s, low=1, unit="s")
        check_range("warmup_s", self.warmup_s, low=0, unit="s",
                    fix="the seconds of history before each window (0: none)")
