"""Which days of a trace train, validate and evaluate; windows; held-out windows; trace
scaling.

The protocol (docs/protocol.md): training and validation use IPA's first 14 days of the
Twitter trace minus every day that holds an evaluation window; a check refuses any
overlap. A second evaluation set samples windows from the held-out days with a fixed
seed. A trace is scaled to a pipeline whose capacity differs far from the video
pipeline's by the stated rule of `capacity_scale`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from envs.config.errors import ConfigError
from envs.model import node_power, perf
from envs.model.spec import Pipeline

__all__ = [
    "DAY_S",
    "IPA_TRAINING_DAYS",
    "TraceSplit",
    "capacity_rps",
    "capacity_scale",
    "days_of",
    "refuse_overlap",
    "sample_heldout_starts",
    "sample_window",
    "split_by_day",
    "windows",
]

DAY_S = 86_400
"""Seconds in one trace day."""

IPA_TRAINING_DAYS = 14
"""IPA trained its LSTM predictor on the first 14 days of the Twitter trace (cited:
arXiv 2308.12871); our training and validation days come from the same 14."""

SCALE_TOLERANCE = 2.0
"""A pipeline whose capacity is within this factor of the reference's plays the trace
unscaled (assumed: a factor of two keeps the load inside what the fleet can serve)."""


def days_of(start_s: int, end_s: int, day_s: int = DAY_S) -> set[int]:
    """The days that seconds [start_s, end_s) touch.

    Args:
        start_s: First second.
        end_s: Second after the last.
        day_s: Seconds per day.

    Returns:
        Day indices (empty for an empty range).
    """
    if end_s <= start_s:
        return set()
    return set(range(start_s // day_s, (end_s - 1) // day_s + 1))


def refuse_overlap(used: dict[str, Iterable[tuple[int, int]]],
                   evaluated: dict[str, Iterable[tuple[int, int]]],
                   day_s: int = DAY_S) -> None:
    """Refuse training or validation seconds on a day that holds an evaluation window.

    Args:
        used: Name (e.g. ``training``) -> its [start_s, end_s) ranges of trace seconds.
        evaluated: Window name -> its [start_s, end_s) segments.
        day_s: Seconds per day.

    Raises:
        ConfigError: Naming the part, the window and the shared days.
    """
    eval_days = {name: set().union(*(days_of(a, b, day_s) for a, b in segs))
                 for name, segs in ((n, list(s)) for n, s in evaluated.items())}
    for part, ranges in used.items():
        days = set().union(*(days_of(a, b, day_s) for a, b in ranges))
        for window, held in eval_days.items():
            shared = sorted(days & held)
            if shared:
                raise ConfigError(
                    f"{part} data covers day(s) {shared}, which hold evaluation window "
                    f"{window!r}; train and validate on other days (IPA's first "
                    f"{IPA_TRAINING_DAYS} days minus the evaluation days), or, for a trace "
                    "that is not IPA's, set days.train_days=[] and days.val_days=[]")


def sample_heldout_starts(trace: np.ndarray, days: Sequence[int], window_s: int, n: int,
                          seed: int, warmup_s: int, day_s: int = DAY_S) -> list[int]:
    """``n`` window starts on held-out days, sampled with a fixed seed.

    A window lies inside one day, after ``warmup_s`` seconds of that day's history, on a
    10-second grid, and has no zero second (the trace's daily collection gaps read as 0).

    Args:
        trace: The whole per-second trace.
        days: Held-out days to sample from.
        window_s: Window length.
        n: How many windows.
        seed: Seed of the sampler (the same seed gives the same windows).
        warmup_s: History each window needs before it, inside the trace.
        day_s: Seconds per day.

    Returns:
        Sorted start seconds (distinct).

    Raises:
        ConfigError: Not enough gap-free windows on those days.
    """
    candidates = []
    for day in sorted(set(days)):
        first = day * day_s + warmup_s
        last = min((day + 1) * day_s, trace.size) - window_s
        for start in range(first - first % 10, last + 1, 10):
            if start >= warmup_s and trace[start:start + window_s].min() > 0:
                candidates.append(start)
    if len(candidates) < n:
        raise ConfigError(f"days {sorted(set(days))} hold {len(candidates)} gap-free windows "
                          f"of {window_s} s, fewer than the {n} asked for; ask for fewer")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for start in rng.permutation(candidates):
        if all(abs(int(start) - c) >= window_s for c in chosen):
            chosen.append(int(start))
        if len(chosen) == n:
            return sorted(chosen)
    raise ConfigError(f"cannot place {n} non-overlapping windows of {window_s} s on days "
                      f"{sorted(set(days))}; ask for fewer")


def capacity_rps(pipeline: Pipeline, max_replicas: int) -> float:
    """Largest rate the pipeline serves with its fastest (variant, batch) per stage at
    ``max_replicas`` base-core replicas: the bottleneck stage's `perf.stage_throughput_rps`.

    Args:
        pipeline: The pipeline.
        max_replicas: Replicas per stage.

    Returns:
        Requests per second.
    """
    return min(max(perf.stage_throughput_rps(v, b, v.base_cores, max_replicas)
                   for v in stage.variants for b in stage.batch_sizes)
               for stage in pipeline.stages)


def fleet_capacity_rps(pipeline: Pipeline, max_replicas: int) -> float:
    """An upper bound on the rate the whole fleet serves: per stage its best replica
    throughput (`perf.replica_throughput_rps` at its base cores and any knob value) times the
    replicas its pool holds (at most ``max_replicas``), the bottleneck stage's (stages that
    share a pool are each given all of it).

    Args:
        pipeline: The pipeline and its pools.
        max_replicas: Replicas per stage.

    Returns:
        Requests per second.
    """
    return min(max(perf.replica_throughput_rps(v, b, v.base_cores)
                   * node_power.pool_replica_limit(pipeline, v, v.base_cores, max_replicas)
                   for v in stage.variants for b in stage.batch_sizes)
               for stage in pipeline.stages)


def capacity_scale(pipeline: Pipeline, reference: Pipeline, max_replicas: int) -> float:
    """The factor by which to multiply (then floor) a trace made for ``reference``.

    Rule: 1 when the two capacities (`capacity_rps`) are within `SCALE_TOLERANCE` of each
    other; otherwise their ratio, rounded to two significant digits. IPA's damped Twitter
    windows (peak 34 req/s) were made for its video pipeline.

    Args:
        pipeline: The pipeline that will play the trace.
        reference: The pipeline the trace was made for.
        max_replicas: Replicas per stage of both.

    Returns:
        The factor.
    """
    ratio = capacity_rps(pipeline, max_replicas) / capacity_rps(reference, max_replicas)
    if 1.0 / SCALE_TOLERANCE <= ratio <= SCALE_TOLERANCE:
        return 1.0
    return float(f"{ratio:.2g}")


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
    """A copy of a contiguous window of window_s seconds at a uniform random start.

    Args:
        trace: Per-second rates.
        window_s: Window length in seconds.
        rng: Draws the start.

    Returns:
        The window.

    Raises:
        ConfigError: window_s is not positive or exceeds the trace length.
    """
    trace = np.asarray(trace, dtype=np.float64)
    _check_window_s(trace, window_s)
    start = int(rng.integers(0, trace.size - window_s + 1))
    return trace[start : start + window_s].copy()


def windows(trace: np.ndarray, window_s: int, stride_s: int | None = None) -> Iterator[np.ndarray]:
    """Copies of the full windows of window_s seconds, starting every stride_s seconds.

    Args:
        trace: Per-second rates.
        window_s: Window length in seconds.
        stride_s: Seconds between window starts; None means window_s (no overlap).

    Returns:
        An iterator over the windows.

    Raises:
        ConfigError: window_s or stride_s is not positive, or window_s exceeds the trace.
    """
    trace = np.asarray(trace, dtype=np.float64)
    _check_window_s(trace, window_s)
    stride = window_s if stride_s is None else stride_s
    if stride <= 0:
        raise ConfigError(f"stride_s={stride_s} must be positive")
    return (trace[s : s + window_s].copy() for s in range(0, trace.size - window_s + 1, stride))
