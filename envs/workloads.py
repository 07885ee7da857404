"""Workload traces: loading request-rate files, synthetic default patterns, day-wise splits.

A trace is a 1-D float64 array of requests per second, one value per second. Files follow
IPA's format (whitespace-separated numbers on one or many lines, e.g. the Twitter trace as one
line of 1,899,061 integers) or hold one value a line. The synthetic generators reproduce the
shape of IPA's four damped 1,200-second evaluation windows so the product needs no external
data to run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np

from envs.errors import ConfigError, TraceError
from envs.suggest import did_you_mean

__all__ = [
    "DAY_S",
    "PATTERNS",
    "TraceSplit",
    "load_trace",
    "sample_window",
    "split_by_day",
    "synthetic_trace",
    "windows",
]

DAY_S = 86_400
"""Seconds in one trace day."""

PATTERNS: tuple[str, ...] = ("steady_low", "steady_high", "fluctuating", "bursty", "mixed")
MIXED_SEGMENT_S = 1200
"""Names of the synthetic workload patterns, after IPA's four evaluation windows."""

_FORMAT_HINT = "a trace holds non-negative requests/s values separated by whitespace"


# --------------------------------------------------------------------------- loading


def _bad_token(token: str) -> str | None:
    """Return why a trace token is unusable, or None when it is a valid rate."""
    try:
        value = float(token)
    except ValueError:
        return "is not a number"
    if not math.isfinite(value):
        return "is not finite (NaN or infinity)"
    if value < 0:
        return "is negative"
    return None


def _locate_error(path: Path, text: str) -> TraceError:
    """Scan a trace line by line and build the error for its first bad token."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        for token in line.split():
            reason = _bad_token(token)
            if reason is not None:
                return TraceError(
                    f"trace file {path}, line {lineno}: token {token!r} {reason}; {_FORMAT_HINT}"
                )
    return TraceError(f"trace file {path}: could not parse the values; {_FORMAT_HINT}")


def _read_text(path: Path) -> str:
    """Read a trace file, turning I/O problems into a TraceError with the fix."""
    if not path.exists():
        raise TraceError(
            f"trace file {path} does not exist: pass the path of a workload trace "
            f"({_FORMAT_HINT}) or use a synthetic pattern, one of {', '.join(PATTERNS)}"
        )
    if path.is_dir():
        raise TraceError(f"trace file {path} is a directory: pass the path of a trace file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(
            f"trace file {path} is not UTF-8 text (byte {exc.start}); {_FORMAT_HINT}"
        ) from exc
    except OSError as exc:
        raise TraceError(f"trace file {path} cannot be read: {exc}") from exc


def _check_window(start: int | None, end: int | None) -> None:
    """Reject negative or reversed [start, end) bounds."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 0):
            raise ConfigError(f"trace {name}={value!r} must be a non-negative integer second")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"trace window end={end} must be greater than start={start}")


def load_trace(
    path: str | Path,
    damping: float = 1.0,
    start: int | None = None,
    end: int | None = None,
) -> np.ndarray:
    """Load a request-rate trace, one value per second.

    Args:
        path: Text file of whitespace-separated numbers (IPA's one-line format or one value
            a line). Integers and floats are accepted.
        damping: Divide every value by this factor and take the integer floor, as IPA does
            (IPA's windows use 8). The default 1.0 leaves values untouched.
        start: First second to keep (inclusive); None keeps from the beginning.
        end: Second to stop at (exclusive); None keeps to the end.

    Returns:
        A float64 array of requests/s for seconds [start, end).

    Raises:
        TraceError: The file is missing, unreadable or empty, holds a token that is not a
            finite non-negative number (the message names the file, line and token), or the
            window selects no seconds.
        ConfigError: damping is not a positive finite number, or start/end are invalid.
    """
    path = Path(path)
    if not (isinstance(damping, Real) and math.isfinite(damping) and damping > 0):
        raise ConfigError(f"trace damping={damping!r} must be a positive finite number")
    _check_window(start, end)
    text = _read_text(path)
    tokens = text.split()
    if not tokens:
        raise TraceError(f"trace file {path}, line 1: file is empty; {_FORMAT_HINT}")
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        raise _locate_error(path, text) from None
    if not (np.isfinite(values).all() and (values >= 0).all()):
        raise _locate_error(path, text)
    window = values[start:end]
    if window.size == 0:
        raise TraceError(
            f"trace file {path} holds {values.size} seconds; the window "
            f"[start={start}, end={end}) selects none: pick start < {values.size}"
        )
    window = np.ascontiguousarray(window, dtype=np.float64)
    if damping != 1.0:
        window = np.floor(window / damping)
    return window


