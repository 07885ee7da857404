"""Synthetic workload patterns, the default when no trace file is given.

The generators reproduce the shape of IPA's four damped 1,200-second evaluation windows so
the product needs no external data to run. Trace files are read by `envs.workload.traces`; day-wise
splits and windows are in `envs.workload.day_split`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from envs.config.errors import ConfigError
from envs.config.suggest import did_you_mean

__all__ = ["PATTERNS", "synthetic_trace"]

PATTERNS: tuple[str, ...] = ("steady_low", "steady_high", "fluctuating", "bursty", "mixed")
MIXED_SEGMENT_S = 1200
"""Names of the synthetic workload patterns, after IPA's four evaluation windows."""


@dataclass(frozen=True)
class _PatternSpec:
    """Clip range of a synthetic pattern (IPA's damped window min and max)."""

    low: float
    high: float


_SPECS: dict[str, _PatternSpec] = {
    "steady_low": _PatternSpec(3.0, 8.0),
    "steady_high": _PatternSpec(23.0, 34.0),
    "fluctuating": _PatternSpec(3.0, 34.0),
    "bursty": _PatternSpec(3.0, 34.0),
}

_NOISE_PER_SQRT_RATE = 0.45
"""Noise standard deviation per sqrt(level); fits both steady windows (sd ~1 at 5, ~2.4 at 29)."""


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-variance noise with a little second-to-second correlation, as in the trace."""
    kernel = np.array([1.0, 0.5]) / math.hypot(1.0, 0.5)
    white = rng.standard_normal(n + 1)
    return np.convolve(white, kernel, mode="valid")


def _fluctuating_level(rng: np.random.Generator, n: int) -> np.ndarray:
    """Slow swings between ~5 and ~28 req/s with a period of about ten minutes."""
    period = rng.uniform(540.0, 660.0)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    t = np.arange(n, dtype=np.float64)
    return 5.0 + 23.0 * (0.5 - 0.5 * np.cos(2.0 * math.pi * t / period + phase))


def _bursty_level(rng: np.random.Generator, n: int) -> np.ndarray:
    """Quiet ~5.5 req/s with bursts to ~27 req/s: fast ramp up, plateau, slow decay."""
    base, peak = 5.5, 27.0
    level = np.full(n, base)
    t = int(rng.uniform(200.0, 500.0))  # first burst early, so short windows see one
    while t < n:
        up = int(rng.uniform(20.0, 60.0))
        plateau = int(rng.uniform(150.0, 400.0))
        down = int(rng.uniform(60.0, 180.0))
        shape = np.concatenate(
            [
                np.linspace(0.0, 1.0, up, endpoint=False),
                np.ones(plateau),
                np.linspace(1.0, 0.0, down, endpoint=False),
            ]
        )
        seg = shape[: max(0, n - t)]
        level[t : t + seg.size] = base + (peak - base) * seg
        t += shape.size + int(rng.uniform(400.0, 1000.0))
    return level


def synthetic_trace(pattern: str, duration_s: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Generate a seeded synthetic workload shaped like one of IPA's damped windows.

    Patterns (at scale 1): "steady_low" 3..8 req/s, mean ~5; "steady_high" 23..34, mean
    ~29; "fluctuating" 3..34, mean ~16.5 with ten-minute swings; "bursty" 3..34, mean ~12,
    quiet periods broken by bursts of several minutes; "mixed" cycles through the four,
    1,200 s of each in turn (each segment seeded from ``seed``), for training one agent
    on all of them.

    Args:
        pattern: One of PATTERNS.
        duration_s: Length of the trace in seconds (positive).
        seed: Seed of the generator; the same seed gives an identical trace.
        scale: Multiplies every (whole) rate; the result keeps its fraction (a low-rate
            pipeline's trace keeps its shape; the request simulator carries fractions
            from second to second).

    Returns:
        A float64 array of integer-valued, non-negative requests/s, one per second.

    Raises:
        ConfigError: Unknown pattern (with a suggestion), non-positive duration or scale.
    """
    if pattern not in _SPECS and pattern != "mixed":
        raise ConfigError(
            f"unknown workload pattern {pattern!r}{did_you_mean(str(pattern), PATTERNS)}: "
            f"choose one of {', '.join(PATTERNS)}"
        )
    if not isinstance(duration_s, int | np.integer) or duration_s <= 0:
        raise ConfigError(f"duration_s={duration_s!r} must be a positive integer of seconds")
    if not (isinstance(scale, Real) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale={scale!r} must be a positive finite number")
    if pattern == "mixed":
        basic = PATTERNS[:4]
        n_segments = -(-int(duration_s) // MIXED_SEGMENT_S)
        # Segment seeds come from a SeedSequence, so they never equal a small plain seed
        # that an evaluation window uses.
        seeds = np.random.SeedSequence([seed, 0x6D6978]).generate_state(n_segments)
        parts = [synthetic_trace(basic[i % 4], MIXED_SEGMENT_S, int(seeds[i]), scale)
                 for i in range(n_segments)]
        return np.concatenate(parts)[: int(duration_s)]
    spec = _SPECS[pattern]
    rng = np.random.default_rng(seed)
    n = int(duration_s)
    if pattern == "steady_low":
        level = np.full(n, 5.0)
    elif pattern == "steady_high":
        level = np.full(n, 29.0)
    elif pattern == "fluctuating":
        level = _fluctuating_level(rng, n)
    else:
        level = _bursty_level(rng, n)
    rates = level + _NOISE_PER_SQRT_RATE * np.sqrt(level) * _noise(rng, n)
    rates = np.clip(np.rint(rates), spec.low, spec.high).astype(np.float64)
    return rates if scale == 1.0 else rates * scale
