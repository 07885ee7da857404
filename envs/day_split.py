"""Which days of a trace train, validate and evaluate; held-out windows; trace scaling.

The protocol (docs/protocol.md): training and validation use IPA's first 14 days of the
Twitter trace minus every day that holds an evaluation window; a check refuses any
overlap. A second evaluation set samples windows from the held-out days with a fixed
seed. A trace is scaled to a pipeline whose capacity differs far from the video
pipeline's by the stated rule of `capacity_scale`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from envs import perf
from envs.errors import ConfigError
from envs.spec import Pipeline
from envs.workloads import DAY_S

__all__ = [
    "IPA_TRAINING_DAYS",
    "capacity_rps",
    "capacity_scale",
    "days_of",
    "refuse_overlap",
    "sample_heldout_starts",
]

IPA_TRAINING_DAYS = 14
"""IPA trained its LSTM predictor on the first 14 days of the Twitter trace (cited:
arXiv 2308.12871); our training and validation days come from the same 14."""

SCALE_TOLERANCE = 2.0
"""A pipeline whose capacity is within this factor of the reference's plays the trace
unscaled (assumed: a factor of two keeps the load inside what the fleet can serve)."""


def days_of(start_s: int, end_s: int, day_s: int = DAY_S) -> set[int]:
    """The days that seconds [start_s, end_s) touch."""
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
    """
    return min(max(perf.stage_throughput_rps(v, b, v.base_cores, max_replicas)
                   for v in stage.variants for b in pipeline.batch_sizes)
               for stage in pipeline.stages)


def capacity_scale(pipeline: Pipeline, reference: Pipeline, max_replicas: int) -> float:
    """The factor by which to multiply (then floor) a trace made for ``reference``.

    Rule: 1 when the two capacities (`capacity_rps`) are within `SCALE_TOLERANCE` of each
    other; otherwise their ratio, rounded to two significant digits. IPA's damped Twitter
    windows (peak 34 req/s) were made for its video pipeline.
    """
    ratio = capacity_rps(pipeline, max_replicas) / capacity_rps(reference, max_replicas)
    if 1.0 / SCALE_TOLERANCE <= ratio <= SCALE_TOLERANCE:
        return 1.0
    return float(f"{ratio:.2g}")