# --------------------------------------------------------------------------- synthetic


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


# --------------------------------------------------------------------------- splitting


@dataclass(frozen=True, eq=False)
class TraceSplit:
    """Disjoint train/validation/test parts of a trace, cut at day boundaries.

    Attributes:
        train: Seconds of the training days.
        val: Seconds of the validation days (may be empty when val_days is 0).
        test: Seconds of the test days.
        bounds: Part name -> (start, end) seconds [start, end) in the source trace.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    bounds: dict[str, tuple[int, int]]


def split_by_day(
    trace: np.ndarray,
    train_days: int,
    val_days: int,
    test_days: int | None = None,
    day_s: int = DAY_S,
) -> TraceSplit:
    """Cut a trace into consecutive train, validation and test days.

    Training comes first, then validation, then test, so an agent is never tested on
    seconds it trained on.

    Args:
        trace: Per-second rates.
        train_days: Whole days for training (at least 1).
        val_days: Whole days for validation (0 or more).
        test_days: Whole days for testing; None takes everything after validation.
        day_s: Seconds per day (86,400; smaller in tests).

    Returns:
        The TraceSplit with copies of the three parts and their bounds.

    Raises:
        ConfigError: Non-positive sizes or a trace too short for the requested days.
    """
    trace = np.asarray(trace, dtype=np.float64)
    if day_s <= 0:
        raise ConfigError(f"day_s={day_s} must be positive")
    if train_days < 1 or val_days < 0 or (test_days is not None and test_days < 1):
        raise ConfigError(
            f"split days train={train_days}, val={val_days}, test={test_days}: train and "
            "test need at least 1 day, validation 0 or more"
        )
    train_end = train_days * day_s
    val_end = train_end + val_days * day_s
    test_end = trace.size if test_days is None else val_end + test_days * day_s
    if test_end > trace.size or val_end >= trace.size:
        raise ConfigError(
            f"trace of {trace.size} s ({trace.size / day_s:.2f} days of {day_s} s) is too "
            f"short for train={train_days}, val={val_days}, test={test_days} days: "
            "ask for fewer days"
        )
    bounds = {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, test_end)}
    return TraceSplit(
        train=trace[:train_end].copy(),
        val=trace[train_end:val_end].copy(),
        test=trace[val_end:test_end].copy(),
        bounds=bounds,
    )


def _check_window_s(trace: np.ndarray, window_s: int) -> None:
    """Reject a window length that is not positive or longer than the trace."""
    if window_s <= 0 or window_s > trace.size:
        raise ConfigError(
            f"window_s={window_s} must be between 1 and the trace length {trace.size} s"
        )


def sample_window(trace: np.ndarray, window_s: int, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of a contiguous window of window_s seconds at a uniform random start.

    Raises:
        ConfigError: window_s is not positive or exceeds the trace length.
    """
    trace = np.asarray(trace, dtype=np.float64)
    _check_window_s(trace, window_s)
    start = int(rng.integers(0, trace.size - window_s + 1))
    return trace[start : start + window_s].copy()


def windows(trace: np.ndarray, window_s: int, stride_s: int | None = None) -> Iterator[np.ndarray]:
    """Yield copies of the full windows of window_s seconds, starting every stride_s seconds.

    Args:
        trace: Per-second rates.
        window_s: Window length in seconds.
        stride_s: Seconds between window starts; None means window_s (no overlap).

    Raises:
        ConfigError: window_s or stride_s is not positive, or window_s exceeds the trace.
    """
    trace = np.asarray(trace, dtype=np.float64)
    _check_window_s(trace, window_s)
    stride = window_s if stride_s is None else stride_s
    if stride <= 0:
        raise ConfigError(f"stride_s={stride_s} must be positive")
    return (trace[s : s + window_s].copy() for s in range(0, trace.size - window_s + 1, stride))
